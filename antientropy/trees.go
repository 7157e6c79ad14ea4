package antientropy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// TreeStore is the store the trees mirror.
type TreeStore interface {
	ScanLocked(from, to uint64, fn func(pos uint64, key []byte, o replica.Object), then func()) error
	// ScanLockedKept is ScanLocked that hands a large container's elements
	// over whole, as their prefix and kept digest (LeafKeys).
	ScanLockedKept(from, to uint64, fn func(pos uint64, key []byte, o replica.Object), group func(prefix []byte, digest uint64), then func()) error
	// EachElement calls fn for every element object whose name begins
	// with prefix (groups.go).
	EachElement(prefix []byte, fn func(name []byte, clock replica.Clock)) error
	// ContainerBuckets returns a large container's 256 bucket digests,
	// kept by the store; false for a small one (groups.go).
	ContainerBuckets(prefix []byte) ([]uint64, bool, error)
}

// ErrNotReady means the trees are still being built.
var ErrNotReady = errors.New("antientropy: trees not built yet")

// KeyClock is one key of a leaf and its clock.
type KeyClock struct {
	Key   []byte
	Clock replica.Clock
	// Group marks an entry that stands for a container's elements (Key is
	// their common prefix, groups.go): Digest is the XOR of their hashes,
	// and Clock is empty.
	Group  bool
	Digest uint64
}

// Trees keeps a Merkle tree for every partition of the ring over the local
// store, in step with every write (it is the store's Observer). Trees are
// rebuilt from the store at start, in the background and stripe by stripe
// under each stripe's lock, so requests are never blocked for long.
type Trees struct {
	shape Shape
	store TreeStore
	log   *slog.Logger
	parts []*partTree
	ready atomic.Bool
	// rebuilt is how many lock stripes the running Build has passed: a
	// change in a stripe not rebuilt yet moves no counter (the rebuild will
	// count it), one in a stripe already rebuilt does. Leaves need no such
	// care: the rebuild sets them.
	rebuilt atomic.Uint64
}

// partTree is one partition's tree and what reaping needs to know of it.
type partTree struct {
	mu   sync.Mutex
	tree *Tree
	// tombstones counts the tombstone-only objects; tombstoneAt is when
	// the last one appeared, so that an agreement with a replica that
	// started after it covers every tombstone held.
	tombstones  int
	tombstoneAt time.Time
	// expiring counts the objects with a sibling that has an expiry.
	expiring int
}

// NewTrees returns empty trees for a ring of q partitions over store.
// Register them as the store's observer, then call Build.
func NewTrees(q int, store TreeStore, log *slog.Logger) *Trees {
	return newTrees(ShapeFor(q), store, log)
}

func newTrees(shape Shape, store TreeStore, log *slog.Logger) *Trees {
	if log == nil {
		log = slog.Default()
	}
	q := 1 << shape.QBits
	t := &Trees{shape: shape, store: store, log: log, parts: make([]*partTree, q)}
	for i := range t.parts {
		t.parts[i] = &partTree{tree: NewTree(t.shape)}
	}
	return t
}

// Shape is the trees' shape.
func (t *Trees) Shape() Shape { return t.shape }

// Ready reports whether the trees have been built.
func (t *Trees) Ready() bool { return t.ready.Load() }

// Changed implements replica.Observer: it moves the key's hash in its leaf
// from the old clock to the new one.
func (t *Trees) Changed(pos uint64, key []byte, old, next replica.Object) {
	p, leaf := t.shape.Locate(pos)
	counted := replica.Stripe(pos) < t.rebuilt.Load()
	// The old hash out and the new one in, as one toggle of their XOR:
	// one walk up the tree, hashed before the lock is taken.
	var h uint64
	if !old.Empty() {
		h ^= HashKey(key, old.Clock)
	}
	if !next.Empty() {
		h ^= HashKey(key, next.Clock)
	}
	pt := t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.tree.Toggle(leaf, h)
	if !old.Empty() && counted {
		if replica.TombstoneOnly(old) {
			pt.tombstones--
		}
		if hasExpiry(old) {
			pt.expiring--
		}
	}
	if !next.Empty() {
		if replica.TombstoneOnly(next) {
			pt.tombstoneAt = time.Now()
			if counted {
				pt.tombstones++
			}
		}
		if counted && hasExpiry(next) {
			pt.expiring++
		}
	}
}

// Build computes every leaf from the store, one lock stripe at a time, and
// marks the trees ready.
func (t *Trees) Build(ctx context.Context) error {
	start := time.Now()
	t.rebuilt.Store(0)
	for st := uint64(0); st < replica.Stripes; st++ { // the store's lock stripes
		if err := ctx.Err(); err != nil {
			return err
		}
		from, to := replica.StripeRange(st)
		if err := t.rebuildRange(from, to, st+1); err != nil {
			return err
		}
	}
	t.ready.Store(true)
	t.log.Info("anti-entropy trees built", "partitions", len(t.parts), "leaves", t.shape.Leaves(),
		"bytes", t.MemoryBytes(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// rebuildRange recomputes the leaves covering [from, to), whole leaves,
// under the range's stripe locks: a write either happened before (and is
// in the scan) or waits and toggles the rebuilt leaf after.
func (t *Trees) rebuildRange(from, to uint64, rebuilt uint64) error {
	type leafID struct{ p, leaf int }
	hashes := map[leafID]uint64{}
	tombs, exps := map[int]int{}, map[int]int{}
	err := t.store.ScanLocked(from, to, func(pos uint64, key []byte, o replica.Object) {
		p, leaf := t.shape.Locate(pos)
		hashes[leafID{p, leaf}] ^= HashKey(key, o.Clock)
		if replica.TombstoneOnly(o) {
			tombs[p]++
		}
		if hasExpiry(o) {
			exps[p]++
		}
	}, func() {
		t.eachLeafRange(from, to, func(p int, pt *partTree, lo, hi int) {
			for leaf := lo; leaf <= hi; leaf++ {
				pt.tree.Toggle(leaf, pt.tree.Leaf(leaf)^hashes[leafID{p, leaf}])
			}
			pt.tombstones += tombs[p]
			pt.expiring += exps[p]
		})
		t.rebuilt.Store(rebuilt) // still under the stripes' locks
	})
	if err != nil {
		return fmt.Errorf("rebuild trees: %w", err)
	}
	return nil
}

// Root returns partition p's root hash.
func (t *Trees) Root(p int) (uint64, error) {
	if !t.ready.Load() {
		return 0, ErrNotReady
	}
	if p < 0 || p >= len(t.parts) {
		return 0, fmt.Errorf("antientropy: no partition %d", p)
	}
	pt := t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.tree.Root(), nil
}

// Children returns, for each node index at level of partition p's tree,
// the hashes of its children (level-1), in order.
func (t *Trees) Children(p, level int, nodes []int) ([][]uint64, error) {
	if !t.ready.Load() {
		return nil, ErrNotReady
	}
	if p < 0 || p >= len(t.parts) {
		return nil, fmt.Errorf("antientropy: no partition %d", p)
	}
	pt := t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if level < 1 || level >= pt.tree.Height() {
		return nil, fmt.Errorf("antientropy: no level %d", level)
	}
	out := make([][]uint64, len(nodes))
	for i, n := range nodes {
		if n < 0 || n*fanout >= len(pt.tree.levels[level-1]) {
			return nil, fmt.Errorf("antientropy: no node %d at level %d", n, level)
		}
		for _, c := range pt.tree.Children(level, n) {
			out[i] = append(out[i], pt.tree.Node(level-1, c))
		}
	}
	return out, nil
}

// LeafKeys lists the keys and clocks of the given leaves of partition p.
// Each leaf is read under its stripe lock and checked against the tree: a
// leaf found wrong is corrected (and logged), which is how a tree that
// drifted from the store heals.
func (t *Trees) LeafKeys(p int, leaves []int) ([][]KeyClock, error) {
	if !t.ready.Load() {
		return nil, ErrNotReady
	}
	out := make([][]KeyClock, len(leaves))
	for i, leaf := range leaves {
		if p < 0 || p >= len(t.parts) || leaf < 0 || leaf >= t.shape.Leaves() {
			return nil, fmt.Errorf("antientropy: no leaf %d of partition %d", leaf, p)
		}
		from, to := t.shape.LeafRange(p, leaf)
		var h uint64
		pt := t.parts[p]
		// A container's elements are consecutive: one group entry.
		addGroup := func(cp []byte, digest uint64) {
			h ^= digest
			if n := len(out[i]); n > 0 && out[i][n-1].Group && string(out[i][n-1].Key) == string(cp) {
				out[i][n-1].Digest ^= digest
			} else {
				out[i] = append(out[i], KeyClock{Key: append([]byte(nil), cp...), Group: true, Digest: digest})
			}
		}
		err := t.store.ScanLockedKept(from, to, func(pos uint64, key []byte, o replica.Object) {
			if replica.IsElement(key) {
				addGroup(replica.ContainerPrefix(key), HashKey(key, o.Clock))
				return
			}
			h ^= HashKey(key, o.Clock)
			out[i] = append(out[i], KeyClock{Key: append([]byte(nil), key...), Clock: o.Clock.Clone()})
		}, addGroup, func() {
			pt.mu.Lock()
			defer pt.mu.Unlock()
			if got := pt.tree.Leaf(leaf); got != h {
				pt.tree.Toggle(leaf, got^h)
				t.log.Warn("anti-entropy tree was wrong; leaf corrected", "partition", p, "leaf", leaf)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// tombstoneInfo returns how many tombstone-only objects partition p holds
// and when the last appeared.
func (t *Trees) tombstoneInfo(p int) (int, time.Time) {
	pt := t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.tombstones, pt.tombstoneAt
}

// MemoryBytes is the memory the trees' hashes take.
func (t *Trees) MemoryBytes() int {
	n := 0
	for _, pt := range t.parts {
		n += pt.tree.Bytes()
	}
	return n
}

// Reset empties every tree: the store dropped all its objects (FLUSHALL).
// The store holds every lock stripe while it calls it.
func (t *Trees) Reset() {
	for _, pt := range t.parts {
		pt.mu.Lock()
		pt.tree = NewTree(t.shape)
		pt.tombstones, pt.expiring = 0, 0
		pt.mu.Unlock()
	}
}

// hasExpiry reports whether a sibling of o has an expiry.
func hasExpiry(o replica.Object) bool {
	for _, s := range o.Siblings {
		if s.Expiry != 0 {
			return true
		}
	}
	return false
}

// expiringCount returns how many objects of partition p have a sibling
// with an expiry.
func (t *Trees) expiringCount(p int) int {
	pt := t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.expiring
}

// Dropped empties the leaves of a range the store dropped whole, and the
// counts of the partitions it covers whole. The store holds the range's
// stripe locks.
func (t *Trees) Dropped(from, to uint64) {
	t.eachLeafRange(from, to, func(_ int, pt *partTree, lo, hi int) {
		for leaf := lo; leaf <= hi; leaf++ {
			pt.tree.Toggle(leaf, pt.tree.Leaf(leaf))
		}
		if lo == 0 && hi == t.shape.Leaves()-1 {
			pt.tombstones, pt.expiring = 0, 0
		}
	})
}

// eachLeafRange calls fn, under each partition's lock, with the leaves
// [lo, hi] of partition p that positions [from, to) cover (to == 0: the
// end of the ring).
func (t *Trees) eachLeafRange(from, to uint64, fn func(p int, pt *partTree, lo, hi int)) {
	firstP, firstLeaf := t.shape.Locate(from)
	lastP, lastLeaf := len(t.parts)-1, t.shape.Leaves()-1
	if to != 0 {
		lastP, lastLeaf = t.shape.Locate(to - 1)
	}
	for p := firstP; p <= lastP; p++ {
		lo, hi := 0, t.shape.Leaves()-1
		if p == firstP {
			lo = firstLeaf
		}
		if p == lastP {
			hi = lastLeaf
		}
		pt := t.parts[p]
		pt.mu.Lock()
		fn(p, pt, lo, hi)
		pt.mu.Unlock()
	}
}

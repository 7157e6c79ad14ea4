package antientropy

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dynakv/dynakv/replica"
)

// node is a store with its trees, as a replica holds them.
type node struct {
	store *replica.Store
	trees *Trees
	actor string
}

func newNode(t testing.TB, q int, id string) *node {
	return newNodeShape(t, ShapeFor(q), id)
}

// newNodeShape makes a node whose trees have the given shape: tests use
// coarse shapes so that leaves hold many keys.
func newNodeShape(t testing.TB, shape Shape, id string) *node {
	t.Helper()
	s, err := replica.Open(t.TempDir(), replica.Options{NodeID: id, Fsync: replica.FsyncNo, CacheSize: 16 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tr := newTrees(shape, s, slog.New(slog.DiscardHandler))
	s.SetObserver(tr)
	if err := tr.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &node{store: s, trees: tr, actor: s.Actor()}
}

// write makes a blind write of v under the node's own actor.
func (n *node) write(t testing.TB, key, v string, tomb bool) {
	t.Helper()
	n.writeExpiring(t, key, v, tomb, 0)
}

func (n *node) writeExpiring(t testing.TB, key, v string, tomb bool, expiry int64) {
	t.Helper()
	_, err := n.store.Update(context.Background(), []byte(key), func(cur replica.Object) (replica.Object, bool, error) {
		dot, err := n.store.Mint()
		if err != nil {
			return cur, false, err
		}
		next := replica.Update(cur, cur.Context(), replica.Sibling{Value: []byte(v), Tombstone: tomb, Time: 1, Expiry: expiry}, dot)
		return next, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (n *node) get(t testing.TB, key string) replica.Object {
	o, err := n.store.Get([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// copyKey gives to the same object from.
func copyKey(t testing.TB, from, to *node, key string) {
	if _, err := to.store.Merge([]byte(key), from.get(t, key)); err != nil {
		t.Fatal(err)
	}
}

func TestIncrementalTreesEqualRebuilt(t *testing.T) {
	for _, q := range []int{1, 16, 256} {
		t.Run(fmt.Sprint(q), func(t *testing.T) {
			n := newNode(t, q, "a")
			other := newNode(t, q, "b")
			rng := rand.New(rand.NewPCG(uint64(q), 1))
			for i := range 3000 {
				key := fmt.Sprintf("k%d", rng.IntN(500))
				switch rng.IntN(5) {
				case 0:
					n.write(t, key, fmt.Sprint(i), false)
				case 1:
					n.writeExpiring(t, key, fmt.Sprint(i), false, int64(1000+i))
				case 2:
					n.write(t, key, "", true)
				case 3: // a merge from another replica
					other.write(t, key, fmt.Sprint(i), rng.IntN(3) == 0)
					copyKey(t, other, n, key)
				case 4:
					if o := n.get(t, key); replica.TombstoneOnly(o) {
						if _, err := n.store.Purge([]byte(key), o.Clock); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			fresh := NewTrees(q, n.store, slog.New(slog.DiscardHandler))
			if err := fresh.Build(context.Background()); err != nil {
				t.Fatal(err)
			}
			for p := range q {
				if !n.trees.parts[p].tree.Equal(fresh.parts[p].tree) {
					t.Fatalf("partition %d: the incrementally kept tree differs from a rebuilt one", p)
				}
				if n.trees.parts[p].tombstones != fresh.parts[p].tombstones || n.trees.parts[p].expiring != fresh.parts[p].expiring {
					t.Fatalf("partition %d: %d tombstones and %d expiring counted, %d and %d in the store", p,
						n.trees.parts[p].tombstones, n.trees.parts[p].expiring, fresh.parts[p].tombstones, fresh.parts[p].expiring)
				}
			}
		})
	}
}

// diverge gives a and b a common base of keys and then random differences;
// it returns the keys that differ and how many key copies an exchange must
// make to repair them (two for a key written on both sides).
func diverge(t testing.TB, a, b *node, keys, diff int, seed uint64) (map[string]bool, int) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range keys {
		key := fmt.Sprintf("key:%d", i)
		a.write(t, key, fmt.Sprintf("base-%d", i), false)
		copyKey(t, a, b, key)
	}
	differ := map[string]bool{}
	moves := 0
	for len(differ) < diff {
		i := rng.IntN(keys + keys/10) // some keys are new on one side
		key := fmt.Sprintf("key:%d", i)
		if differ[key] {
			continue
		}
		differ[key] = true
		switch rng.IntN(4) {
		case 0:
			a.write(t, key, "a-only", false)
			moves++
		case 1:
			b.write(t, key, "b-only", false)
			moves++
		case 2: // concurrent writes on both sides
			a.write(t, key, "from-a", false)
			b.write(t, key, "from-b", false)
			moves += 2
		case 3:
			a.write(t, key, "", true)
			moves++
		}
	}
	return differ, moves
}

func TestExchangeRepairsExactlyTheDifference(t *testing.T) {
	// A coarse shape: 16 partitions of 16 leaves, about 20 keys a leaf.
	shape := Shape{QBits: 4, LeafBits: 4}
	const q = 16
	a, b := newNodeShape(t, shape, "a"), newNodeShape(t, shape, "b")
	differ, moves := diverge(t, a, b, 5000, 100, 7)
	// Out of the memtable: scans then read sstable blocks, whose buffers
	// are reused as the iterator moves on.
	for _, n := range []*node{a, b} {
		if err := n.store.FlushMemtable(); err != nil {
			t.Fatal(err)
		}
	}
	remote := &MemRemote{Trees: b.trees, Store: b.store}
	total := ExchangeResult{}
	for p := range q {
		res, err := Exchange(context.Background(), a.trees, a.store, remote, p, ExchangeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		total.Pulled += res.Pulled
		total.Pushed += res.Pushed
		total.Leaves += res.Leaves
	}
	for p := range q {
		ra, _ := a.trees.Root(p)
		rb, _ := b.trees.Root(p)
		if ra != rb {
			t.Fatalf("partition %d still differs after the exchange", p)
		}
	}
	for key := range differ {
		oa, ob := a.get(t, key), b.get(t, key)
		if !oa.Equal(ob) {
			t.Fatalf("%s differs after the exchange", key)
		}
	}
	// Every differing key moved once, or both ways when written on both
	// sides; no other key moved.
	if total.Repaired() != moves {
		t.Fatalf("%d keys moved, want %d for %d differing keys", total.Repaired(), moves, len(differ))
	}
	moved := remote.Bytes.Load()
	t.Logf("%d differing keys of 5000: %d leaves, pulled %d, pushed %d, %d bytes", len(differ), total.Leaves, total.Pulled, total.Pushed, moved)
	// A second exchange finds nothing.
	for p := range q {
		res, err := Exchange(context.Background(), a.trees, a.store, remote, p, ExchangeOptions{})
		if err != nil || !res.Agreed {
			t.Fatalf("partition %d: second exchange %+v %v", p, res, err)
		}
	}
}

func TestCompareLeaf(t *testing.T) {
	c := func(n uint64) replica.Clock { return replica.Clock{{Actor: "a", Counter: n}} }
	kc := func(k string, c replica.Clock) KeyClock { return KeyClock{Key: []byte(k), Clock: c} }
	group := func(k string, d uint64) KeyClock { return KeyClock{Key: []byte(k), Group: true, Digest: d} }
	ours := []KeyClock{kc("same", c(1)), kc("newer-here", c(2)), kc("only-here", c(1)), kc("conc", replica.Clock{{Actor: "a", Counter: 1}}),
		group("g-same", 7), group("g-differs", 1), group("g-only-here", 3)}
	theirs := []KeyClock{kc("same", c(1)), kc("newer-here", c(1)), kc("only-there", c(1)), kc("conc", replica.Clock{{Actor: "b", Counter: 1}}),
		group("g-same", 7), group("g-differs", 2), group("g-only-there", 4)}
	pull, push, _, groups := compareLeaf(ours, theirs)
	str := func(bs [][]byte) []string {
		var out []string
		for _, b := range bs {
			out = append(out, string(b))
		}
		slices.Sort(out)
		return out
	}
	if got := str(pull); !slices.Equal(got, []string{"conc", "only-there"}) {
		t.Fatalf("pull %v", got)
	}
	if got := str(push); !slices.Equal(got, []string{"conc", "newer-here", "only-here"}) {
		t.Fatalf("push %v", got)
	}
	if got := str(groups); !slices.Equal(got, []string{"g-differs", "g-only-here", "g-only-there"}) {
		t.Fatalf("groups to descend into %v", got)
	}
}

func TestWireRoundTrips(t *testing.T) {
	s := ShapeFor(256)
	if got, root, err := decodeRoot(encodeRoot(s, 42)); err != nil || got != s || root != 42 {
		t.Fatalf("root: %v %d %v", got, root, err)
	}
	hs := [][]uint64{{1, 2, 3}, {}, {4}}
	if got, err := decodeChildren(encodeChildren(hs), 3); err != nil || len(got) != 3 || got[0][2] != 3 || got[2][0] != 4 {
		t.Fatalf("children: %v %v", got, err)
	}
	kcs := [][]KeyClock{{{Key: []byte("k"), Clock: replica.Clock{{Actor: "a", Counter: 3}}}, {Key: []byte("g"), Group: true, Digest: 9}}, nil}
	if got, err := decodeLeaves(encodeLeaves(kcs), 2); err != nil || string(got[0][0].Key) != "k" || got[0][0].Clock[0].Counter != 3 ||
		!got[0][1].Group || got[0][1].Digest != 9 {
		t.Fatalf("leaves: %v %v", got, err)
	}
	g := Group{Buckets: make([]uint64, 256)}
	g.Buckets[200] = 5
	if got, err := decodeGroup(encodeGroup(g)); err != nil || got.Buckets[200] != 5 {
		t.Fatalf("group buckets: %v %v", got, err)
	}
	if got, err := decodeGroup(encodeGroup(Group{Elements: kcs[0][:1]})); err != nil || len(got.Elements) != 1 || got.Buckets != nil {
		t.Fatalf("group elements: %v %v", got, err)
	}
	for _, bad := range [][]byte{{}, {0xff}, encodeChildren(hs)[:5]} {
		if _, err := decodeChildren(bad, 3); err == nil {
			t.Fatalf("children %v decoded", bad)
		}
		if _, err := decodeLeaves(bad, 2); err == nil && len(bad) > 0 {
			t.Fatalf("leaves %v decoded", bad)
		}
	}
}

// The (key, clock) lists of LeafKeys outlive the scan that read them:
// their actors must not alias Pebble's buffers, which the iterator reuses.
func TestLeafKeysOutliveTheScan(t *testing.T) {
	s, err := replica.Open(t.TempDir(), replica.Options{NodeID: "n1", Fsync: replica.FsyncNo, CacheSize: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shape := Shape{QBits: 0, LeafBits: 4}
	tr := newTrees(shape, s, slog.New(slog.DiscardHandler))
	s.SetObserver(tr)
	n := &node{store: s, trees: tr, actor: s.Actor()}
	for i := range 30000 {
		n.write(t, fmt.Sprintf("key:%d", i), fmt.Sprintf("%0100d", i), false)
	}
	if err := s.FlushMemtable(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	leaves := make([]int, shape.Leaves())
	for i := range leaves {
		leaves[i] = i
	}
	kcs, err := tr.LeafKeys(0, leaves)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, leaf := range kcs {
		for _, kc := range leaf {
			total++
			if len(kc.Clock) != 1 || kc.Clock[0].Actor != n.actor {
				t.Fatalf("%s: clock %v after the scan, want one entry of %s", kc.Key, kc.Clock, n.actor)
			}
		}
	}
	if total != 30000 {
		t.Fatalf("listed %d keys", total)
	}
}

// Writes that race the trees' Build leave them exact: counts as well as
// leaves equal those of a rebuild done afterwards.
func TestBuildUnderWrites(t *testing.T) {
	s, err := replica.Open(t.TempDir(), replica.Options{NodeID: "n1", Fsync: replica.FsyncNo, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := &node{store: s, actor: s.Actor()}
	for i := range 3000 {
		n.write(t, fmt.Sprintf("k%d", i), "v", i%3 == 0)
	}
	tr := NewTrees(16, s, slog.New(slog.DiscardHandler))
	s.SetObserver(tr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 3000 {
			key := fmt.Sprintf("k%d", (i*7)%3000)
			n.writeExpiring(t, key, "w", i%2 == 0, int64(i%5)*1000)
		}
	}()
	if err := tr.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	fresh := NewTrees(16, s, slog.New(slog.DiscardHandler))
	if err := fresh.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p := range 16 {
		a, b := tr.parts[p], fresh.parts[p]
		if !a.tree.Equal(b.tree) || a.tombstones != b.tombstones || a.expiring != b.expiring {
			t.Fatalf("partition %d: tombstones %d/%d expiring %d/%d trees equal %v", p, a.tombstones, b.tombstones, a.expiring, b.expiring, a.tree.Equal(b.tree))
		}
	}
}

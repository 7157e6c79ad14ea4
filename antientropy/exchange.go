package antientropy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// maxPerRequest bounds the nodes or leaves asked for in one request.
const maxPerRequest = 512

// errBadReply is an exchange reply that does not decode.
var errBadReply = errors.New("antientropy: malformed exchange reply")

// Remote is the other replica of an exchange.
type Remote interface {
	Root(ctx context.Context, p int) (Shape, uint64, error)
	Children(ctx context.Context, p, level int, nodes []int) ([][]uint64, error)
	LeafKeys(ctx context.Context, p int, leaves []int) ([][]KeyClock, error)
	// Group answers the elements under an element-name prefix, listed or
	// in buckets (groups.go).
	Group(ctx context.Context, p int, prefix []byte) (Group, error)
	Get(ctx context.Context, key []byte) (replica.Object, error)
	Merge(ctx context.Context, key []byte, o replica.Object) error
}

// Replica is the local side of an exchange: the store the trees mirror.
type Replica interface {
	Get(key []byte) (replica.Object, error)
	Merge(key []byte, o replica.Object) (bool, error)
}

// ExchangeResult says what an exchange found and did.
type ExchangeResult struct {
	// Agreed is true when the roots matched: nothing to repair.
	Agreed bool
	// Leaves is the number of leaves that differed.
	Leaves int
	// Pulled and Pushed count the keys copied from and to the remote.
	Pulled, Pushed int
}

// Repaired is the number of keys the exchange copied.
func (r ExchangeResult) Repaired() int { return r.Pulled + r.Pushed }

// ExchangeOptions tune an exchange.
type ExchangeOptions struct {
	// Throttle is called before each batch of repairs with its size.
	Throttle func(int)
	// Grace is the tombstone grace period: a tombstone older than it is not
	// copied to a replica that does not hold the key at all. That replica
	// reaped it (or never had the key), and the sender will reap it too;
	// copying it would only make the two trade it back and forth. A replica
	// holding the deleted value still gets the tombstone, as its clock is
	// behind. Zero copies every tombstone.
	Grace time.Duration
}

// Exchange compares partition p of the local trees with remote's and
// repairs the difference both ways: roots first, then only the subtrees
// that differ, then the (key, clock) lists of the differing leaves, then
// the objects of the keys one side has not seen, merged with sync where
// they arrive. Its traffic grows with the difference, not with the data.
func Exchange(ctx context.Context, trees *Trees, local Replica, remote Remote, p int, opts ExchangeOptions) (ExchangeResult, error) {
	throttle := opts.Throttle
	reaped := func(o replica.Object) bool { return reapable(o, opts.Grace) }
	var res ExchangeResult
	shape, rroot, err := remote.Root(ctx, p)
	if err != nil {
		return res, fmt.Errorf("root of partition %d: %w", p, err)
	}
	if shape != trees.Shape() {
		return res, fmt.Errorf("partition %d: tree shapes differ (%v here, %v there)", p, trees.Shape(), shape)
	}
	lroot, err := trees.Root(p)
	if err != nil {
		return res, err
	}
	if lroot == rroot {
		res.Agreed = true
		return res, nil
	}
	diff := []int{0}
	for level := shape.Levels() - 1; level >= 1 && len(diff) > 0; level-- {
		var next []int
		for _, chunk := range chunks(diff) {
			theirs, err := remote.Children(ctx, p, level, chunk)
			if err != nil {
				return res, fmt.Errorf("level %d of partition %d: %w", level, p, err)
			}
			ours, err := trees.Children(p, level, chunk)
			if err != nil {
				return res, err
			}
			if len(theirs) != len(ours) {
				return res, errBadReply
			}
			for i, node := range chunk {
				if len(theirs[i]) != len(ours[i]) {
					return res, errBadReply
				}
				for j := range ours[i] {
					if ours[i][j] != theirs[i][j] {
						next = append(next, node*fanout+j)
					}
				}
			}
		}
		diff = next
	}
	res.Leaves = len(diff)
	var pull, push [][]byte
	missing := map[string]bool{} // keys one side does not hold at all
	for _, chunk := range chunks(diff) {
		theirs, err := remote.LeafKeys(ctx, p, chunk)
		if err != nil {
			return res, fmt.Errorf("leaves of partition %d: %w", p, err)
		}
		ours, err := trees.LeafKeys(p, chunk)
		if err != nil {
			return res, err
		}
		if len(theirs) != len(ours) {
			return res, errBadReply
		}
		for i := range chunk {
			pl, ps, miss, groups := compareLeaf(ours[i], theirs[i])
			for _, prefix := range groups {
				gpl, gps, gmiss, err := drill(ctx, trees, remote, p, prefix)
				if err != nil {
					return res, err
				}
				pl, ps, miss = append(pl, gpl...), append(ps, gps...), append(miss, gmiss...)
			}
			pull, push = append(pull, pl...), append(push, ps...)
			for _, k := range miss {
				missing[string(k)] = true
			}
		}
	}
	// Pull first: a key changed on both sides is merged here and the
	// merged object pushed.
	if err := parallel(ctx, pull, throttle, func(key []byte) error {
		o, err := remote.Get(ctx, key)
		if err != nil || (missing[string(key)] && reaped(o)) {
			return err
		}
		_, err = local.Merge(key, o)
		return err
	}); err != nil {
		return res, fmt.Errorf("pulling from the replica: %w", err)
	}
	res.Pulled = len(pull)
	if err := parallel(ctx, push, throttle, func(key []byte) error {
		o, err := local.Get(key)
		if err != nil || (missing[string(key)] && reaped(o)) {
			return err
		}
		return remote.Merge(ctx, key, o)
	}); err != nil {
		return res, fmt.Errorf("pushing to the replica: %w", err)
	}
	res.Pushed = len(push)
	return res, nil
}

// compareLeaf returns the keys to pull (the remote has writes we have not
// seen), to push (we have writes it has not seen), those of them one side
// does not hold at all, and the groups (containers' elements) that differ
// or that one side lacks, to descend into.
func compareLeaf(ours, theirs []KeyClock) (pull, push, missing, groups [][]byte) {
	mine := make(map[string]KeyClock, len(ours))
	for _, kc := range ours {
		mine[string(kc.Key)] = kc
	}
	seen := make(map[string]bool, len(theirs))
	for _, kc := range theirs {
		k := string(kc.Key)
		seen[k] = true
		m, ok := mine[k]
		switch {
		case kc.Group || m.Group:
			if !ok || !m.Group || !kc.Group || m.Digest != kc.Digest {
				groups = append(groups, kc.Key)
			}
		case !ok:
			pull = append(pull, kc.Key)
			missing = append(missing, kc.Key)
		case m.Clock.Equal(kc.Clock):
		default:
			if !m.Clock.Descends(kc.Clock) {
				pull = append(pull, kc.Key)
			}
			if !kc.Clock.Descends(m.Clock) {
				push = append(push, kc.Key)
			}
		}
	}
	for _, kc := range ours {
		if seen[string(kc.Key)] {
			continue
		}
		if kc.Group {
			groups = append(groups, kc.Key)
			continue
		}
		push = append(push, kc.Key)
		missing = append(missing, kc.Key)
	}
	return pull, push, missing, groups
}

func chunks(s []int) [][]int {
	var out [][]int
	for len(s) > maxPerRequest {
		out = append(out, s[:maxPerRequest])
		s = s[maxPerRequest:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// parallel runs fn over keys, batch by batch, up to 64 at once, calling
// throttle before each batch. It returns the first error.
func parallel(ctx context.Context, keys [][]byte, throttle func(int), fn func([]byte) error) error {
	const batch = 64
	for len(keys) > 0 {
		n := min(batch, len(keys))
		if throttle != nil {
			throttle(n)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, k := range keys[:n] {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = fn(k) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// Service serves the remote side of exchanges on the peer port.
type Service struct{ Trees func() (*Trees, error) }

func atoi(b []byte) (int, error) { return strconv.Atoi(string(b)) }

func ints(args [][]byte) ([]int, error) {
	out := make([]int, len(args))
	for i, a := range args {
		n, err := atoi(a)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// ServeRoot handles the peer command AE.ROOT.
func (s Service) ServeRoot(ctx context.Context, args [][]byte) ([]byte, error) {
	t, err := s.Trees()
	if err != nil {
		return nil, err
	}
	if len(args) != 2 {
		return nil, errBadReply
	}
	p, err := atoi(args[1])
	if err != nil {
		return nil, err
	}
	root, err := t.Root(p)
	if err != nil {
		return nil, err
	}
	return encodeRoot(t.Shape(), root), nil
}

// ServeChildren handles the peer command AE.CHILDREN.
func (s Service) ServeChildren(ctx context.Context, args [][]byte) ([]byte, error) {
	t, err := s.Trees()
	if err != nil {
		return nil, err
	}
	if len(args) < 4 {
		return nil, errBadReply
	}
	nums, err := ints(args[1:])
	if err != nil {
		return nil, err
	}
	hs, err := t.Children(nums[0], nums[1], nums[2:])
	if err != nil {
		return nil, err
	}
	return encodeChildren(hs), nil
}

// ServeLeaves handles the peer command AE.LEAVES.
func (s Service) ServeLeaves(ctx context.Context, args [][]byte) ([]byte, error) {
	t, err := s.Trees()
	if err != nil {
		return nil, err
	}
	if len(args) < 3 {
		return nil, errBadReply
	}
	nums, err := ints(args[1:])
	if err != nil {
		return nil, err
	}
	kcs, err := t.LeafKeys(nums[0], nums[1:])
	if err != nil {
		return nil, err
	}
	return encodeLeaves(kcs), nil
}

func encodeRoot(s Shape, root uint64) []byte {
	b := binary.AppendUvarint(nil, uint64(s.QBits))
	b = binary.AppendUvarint(b, uint64(s.LeafBits))
	return binary.BigEndian.AppendUint64(b, root)
}

func decodeRoot(b []byte) (Shape, uint64, error) {
	d := replica.NewReader(b)
	s := Shape{QBits: uint(d.Uvarint()), LeafBits: uint(d.Uvarint())}
	rest := d.Rest()
	if d.Failed() || len(rest) != 8 {
		return Shape{}, 0, errBadReply
	}
	return s, binary.BigEndian.Uint64(rest), nil
}

func encodeChildren(hs [][]uint64) []byte {
	var b []byte
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h)))
		for _, v := range h {
			b = binary.BigEndian.AppendUint64(b, v)
		}
	}
	return b
}

func decodeChildren(b []byte, n int) ([][]uint64, error) {
	out := make([][]uint64, n)
	for i := range out {
		c, k := binary.Uvarint(b)
		if k <= 0 || c > fanout || uint64(len(b)-k) < 8*c {
			return nil, errBadReply
		}
		b = b[k:]
		for range c {
			out[i] = append(out[i], binary.BigEndian.Uint64(b))
			b = b[8:]
		}
	}
	if len(b) != 0 {
		return nil, errBadReply
	}
	return out, nil
}

// leavesV2 begins AE.LEAVES's reply: every entry then starts with its
// kind, a key with its clock or a group with its digest.
const leavesV2 = 2

const (
	entryKey   = 0
	entryGroup = 1
)

func encodeLeaves(kcs [][]KeyClock) []byte {
	b := []byte{leavesV2}
	for _, leaf := range kcs {
		b = binary.AppendUvarint(b, uint64(len(leaf)))
		for _, kc := range leaf {
			if kc.Group {
				b = append(b, entryGroup)
				b = replica.AppendBytes(b, kc.Key)
				b = binary.BigEndian.AppendUint64(b, kc.Digest)
				continue
			}
			b = append(b, entryKey)
			b = replica.AppendBytes(b, kc.Key)
			b = binary.AppendUvarint(b, uint64(len(kc.Clock)))
			for _, e := range kc.Clock {
				b = replica.AppendBytes(b, []byte(e.Actor))
				b = binary.AppendUvarint(b, e.Counter)
			}
		}
	}
	return b
}

func decodeLeaves(b []byte, n int) ([][]KeyClock, error) {
	d := replica.NewReader(b)
	if d.Byte() != leavesV2 {
		return nil, errBadReply
	}
	out := make([][]KeyClock, n)
	for i := range out {
		count := d.Uvarint()
		if count > uint64(len(b)) {
			return nil, errBadReply
		}
		for range count {
			kind := d.Byte()
			kc := KeyClock{Key: d.Bytes()}
			switch kind {
			case entryGroup:
				var h [8]byte
				for j := range h {
					h[j] = d.Byte()
				}
				kc.Group, kc.Digest = true, binary.BigEndian.Uint64(h[:])
			case entryKey:
				entries := d.Uvarint()
				if entries > uint64(len(b)) {
					return nil, errBadReply
				}
				for range entries {
					actor := string(d.Bytes())
					kc.Clock = append(kc.Clock, replica.Entry{Actor: actor, Counter: d.Uvarint()})
				}
			default:
				return nil, errBadReply
			}
			if d.Failed() {
				return nil, errBadReply
			}
			out[i] = append(out[i], kc)
		}
	}
	if d.Failed() || len(d.Rest()) != 0 {
		return nil, errBadReply
	}
	return out, nil
}

// Caller is the peer-protocol client a network remote sends through
// (peer.Client).
type Caller interface {
	Root(ctx context.Context, addr string, p int) ([]byte, error)
	Children(ctx context.Context, addr string, p, level int, nodes []int) ([]byte, error)
	Leaves(ctx context.Context, addr string, p int, leaves []int) ([]byte, error)
	Group(ctx context.Context, addr string, p int, prefix []byte) ([]byte, error)
	Get(ctx context.Context, addr string, key []byte) (replica.Object, error)
	Merge(ctx context.Context, addr string, key []byte, o replica.Object) error
}

// NetRemote is a Remote over the peer protocol.
type NetRemote struct {
	Peers Caller
	Addr  string
}

// Root implements Remote.
func (r NetRemote) Root(ctx context.Context, p int) (Shape, uint64, error) {
	b, err := r.Peers.Root(ctx, r.Addr, p)
	if err != nil {
		return Shape{}, 0, err
	}
	return decodeRoot(b)
}

// Children implements Remote.
func (r NetRemote) Children(ctx context.Context, p, level int, nodes []int) ([][]uint64, error) {
	b, err := r.Peers.Children(ctx, r.Addr, p, level, nodes)
	if err != nil {
		return nil, err
	}
	return decodeChildren(b, len(nodes))
}

// LeafKeys implements Remote.
func (r NetRemote) LeafKeys(ctx context.Context, p int, leaves []int) ([][]KeyClock, error) {
	b, err := r.Peers.Leaves(ctx, r.Addr, p, leaves)
	if err != nil {
		return nil, err
	}
	return decodeLeaves(b, len(leaves))
}

// Get implements Remote.
func (r NetRemote) Get(ctx context.Context, key []byte) (replica.Object, error) {
	return r.Peers.Get(ctx, r.Addr, key)
}

// Merge implements Remote.
func (r NetRemote) Merge(ctx context.Context, key []byte, o replica.Object) error {
	return r.Peers.Merge(ctx, r.Addr, key, o)
}

// MemRemote is a Remote over another node's trees and store in the same
// process, for tests and benchmarks. Every message goes through the wire
// encoding, and Bytes counts what would cross the network: requests
// (arguments) and replies.
type MemRemote struct {
	Trees *Trees
	Store Replica
	Bytes atomic.Int64
}

func (m *MemRemote) count(args int, reply []byte) { m.Bytes.Add(int64(args + len(reply))) }

// Root implements Remote.
func (m *MemRemote) Root(ctx context.Context, p int) (Shape, uint64, error) {
	root, err := m.Trees.Root(p)
	if err != nil {
		return Shape{}, 0, err
	}
	b := encodeRoot(m.Trees.Shape(), root)
	m.count(16, b)
	return decodeRoot(b)
}

// Children implements Remote.
func (m *MemRemote) Children(ctx context.Context, p, level int, nodes []int) ([][]uint64, error) {
	hs, err := m.Trees.Children(p, level, nodes)
	if err != nil {
		return nil, err
	}
	b := encodeChildren(hs)
	m.count(16+6*len(nodes), b)
	return decodeChildren(b, len(nodes))
}

// LeafKeys implements Remote.
func (m *MemRemote) LeafKeys(ctx context.Context, p int, leaves []int) ([][]KeyClock, error) {
	kcs, err := m.Trees.LeafKeys(p, leaves)
	if err != nil {
		return nil, err
	}
	b := encodeLeaves(kcs)
	m.count(16+6*len(leaves), b)
	return decodeLeaves(b, len(leaves))
}

// Get implements Remote.
func (m *MemRemote) Get(ctx context.Context, key []byte) (replica.Object, error) {
	o, err := m.Store.Get(key)
	if err != nil {
		return o, err
	}
	b := replica.AppendObject(nil, o)
	m.count(16+len(key), b)
	return replica.DecodeObject(b)
}

// Merge implements Remote.
func (m *MemRemote) Merge(ctx context.Context, key []byte, o replica.Object) error {
	b := replica.AppendObject(nil, o)
	m.count(16+len(key)+len(b), nil)
	c, err := replica.DecodeObject(b)
	if err != nil {
		return err
	}
	_, err = m.Store.Merge(key, c)
	return err
}

package antientropy

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/dynakv/dynakv/replica"
)

// A container's elements are objects of their own, all at the container
// key's ring position, so all of a container is in one leaf: a leaf's
// (key, clock) list would carry every element of a million-field hash to
// repair one field. A leaf's list therefore carries a container as one
// group entry, the XOR of its elements' hashes; an exchange that finds a
// group differing asks for it (Remote.Group): a replica answers the
// (name, clock) list of the group's elements when it holds at most
// groupList of them, and otherwise 256 digests, of the elements by the
// next byte of their ids, and the exchange descends into the buckets that
// differ. Element ids begin with a hash (replica.ElementID), so buckets
// split a container evenly: one changed field of a million costs two
// rounds of 256 digests and a list of a few elements.

// groupList is the most elements a group answer lists; past it the group
// is answered as buckets.
const groupList = 64

// maxGroupDepth bounds the id bytes a descent adds to a container's
// prefix: past it a group is listed whatever its size.
const maxGroupDepth = replica.IDLen

// Group is a replica's answer for the elements under a name prefix:
// Buckets (256 digests by the next byte) or Elements.
type Group struct {
	Buckets  []uint64
	Elements []KeyClock
}

// idDepth returns how many bytes of element id a group prefix holds.
func idDepth(prefix []byte) int {
	_, _, id, _ := replica.SplitElement(append(prefix[:len(prefix):len(prefix)], 0))
	return len(id) - 1
}

// Group answers what this replica holds under prefix (an element-name
// prefix of partition p): listed when it is at most groupList elements or
// list is set, as 256 buckets otherwise or when buckets is set.
func (t *Trees) Group(p int, prefix []byte, list, buckets bool) (Group, error) {
	if !t.ready.Load() {
		return Group{}, ErrNotReady
	}
	if got, _ := t.shape.Locate(replica.Position(prefix)); got != p || !replica.IsElement(prefix) {
		return Group{}, fmt.Errorf("antientropy: %q is no element prefix of partition %d", prefix, p)
	}
	var els []KeyClock
	var sums []uint64
	depth := idDepth(prefix)
	canSplit := !list && depth < maxGroupDepth
	if canSplit && depth == 0 {
		// A large container's first buckets are kept by the store.
		sums, ok, err := t.store.ContainerBuckets(prefix)
		if err != nil {
			return Group{}, err
		}
		if ok {
			return Group{Buckets: sums}, nil
		}
	}
	err := t.store.EachElement(prefix, func(name []byte, clock replica.Clock) {
		if len(name) <= len(prefix) {
			return // ids begin with a hash: none ends within maxGroupDepth
		}
		if sums != nil {
			sums[name[len(prefix)]] ^= HashKey(name, clock)
			return
		}
		els = append(els, KeyClock{Key: append([]byte(nil), name...), Clock: clock.Clone()})
		if canSplit && (buckets || len(els) > groupList) {
			sums = make([]uint64, 256)
			for _, kc := range els {
				sums[kc.Key[len(prefix)]] ^= HashKey(kc.Key, kc.Clock)
			}
			els = nil
		}
	})
	if err != nil {
		return Group{}, err
	}
	if canSplit && buckets && sums == nil {
		sums = make([]uint64, 256)
	}
	return Group{Buckets: sums, Elements: els}, nil
}

// drill compares the group under prefix with remote's and returns the
// names to pull, to push and those one side lacks, descending into the
// buckets that differ.
func drill(ctx context.Context, trees *Trees, remote Remote, p int, prefix []byte) (pull, push, missing [][]byte, err error) {
	theirs, err := remote.Group(ctx, p, prefix)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("group %q of partition %d: %w", prefix, p, err)
	}
	ours, err := trees.Group(p, prefix, theirs.Buckets == nil, theirs.Buckets != nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if theirs.Buckets == nil {
		pull, push, missing, _ = compareLeaf(ours.Elements, theirs.Elements)
		return pull, push, missing, nil // elements only: no groups to descend into
	}
	for b := range 256 {
		if ours.Buckets[b] == theirs.Buckets[b] {
			continue
		}
		pl, ps, ms, err := drill(ctx, trees, remote, p, append(prefix[:len(prefix):len(prefix)], byte(b)))
		if err != nil {
			return nil, nil, nil, err
		}
		pull, push, missing = append(pull, pl...), append(push, ps...), append(missing, ms...)
	}
	return pull, push, missing, nil
}

// encodeGroup is AE.GROUP's reply: 'b' and 256 digests, or 'e' and a
// leaf's encoding of the elements.
func encodeGroup(g Group) []byte {
	if g.Buckets != nil {
		b := make([]byte, 1, 1+8*256)
		b[0] = 'b'
		for _, h := range g.Buckets {
			b = binary.BigEndian.AppendUint64(b, h)
		}
		return b
	}
	return append([]byte{'e'}, encodeLeaves([][]KeyClock{g.Elements})...)
}

func decodeGroup(b []byte) (Group, error) {
	switch {
	case len(b) == 1+8*256 && b[0] == 'b':
		g := Group{Buckets: make([]uint64, 256)}
		for i := range g.Buckets {
			g.Buckets[i] = binary.BigEndian.Uint64(b[1+8*i:])
		}
		return g, nil
	case len(b) > 0 && b[0] == 'e':
		kcs, err := decodeLeaves(b[1:], 1)
		if err != nil {
			return Group{}, err
		}
		return Group{Elements: kcs[0]}, nil
	}
	return Group{}, errBadReply
}

// ServeGroup handles the peer command AE.GROUP p prefix.
func (s Service) ServeGroup(ctx context.Context, args [][]byte) ([]byte, error) {
	t, err := s.Trees()
	if err != nil {
		return nil, err
	}
	if len(args) != 3 {
		return nil, errBadReply
	}
	p, err := atoi(args[1])
	if err != nil {
		return nil, err
	}
	g, err := t.Group(p, args[2], false, false)
	if err != nil {
		return nil, err
	}
	return encodeGroup(g), nil
}

// Group implements Remote.
func (r NetRemote) Group(ctx context.Context, p int, prefix []byte) (Group, error) {
	b, err := r.Peers.Group(ctx, r.Addr, p, prefix)
	if err != nil {
		return Group{}, err
	}
	return decodeGroup(b)
}

// Group implements Remote.
func (m *MemRemote) Group(ctx context.Context, p int, prefix []byte) (Group, error) {
	g, err := m.Trees.Group(p, prefix, false, false)
	if err != nil {
		return Group{}, err
	}
	b := encodeGroup(g)
	m.count(16+len(prefix), b)
	return decodeGroup(b)
}

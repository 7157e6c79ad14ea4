package replica

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// HashKey hashes an object's name with its clock: replicas that hold the
// same writes of an object hold the same clock, so equal hashes mean equal
// objects (anti-entropy's Merkle leaves and containers' tallies XOR them).
func HashKey(key []byte, clock Clock) uint64 {
	d := xxhash.New()
	var n [binary.MaxVarintLen64]byte
	_, _ = d.Write(n[:binary.PutUvarint(n[:], uint64(len(key)))])
	_, _ = d.Write(key)
	for _, e := range clock {
		_, _ = d.Write(n[:binary.PutUvarint(n[:], uint64(len(e.Actor)))])
		_, _ = d.WriteString(e.Actor)
		_, _ = d.Write(n[:binary.PutUvarint(n[:], e.Counter)])
	}
	return d.Sum64()
}

// tally is a replica's running count of a container's live elements (of
// one type) and the XOR of HashKey over all its element objects: HLEN and
// SCARD answer from the tallies of a read quorum when they agree, without
// reading an element. Tallies live in memory, one map per lock stripe
// (changed only under that stripe's lock, as the elements are), and are
// rebuilt from the elements when the store opens.
type tally struct {
	pos    uint64
	live   int64 // elements holding a value
	total  int64 // element objects, tombstones too
	digest uint64
	// buckets, once asked for (ContainerBuckets), split digest by the
	// first byte of the element ids: anti-entropy's first look into a
	// large container, kept up to date instead of read from every
	// element at every exchange.
	buckets []uint64
}

// bucketsFrom is the size from which a container's bucket digests are
// kept (2 KB each): a smaller container is cheaper to read when asked.
// They are dropped when it shrinks below half.
const bucketsFrom = 4096

// ContainerPrefix returns the part of an element name that names its
// container and type (AppendElementPrefix); nil for a key.
func ContainerPrefix(name []byte) []byte {
	_, _, id, ok := SplitElement(name)
	if !ok {
		return nil
	}
	return name[:len(name)-len(id)]
}

// hasValue reports whether an element object holds a value: a sibling that
// is not a tombstone (elements do not expire on their own).
func hasValue(o Object) bool {
	for i := range o.Siblings {
		if !o.Siblings[i].Tombstone {
			return true
		}
	}
	return false
}

// tallyChange moves an element's change into its container's tally. The
// caller holds the stripe lock of pos (or has the store to itself).
func (s *Store) tallyChange(pos uint64, name []byte, old, next Object) {
	prefix := ContainerPrefix(name)
	if prefix == nil {
		return
	}
	st := Stripe(pos)
	m := s.tallies[st]
	if m == nil {
		m = map[string]*tally{}
		s.tallies[st] = m
	}
	t := m[string(prefix)]
	if t == nil {
		t = &tally{pos: pos}
		m[string(prefix)] = t
	}
	t.live += b2i(hasValue(next)) - b2i(hasValue(old))
	t.total += b2i(!next.Empty()) - b2i(!old.Empty())
	var change uint64
	if !old.Empty() {
		change ^= HashKey(name, old.Clock)
	}
	if !next.Empty() {
		change ^= HashKey(name, next.Clock)
	}
	t.digest ^= change
	if t.buckets != nil {
		t.buckets[name[len(prefix)]] ^= change
		if t.total < bucketsFrom/2 {
			t.buckets = nil
		}
	}
	if t.total == 0 {
		delete(m, string(prefix))
	}
}

// ContainerBuckets returns the 256 digests (XOR of HashKey) of the element
// objects whose names begin with prefix (AppendElementPrefix: one
// container's elements of one type), by the first byte of their ids, as
// anti-entropy compares them. It reports false for a container of fewer
// than bucketsFrom elements, which the caller reads instead. The first
// call reads the container, under its stripe's lock; the digests are kept
// up to date from then on.
func (s *Store) ContainerBuckets(prefix []byte) ([]uint64, bool, error) {
	if !s.enter() {
		return nil, false, ErrClosed
	}
	defer s.gate.RUnlock()
	pos := Position(prefix)
	mu := &s.locks[Stripe(pos)]
	mu.Lock()
	defer mu.Unlock()
	t := s.tallies[Stripe(pos)][string(prefix)]
	if t == nil || t.total < bucketsFrom {
		return nil, false, nil
	}
	if t.buckets == nil {
		sums := make([]uint64, 256)
		err := s.elementsOf(pos, prefix, nil, func(_, name []byte, o Object) bool {
			sums[name[len(prefix)]] ^= HashKey(name, o.Clock)
			return true
		})
		if err != nil {
			return nil, false, err
		}
		t.buckets = sums
	}
	return slices.Clone(t.buckets), true, nil
}

// dropTallies forgets the tallies of containers at positions [from, to)
// (to == 0: the end of the ring); the caller holds those stripes' locks.
func (s *Store) dropTallies(from, to uint64) {
	last := uint64(Stripes - 1)
	if to != 0 {
		last = Stripe(to - 1)
	}
	for st := Stripe(from); st <= last; st++ {
		for p, t := range s.tallies[st] {
			if t.pos >= from && (to == 0 || t.pos < to) {
				delete(s.tallies[st], p)
			}
		}
	}
}

// Tally is a replica's count of a container's elements of one type.
type Tally struct {
	// Live counts the elements holding a value, Total the element objects
	// (tombstones too, until they are reaped).
	Live, Total int64
	// Digest hashes every element object and the header's clock and
	// removal clock: equal on two replicas that hold the same.
	Digest uint64
}

// ContainerTally returns this replica's tally of the container key's
// elements of type typ.
func (s *Store) ContainerTally(key []byte, typ byte) (Tally, error) {
	if !s.enter() {
		return Tally{}, ErrClosed
	}
	defer s.gate.RUnlock()
	pos := Position(key)
	mu := &s.locks[Stripe(pos)]
	mu.Lock()
	defer mu.Unlock()
	h, err := s.getLocked(pos, key)
	if err != nil {
		return Tally{}, err
	}
	out := Tally{Digest: HashKey(key, h.Clock) ^ HashKey(nil, h.Removed)}
	if t := s.tallies[Stripe(pos)][string(AppendElementPrefix(nil, key, typ))]; t != nil {
		out.Live, out.Total, out.Digest = t.live, t.total, out.Digest^t.digest
	}
	return out, nil
}

// ScanLockedKept is ScanLocked for anti-entropy's leaf lists: the elements
// of one type of a container of bucketsFrom elements or more are not read
// but handed to group whole, as their prefix (ContainerPrefix) and the
// XOR of their HashKeys, which the container's tally keeps. Listing the
// leaf of a million-element container then reads its few other keys.
func (s *Store) ScanLockedKept(from, to uint64, fn func(pos uint64, key []byte, o Object), group func(prefix []byte, digest uint64), then func()) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	defer s.lockRange(from, to)()
	it, err := s.objectIter(from, to)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		k := it.Key()
		pos, name := binary.BigEndian.Uint64(k[1:9]), k[9:]
		if prefix := ContainerPrefix(name); prefix != nil {
			if t := s.tallies[Stripe(pos)][string(prefix)]; t != nil && t.total >= bucketsFrom {
				group(prefix, t.digest)
				ok = it.SeekGE(objectKey(pos, prefixEnd(prefix)))
				continue
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if o, err := DecodeObject(v); err != nil {
			s.skipCorrupt("object", name, err)
		} else {
			fn(pos, name, o)
		}
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return err
	}
	if then != nil {
		then()
	}
	return nil
}

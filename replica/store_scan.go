package replica

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// scan calls fn for each object with a position in [from, to), in order;
// to == 0 means the end of the ring. It stops early when fn returns false.
// The key and object passed to fn are only valid during the call.
func (s *Store) scan(from, to uint64, fn func(pos uint64, key []byte, o Object) bool) error {
	it, err := s.objectIter(from, to)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		o, err := DecodeObject(v)
		if err != nil {
			s.skipCorrupt("object", k[9:], err)
			continue
		}
		if !fn(binary.BigEndian.Uint64(k[1:9]), k[9:], o) {
			break
		}
	}
	return it.Error()
}

// objectIter returns an iterator over the objects of positions [from, to)
// (to == 0: the end of the ring).
func (s *Store) objectIter(from, to uint64) (*pebble.Iterator, error) {
	upper := []byte{prefixObject + 1}
	if to != 0 {
		upper = objectKey(to, nil)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: objectKey(from, nil), UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return it, nil
}

// KeyObject is one key and its object, as a range scan yields them.
type KeyObject struct {
	Key    []byte
	Object Object
}

// Range returns up to limit objects with ring positions in [from, to) (to
// == 0: the end of the ring), starting after the key after (nil: from the
// start). Keys and objects are copies the caller owns.
func (s *Store) Range(from, to uint64, after []byte, limit int) ([]KeyObject, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.gate.RUnlock()
	lower := objectKey(from, nil)
	if after != nil {
		lower = append(objectKey(Position(after), after), 0)
	}
	upper := []byte{prefixObject + 1}
	if to != 0 {
		upper = objectKey(to, nil)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("range: %w", err)
	}
	defer it.Close()
	var out []KeyObject
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("range: %w", err)
		}
		k := bytes.Clone(it.Key()[9:])
		o, err := DecodeObject(bytes.Clone(v))
		if err != nil {
			s.skipCorrupt("object", k, err)
			continue
		}
		out = append(out, KeyObject{k, o})
	}
	return out, it.Error()
}

// ScanLocked calls fn for every object with a position in [from, to) (to
// == 0: the end of the ring), then then, all while holding the locks of
// the stripes that cover the range, so that no write to it is half done:
// what fn sees and what the observer has been told agree. Keep ranges
// small; writes to them wait.
func (s *Store) ScanLocked(from, to uint64, fn func(pos uint64, key []byte, o Object), then func()) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	defer s.lockRange(from, to)()
	err := s.scan(from, to, func(pos uint64, key []byte, o Object) bool {
		fn(pos, key, o)
		return true
	})
	if err == nil && then != nil {
		then()
	}
	return err
}

// lockRange locks the stripes covering positions [from, to) (to == 0: the
// end of the ring) in order, and returns what unlocks them.
func (s *Store) lockRange(from, to uint64) (unlock func()) {
	last := uint64(Stripes - 1)
	if to != 0 {
		last = Stripe(to - 1)
	}
	for st := Stripe(from); st <= last; st++ {
		s.locks[st].Lock()
	}
	return func() {
		for st := Stripe(from); st <= last; st++ {
			s.locks[st].Unlock()
		}
	}
}

package replica

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// grew reports whether the removal clock next covers a dot that prev does
// not: a header write that removes elements.
func grew(prev, next Clock) bool {
	return len(next) > 0 && !prev.Descends(next)
}

// uncoveredLocked returns an element object without the siblings its
// container header's removal clock covers, reading the header under the
// stripe lock the caller holds (a container and its elements share a
// position, so they share the lock). What is left may be Empty: the
// element is then dropped, the header's removal standing for it.
func (s *Store) uncoveredLocked(pos uint64, name []byte, o Object) (Object, error) {
	key, _, _, _ := SplitElement(name)
	h, err := s.getLocked(pos, key)
	if err != nil || len(h.Removed) == 0 {
		return o, err
	}
	return Settle(h.Removed, o), nil
}

// Settle returns an element object as a replica keeps it under its
// container's removal clock: without the siblings the clock covers, and
// Empty (dropped) when nothing is left that the removal does not stand
// for. Replicas settle every element they store, so a removed element
// never comes back from a replica that had not heard of the removal.
func Settle(removed Clock, o Object) Object {
	if len(removed) == 0 {
		return o
	}
	o = o.Uncovered(removed)
	if len(o.Siblings) == 0 && removed.Descends(o.Clock) {
		return Object{}
	}
	return o
}

// coveredElement is one element a header's removal clock changed: written
// (or deleted when Empty) in the header's batch.
type coveredElement struct {
	k, name   []byte
	old, next Object
	enc       []byte
}

func (e coveredElement) write(b *pebble.Batch) {
	if e.next.Empty() {
		b.Delete(e.k, nil)
	} else {
		b.Set(e.k, e.enc, nil)
	}
}

// coveredLocked finds the elements of the container key that the removal
// clock removed covers, for the header write that grew it to drop them in
// the same batch. It reads the whole container: a whole-container removal
// costs what Redis's DEL of a large key does.
func (s *Store) coveredLocked(pos uint64, key []byte, removed Clock) ([]coveredElement, error) {
	var out []coveredElement
	prefix := AppendElementPrefix(nil, key, 0)
	err := s.elementsOf(pos, prefix[:len(prefix)-1], nil,
		func(k, name []byte, o Object) bool {
			next := Settle(removed, o)
			if !next.Empty() && len(next.Siblings) == len(o.Siblings) {
				return true
			}
			e := coveredElement{k: bytes.Clone(k), name: bytes.Clone(name), old: o, next: next}
			if !next.Empty() {
				e.enc = AppendObject(nil, next)
			}
			out = append(out, e)
			return true
		})
	return out, err
}

// elementsOf calls fn, in name order, for every element object at pos
// whose name begins with prefix and sorts after after, until fn returns
// false. The objects are fn's to keep; k and name only for the call.
func (s *Store) elementsOf(pos uint64, prefix, after []byte, fn func(k, name []byte, o Object) bool) error {
	lower := objectKey(pos, prefix)
	if after != nil {
		lower = append(objectKey(pos, after), 0)
	}
	upper := objectKey(pos, prefixEnd(prefix))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("elements: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("elements: %w", err)
		}
		o, err := DecodeObject(bytes.Clone(v)) // fn may keep it
		if err != nil {
			s.skipCorrupt("object", it.Key()[9:], err)
			continue
		}
		if !fn(it.Key(), it.Key()[9:], o) {
			break
		}
	}
	return it.Error()
}

// Elements returns up to limit element objects of the container whose
// element names begin with prefix (AppendElementPrefix), in name order,
// after the name after (nil: from the first). Tombstones come too: a range
// read merges replicas element by element.
func (s *Store) Elements(prefix, after []byte, limit int) ([]KeyObject, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.gate.RUnlock()
	out := make([]KeyObject, 0, min(limit, 1024))
	err := s.elementsOf(Position(prefix), prefix, after, func(_, name []byte, o Object) bool {
		out = append(out, KeyObject{bytes.Clone(name), o})
		return len(out) < limit
	})
	return out, err
}

// ContainerClock returns the join of the clocks of every element this
// replica holds of the container key, of every type: what a removal of
// the whole container, coordinated now, observed here. With before > 0 it
// joins only the dots of element versions (siblings) written before that
// time (ms): what an expiry at before removed. Dot numbers are in mint
// order per actor, so covering an actor's latest dot before the expiry
// covers none of that actor's later writes.
func (s *Store) ContainerClock(key []byte, before int64) (Clock, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.gate.RUnlock()
	var c Clock
	prefix := AppendElementPrefix(nil, key, 0)
	err := s.elementsOf(Position(key), prefix[:len(prefix)-1], nil, func(_, _ []byte, o Object) bool {
		if before == 0 {
			c = c.Join(o.Clock)
			return true
		}
		for _, sib := range o.Siblings {
			if sib.Time < before {
				c = c.With(sib.Dot.Actor, sib.Dot.Counter)
			}
		}
		return true
	})
	return c, err
}

// EachElement calls fn with the name and clock of every element object
// whose name begins with prefix, in name order: anti-entropy's view of a
// container (or of a bucket of it).
func (s *Store) EachElement(prefix []byte, fn func(name []byte, clock Clock)) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	return s.elementsOf(Position(prefix), prefix, nil, func(_, name []byte, o Object) bool {
		fn(name, o.Clock)
		return true
	})
}

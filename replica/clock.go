package replica

import (
	"slices"
	"strings"
)

// Dot names one write: the actor that coordinated it and that actor's counter
// at the time. An actor mints each counter once, so a dot identifies a sibling.
type Dot struct {
	Actor   string
	Counter uint64
}

// Entry is one actor's counter in a Clock.
type Entry struct {
	Actor   string
	Counter uint64
}

// Clock is a version vector: for each actor, the highest counter whose writes
// it has seen. It is kept sorted by actor, so that equal clocks are equal
// slices and encode to equal bytes. A Clock is never modified in place by the
// functions here; they return new clocks.
type Clock []Entry

// Get returns the counter of actor, or 0.
func (c Clock) Get(actor string) uint64 {
	i, ok := c.find(actor)
	if !ok {
		return 0
	}
	return c[i].Counter
}

func (c Clock) find(actor string) (int, bool) {
	return slices.BinarySearchFunc(c, actor, func(e Entry, a string) int {
		return strings.Compare(e.Actor, a)
	})
}

// Covers reports whether the write named by d is in c's causal past.
func (c Clock) Covers(d Dot) bool {
	return d.Counter <= c.Get(d.Actor)
}

// Descends reports whether c has seen everything o has.
func (c Clock) Descends(o Clock) bool {
	for _, e := range o {
		if c.Get(e.Actor) < e.Counter {
			return false
		}
	}
	return true
}

// Equal reports whether both clocks have the same entries.
func (c Clock) Equal(o Clock) bool {
	return slices.Equal(c, o)
}

// Join returns the least clock that descends from both c and o: the
// per-actor maximum.
func (c Clock) Join(o Clock) Clock {
	out := make(Clock, 0, len(c)+len(o))
	i, j := 0, 0
	for i < len(c) && j < len(o) {
		switch cmp := strings.Compare(c[i].Actor, o[j].Actor); {
		case cmp < 0:
			out = append(out, c[i])
			i++
		case cmp > 0:
			out = append(out, o[j])
			j++
		default:
			out = append(out, Entry{c[i].Actor, max(c[i].Counter, o[j].Counter)})
			i++
			j++
		}
	}
	out = append(out, c[i:]...)
	return append(out, o[j:]...)
}

// With returns a copy of c in which actor's counter is at least counter.
func (c Clock) With(actor string, counter uint64) Clock {
	return c.Join(Clock{{actor, counter}})
}

// valid reports whether c is sorted by actor with no duplicates and no zero
// counters: the canonical form every function here produces.
func (c Clock) valid() bool {
	for i, e := range c {
		if e.Counter == 0 || e.Actor == "" {
			return false
		}
		if i > 0 && c[i-1].Actor >= e.Actor {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of c, actors included: clocks decoded from a
// scan alias the scan's buffers and must be cloned to outlive it.
func (c Clock) Clone() Clock {
	if c == nil {
		return nil
	}
	out := make(Clock, len(c))
	for i, e := range c {
		out[i] = Entry{strings.Clone(e.Actor), e.Counter}
	}
	return out
}

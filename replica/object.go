package replica

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
)

// Kind says how a sibling's value is interpreted.
type Kind uint8

// The sibling kinds.
const (
	// KindBytes is a plain string value, as Redis stores it.
	KindBytes Kind = iota
	// KindCounter is a convergent counter whose Value is an encoded Counter.
	KindCounter
	// KindHash and KindSet mark a header sibling of a container: the key
	// is a hash or a set whose elements are objects of their own (see
	// ElementName). The sibling's value is empty.
	KindHash
	KindSet
	maxKind = KindSet
)

// Container reports whether k is the kind of a container's header.
func (k Kind) Container() bool { return k == KindHash || k == KindSet }

// MaxSiblings bounds how many siblings a client write may leave on an
// object. Past it the write is refused: a key whose writers never read back
// with a context would otherwise grow without end. Repair and handoff merges
// are exempt so that replicas can always converge.
const MaxSiblings = 100

// Sibling is one concurrent version of a key: a value (or a tombstone) and
// the dot of the write that made it.
type Sibling struct {
	Dot Dot
	// Time is the coordinator's wall clock in ms at the write. It only
	// decides which sibling GET answers; causality never depends on it.
	Time int64
	// Expiry is the absolute time in ms after which the sibling reads as
	// absent; 0 means never.
	Expiry    int64
	Tombstone bool
	Kind      Kind
	Value     []byte
}

// Live reports whether s reads as present at now (ms).
func (s *Sibling) Live(now int64) bool {
	return !s.Tombstone && (s.Expiry == 0 || now < s.Expiry)
}

// Object is everything a replica stores for one key: the siblings and the
// clock of every write the replica has seen for the key. Every sibling's dot
// is covered by Clock, and siblings are sorted by dot.
type Object struct {
	Clock    Clock
	Siblings []Sibling
	// Removed is a container header's removal clock: every element sibling
	// whose dot it covers was written before a whole-container removal
	// (DEL, SET over the container, expiry) that its writer observed, and
	// reads as deleted. It only grows: every update keeps it and sync joins
	// it, so a removal is never forgotten while covered elements may still
	// arrive (observed-remove, add-wins).
	Removed Clock
}

// Empty reports whether the object records nothing at all: a key never
// written, as opposed to one deleted (which keeps a tombstone and a clock).
func (o Object) Empty() bool {
	return len(o.Clock) == 0 && len(o.Siblings) == 0 && len(o.Removed) == 0
}

// Context is the causal context a client receives with a read: the clock.
// A write carrying it supersedes exactly the siblings the read returned.
func (o Object) Context() Clock {
	return o.Clock
}

// Live returns the siblings that read as present at now, in dot order.
func (o Object) Live(now int64) []Sibling {
	var out []Sibling
	for i := range o.Siblings {
		if o.Siblings[i].Live(now) {
			out = append(out, o.Siblings[i])
		}
	}
	return out
}

// HasLive reports whether any sibling reads as present at now.
func (o Object) HasLive(now int64) bool {
	for i := range o.Siblings {
		if o.Siblings[i].Live(now) {
			return true
		}
	}
	return false
}

// Update is a coordinator's write of s under the causal context ctx, with
// the dot minted for it (Store.Mint: a number never issued before). It
// drops every sibling that ctx covers, adds s with the dot, and advances
// the clock past both the object's and the context's.
//
// Two writes through the same actor with the same context therefore get
// different dots and survive as siblings: no update is lost. The dot's
// number must exceed every number of its actor that o's clock or ctx
// holds (Store.Vouches checks a client's context for that); then the new
// clock covers exactly what the writer saw, and its own write.
func Update(o Object, ctx Clock, s Sibling, dot Dot) Object {
	s.Dot = dot
	kept := make([]Sibling, 0, len(o.Siblings)+1)
	for _, old := range o.Siblings {
		if !ctx.Covers(old.Dot) {
			kept = append(kept, old)
		}
	}
	kept = append(kept, s)
	slices.SortFunc(kept, compareSiblings)
	return Object{Clock: advance(o.Clock, ctx, dot.Actor, dot.Counter), Siblings: kept, Removed: o.Removed}
}

// advance returns the join of the object's clock and the context, with
// actor's counter set to counter: Join and With in one allocation.
func advance(c, ctx Clock, actor string, counter uint64) Clock {
	out := make(Clock, 0, len(c)+len(ctx)+1)
	i, j, placed := 0, 0, false
	add := func(e Entry) {
		if e.Actor == actor {
			e.Counter, placed = max(e.Counter, counter), true
		} else if !placed && e.Actor > actor {
			out, placed = append(out, Entry{actor, counter}), true
		}
		out = append(out, e)
	}
	for i < len(c) || j < len(ctx) {
		switch {
		case j == len(ctx) || (i < len(c) && c[i].Actor < ctx[j].Actor):
			add(c[i])
			i++
		case i == len(c) || ctx[j].Actor < c[i].Actor:
			add(ctx[j])
			j++
		default:
			add(Entry{c[i].Actor, max(c[i].Counter, ctx[j].Counter)})
			i++
			j++
		}
	}
	if !placed {
		out = append(out, Entry{actor, counter})
	}
	return out
}

// Sync merges two replicas' objects for the same key: it keeps every sibling
// that the other side has not seen (its dot is not covered by the other's
// clock) or that both hold, and joins the clocks. Sync is commutative,
// associative and idempotent, so replicas converge whatever the order in
// which they exchange objects.
func Sync(a, b Object) Object {
	out := make([]Sibling, 0, max(len(a.Siblings), len(b.Siblings)))
	i, j := 0, 0
	for i < len(a.Siblings) || j < len(b.Siblings) {
		var c int
		switch {
		case i == len(a.Siblings):
			c = 1
		case j == len(b.Siblings):
			c = -1
		default:
			c = compareSiblings(a.Siblings[i], b.Siblings[j])
		}
		switch {
		case c == 0:
			out = append(out, a.Siblings[i])
			i++
			j++
		case c < 0:
			if !b.Clock.Covers(a.Siblings[i].Dot) {
				out = append(out, a.Siblings[i])
			}
			i++
		default:
			if !a.Clock.Covers(b.Siblings[j].Dot) {
				out = append(out, b.Siblings[j])
			}
			j++
		}
	}
	return Object{Clock: a.Clock.Join(b.Clock), Siblings: out, Removed: joinRemoved(a.Removed, b.Removed)}
}

// Equal reports whether two objects hold the same clock and siblings.
func (o Object) Equal(p Object) bool {
	return o.Clock.Equal(p.Clock) && o.Removed.Equal(p.Removed) && slices.EqualFunc(o.Siblings, p.Siblings, func(a, b Sibling) bool {
		return a.Dot == b.Dot && a.Time == b.Time && a.Expiry == b.Expiry &&
			a.Tombstone == b.Tombstone && a.Kind == b.Kind && bytes.Equal(a.Value, b.Value)
	})
}

func compareSiblings(a, b Sibling) int {
	if c := strings.Compare(a.Dot.Actor, b.Dot.Actor); c != 0 {
		return c
	}
	return cmp.Compare(a.Dot.Counter, b.Dot.Counter)
}

// ReplyContext is the context a writer gets back after its write of dot
// under ctx produced o: ctx plus the new dot, so that writing again with it
// supersedes the caller's own write. A version vector that covers dot also
// covers every earlier dot of the same actor, so when o still holds such a
// sibling that the caller never saw, ctx alone is returned: the next write
// then leaves a sibling instead of silently superseding a stranger's value.
func ReplyContext(o Object, ctx Clock, dot Dot) Clock {
	next := ctx.With(dot.Actor, dot.Counter)
	for _, s := range o.Siblings {
		if s.Dot != dot && next.Covers(s.Dot) {
			return ctx
		}
	}
	return next
}

// joinRemoved joins two removal clocks without allocating when either is
// empty, as it is for every string.
func joinRemoved(a, b Clock) Clock {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	return a.Join(b)
}

// Uncovered returns o without the siblings whose dots removed covers: an
// element object as it reads under its container's removal clock.
func (o Object) Uncovered(removed Clock) Object {
	if len(removed) == 0 {
		return o
	}
	kept := o.Siblings[:0:0]
	for _, s := range o.Siblings {
		if !removed.Covers(s.Dot) {
			kept = append(kept, s)
		}
	}
	if len(kept) == len(o.Siblings) {
		return o
	}
	return Object{Clock: o.Clock, Siblings: kept, Removed: o.Removed}
}

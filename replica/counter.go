package replica

import (
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// ErrOverflow is an increment that would take a counter out of int64.
var ErrOverflow = errors.New("replica: increment or decrement would overflow")

// Counter is a convergent counter (a PN-counter on a base): the value it
// started from and, per actor, the total of its increments and of its
// decrements. Both totals only grow, so merging two versions by per-actor
// maximum keeps every increment made anywhere exactly once.
type Counter struct {
	// Base is the value the counter started from, and Origin the dot of
	// the write that value came from (zero when it started from nothing).
	// Counters with different origins were restarted concurrently (a SET
	// in between) and do not merge.
	Base   int64
	Origin Dot
	Totals []CounterTotal // sorted by actor
}

// CounterTotal is one actor's share of a counter.
type CounterTotal struct {
	Actor      string
	Incr, Decr uint64
}

// Value returns the counter's value, and false if it does not fit int64.
func (c Counter) Value() (int64, bool) {
	v := big.NewInt(c.Base)
	var t big.Int
	for _, e := range c.Totals {
		v.Add(v, t.SetUint64(e.Incr))
		v.Sub(v, t.SetUint64(e.Decr))
	}
	if !v.IsInt64() {
		return 0, false
	}
	return v.Int64(), true
}

// Add returns the counter with delta added on actor's behalf, or
// ErrOverflow if the value would leave int64.
func (c Counter) Add(actor string, delta int64) (Counter, error) {
	v, ok := c.Value()
	if !ok || (delta > 0 && v > math.MaxInt64-delta) || (delta < 0 && v < math.MinInt64-delta) {
		return c, ErrOverflow
	}
	out := Counter{Base: c.Base, Origin: c.Origin, Totals: slices.Clone(c.Totals)}
	i, found := slices.BinarySearchFunc(out.Totals, actor, func(e CounterTotal, a string) int { return strings.Compare(e.Actor, a) })
	if !found {
		out.Totals = slices.Insert(out.Totals, i, CounterTotal{Actor: actor})
	}
	e := &out.Totals[i]
	if delta >= 0 {
		if e.Incr > math.MaxUint64-uint64(delta) {
			return c, ErrOverflow
		}
		e.Incr += uint64(delta)
	} else {
		d := uint64(-(delta + 1)) + 1 // |delta|, even for MinInt64
		if e.Decr > math.MaxUint64-d {
			return c, ErrOverflow
		}
		e.Decr += d
	}
	return out, nil
}

// mergeCounters joins two versions of a counter with the same origin: the
// per-actor maximum of each total.
func mergeCounters(a, b Counter) Counter {
	out := Counter{Base: a.Base, Origin: a.Origin}
	i, j := 0, 0
	for i < len(a.Totals) || j < len(b.Totals) {
		switch {
		case j == len(b.Totals) || (i < len(a.Totals) && a.Totals[i].Actor < b.Totals[j].Actor):
			out.Totals = append(out.Totals, a.Totals[i])
			i++
		case i == len(a.Totals) || b.Totals[j].Actor < a.Totals[i].Actor:
			out.Totals = append(out.Totals, b.Totals[j])
			j++
		default:
			out.Totals = append(out.Totals, CounterTotal{a.Totals[i].Actor,
				max(a.Totals[i].Incr, b.Totals[j].Incr), max(a.Totals[i].Decr, b.Totals[j].Decr)})
			i++
			j++
		}
	}
	return out
}

// AppendCounter appends the binary encoding of c to dst.
func AppendCounter(dst []byte, c Counter) []byte {
	dst = binary.AppendVarint(dst, c.Base)
	dst = AppendBytes(dst, []byte(c.Origin.Actor))
	dst = binary.AppendUvarint(dst, c.Origin.Counter)
	dst = binary.AppendUvarint(dst, uint64(len(c.Totals)))
	for _, e := range c.Totals {
		dst = AppendBytes(dst, []byte(e.Actor))
		dst = binary.AppendUvarint(dst, e.Incr)
		dst = binary.AppendUvarint(dst, e.Decr)
	}
	return dst
}

// DecodeCounter parses what AppendCounter produced.
func DecodeCounter(b []byte) (Counter, error) {
	d := NewReader(b)
	c := Counter{Base: d.Varint()}
	c.Origin = Dot{string(d.Bytes()), d.Uvarint()}
	n := d.count(3)
	for range n {
		e := CounterTotal{Actor: string(d.Bytes())}
		e.Incr, e.Decr = d.Uvarint(), d.Uvarint()
		if d.Failed() || e.Actor == "" || (len(c.Totals) > 0 && c.Totals[len(c.Totals)-1].Actor >= e.Actor) {
			return Counter{}, ErrCorrupt
		}
		c.Totals = append(c.Totals, e)
	}
	if d.Failed() || len(d.Rest()) != 0 {
		return Counter{}, ErrCorrupt
	}
	return c, nil
}

// Value is what a key reads as: GET's answer and what a read-modify-write
// builds on.
type Value struct {
	// Bytes is the value as Redis returns it; a counter in decimal.
	Bytes  []byte
	Expiry int64
	// Counter is set when the value is a counter.
	Counter *Counter
	// Dot is the dot of the write the value comes from (for a counter, of
	// its latest sibling); a counter started from this value uses it as
	// its origin.
	Dot  Dot
	Time int64
	// Kind is the winning sibling's kind: a container's header reads as
	// KindHash or KindSet, which string commands answer -WRONGTYPE to.
	Kind Kind
}

// Resolve returns what o reads as at now. Among the live siblings, plain
// values and counters compete by the time they were written (ties: the
// higher actor), so every replica with the same siblings answers the same;
// counter siblings with the same origin first merge into one counter, so
// concurrent increments all count.
func (o Object) Resolve(now int64) (Value, bool) {
	if v, ok, counters := o.resolveValues(now); !counters {
		return v, ok
	}
	var best *Value
	var bestActor string
	consider := func(v Value) {
		if best == nil || v.Time > best.Time || (v.Time == best.Time && (v.Dot.Actor > bestActor ||
			(v.Dot.Actor == bestActor && v.Dot.Counter > best.Dot.Counter))) {
			best, bestActor = &v, v.Dot.Actor
		}
	}
	groups := map[Dot]*Value{}
	var order []Dot
	for i := range o.Siblings {
		s := &o.Siblings[i]
		if !s.Live(now) {
			continue
		}
		if s.Kind != KindCounter {
			consider(Value{Bytes: s.Value, Expiry: s.Expiry, Dot: s.Dot, Time: s.Time, Kind: s.Kind})
			continue
		}
		c, err := DecodeCounter(s.Value)
		if err != nil {
			continue
		}
		g, ok := groups[c.Origin]
		if !ok {
			groups[c.Origin] = &Value{Counter: &c, Expiry: s.Expiry, Dot: s.Dot, Time: s.Time, Kind: KindCounter}
			order = append(order, c.Origin)
			continue
		}
		merged := mergeCounters(*g.Counter, c)
		g.Counter = &merged
		if s.Time > g.Time || (s.Time == g.Time && s.Dot.Actor > g.Dot.Actor) {
			g.Time, g.Expiry, g.Dot = s.Time, s.Expiry, s.Dot
		}
	}
	for _, origin := range order {
		g := groups[origin]
		v, ok := g.Counter.Value()
		if !ok {
			continue
		}
		g.Bytes = strconv.AppendInt(nil, v, 10)
		consider(*g)
	}
	if best == nil {
		return Value{}, false
	}
	return *best, true
}

// Display is a sibling's own value as DGET shows it: a counter sibling in
// decimal (its own share, before merging with its concurrent siblings).
func (s *Sibling) Display() []byte {
	if s.Kind != KindCounter {
		return s.Value
	}
	c, err := DecodeCounter(s.Value)
	if err != nil {
		return nil
	}
	v, _ := c.Value()
	return strconv.AppendInt(nil, v, 10)
}

// resolveValues is Resolve for the common case of an object without live
// counter siblings, without allocating; counters reports that there are
// some and Resolve must do the full work.
func (o Object) resolveValues(now int64) (v Value, ok, counters bool) {
	var best *Sibling
	for i := range o.Siblings {
		s := &o.Siblings[i]
		if !s.Live(now) {
			continue
		}
		if s.Kind == KindCounter {
			return Value{}, false, true
		}
		if best == nil || s.Time > best.Time || (s.Time == best.Time && (s.Dot.Actor > best.Dot.Actor ||
			(s.Dot.Actor == best.Dot.Actor && s.Dot.Counter > best.Dot.Counter))) {
			best = s
		}
	}
	if best == nil {
		return Value{}, false, false
	}
	return Value{Bytes: best.Value, Expiry: best.Expiry, Dot: best.Dot, Time: best.Time, Kind: best.Kind}, true, false
}

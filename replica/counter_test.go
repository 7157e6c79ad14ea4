package replica

import (
	"errors"
	"math"
	"strconv"
	"testing"
)

// incr is the coordinator's INCR on actor's replica: build on what the key
// reads as, supersede what this replica has seen.
func incr(t *testing.T, o Object, actor string, delta int64, now int64) Object {
	t.Helper()
	var c Counter
	expiry := int64(0)
	if v, ok := o.Resolve(now); ok {
		expiry = v.Expiry
		if v.Counter != nil {
			c = *v.Counter
		} else {
			base, err := strconv.ParseInt(string(v.Bytes), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			c = Counter{Base: base, Origin: v.Dot}
		}
	}
	c, err := c.Add(actor, delta)
	if err != nil {
		t.Fatal(err)
	}
	next, _ := updateAs(o, o.Context(), Sibling{Kind: KindCounter, Value: AppendCounter(nil, c), Time: now, Expiry: expiry}, actor)
	return next
}

func read(t *testing.T, o Object) string {
	t.Helper()
	v, ok := o.Resolve(0)
	if !ok {
		return "(nil)"
	}
	return string(v.Bytes)
}

func TestConcurrentIncrementsAllCount(t *testing.T) {
	base := put(Object{}, nil, "10", "a", 1)
	a, b, c := base, Sync(Object{}, base), Sync(Object{}, base)
	// Three replicas increment while partitioned from each other.
	for i := range 5 {
		a = incr(t, a, "a", 1, int64(10+i))
		b = incr(t, b, "b", 2, int64(10+i))
	}
	c = incr(t, c, "c", -3, 20)
	all := Sync(Sync(a, b), c)
	if got := read(t, all); got != strconv.Itoa(10+5+10-3) {
		t.Fatalf("after the replicas met: %s, want 22", got)
	}
	// Merging again changes nothing; an increment after the merge builds on
	// everything and supersedes the concurrent siblings.
	if got := read(t, Sync(all, a)); got != "22" {
		t.Fatalf("idempotent merge: %s", got)
	}
	next := incr(t, all, "a", 1, 30)
	if got := read(t, next); got != "23" || len(next.Live(0)) != 1 {
		t.Fatalf("after a merged increment: %s with %d siblings", got, len(next.Live(0)))
	}
}

func TestSetRestartsTheCounter(t *testing.T) {
	o := incr(t, Object{}, "a", 5, 1)
	reset := put(Sync(Object{}, o), nil, "100", "b", 2) // SET on another replica
	o = incr(t, o, "a", 1, 3)                           // concurrent increment
	merged := Sync(o, reset)
	// The latest write wins: the increment at time 3 over the SET at 2.
	if got := read(t, merged); got != "6" {
		t.Fatalf("got %s, want 6 (the later counter)", got)
	}
	later := put(merged, merged.Context(), "7", "b", 4)
	if got := read(t, incr(t, later, "a", 1, 5)); got != "8" {
		t.Fatalf("INCR after a SET: %s, want 8", got)
	}
}

func TestCounterOverflow(t *testing.T) {
	c := Counter{Base: math.MaxInt64 - 1}
	c, err := c.Add("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add("a", 1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("past MaxInt64: %v", err)
	}
	d := Counter{Base: math.MinInt64 + 1}
	if d, err = d.Add("a", -1); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Value(); v != math.MinInt64 {
		t.Fatalf("value %d", v)
	}
	if _, err := d.Add("b", -1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("past MinInt64: %v", err)
	}
	if _, err := (Counter{}).Add("a", math.MinInt64); err != nil {
		t.Fatalf("adding MinInt64 to 0: %v", err)
	}
}

func TestCounterEncoding(t *testing.T) {
	c := Counter{Base: -7, Origin: Dot{"x#1", 3}}
	c, _ = c.Add("b", 5)
	c, _ = c.Add("a", -2)
	got, err := DecodeCounter(AppendCounter(nil, c))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Value(); v != -4 || got.Origin != c.Origin || len(got.Totals) != 2 || got.Totals[0].Actor != "a" {
		t.Fatalf("round trip: %+v", got)
	}
	for _, bad := range [][]byte{nil, {0x80}, append(AppendCounter(nil, c), 1)} {
		if _, err := DecodeCounter(bad); err == nil {
			t.Fatalf("%v decoded", bad)
		}
	}
}

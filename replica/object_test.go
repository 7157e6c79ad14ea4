package replica

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// updateAs is Update with a dot the test mints for actor: one past what the
// object and the context hold of it, as a node's sequence always is.
func updateAs(o Object, ctx Clock, s Sibling, actor string) (Object, Dot) {
	d := Dot{actor, max(o.Clock.Get(actor), ctx.Get(actor)) + 1}
	return Update(o, ctx, s, d), d
}

// mustMint mints a dot of s for a write in a test.
func mustMint(s *Store) Dot {
	d, err := s.Mint()
	if err != nil {
		panic(err)
	}
	return d
}

func val(s Sibling) string { return string(s.Value) }

func values(o Object, now int64) []string {
	var out []string
	for _, s := range o.Live(now) {
		out = append(out, val(s))
	}
	slices.Sort(out)
	return out
}

func put(o Object, ctx Clock, v, actor string, t int64) Object {
	n, _ := updateAs(o, ctx, Sibling{Value: []byte(v), Time: t}, actor)
	return n
}

func TestClockJoinAndCovers(t *testing.T) {
	a := Clock{{"a", 2}, {"c", 1}}
	b := Clock{{"b", 5}, {"c", 3}}
	j := a.Join(b)
	want := Clock{{"a", 2}, {"b", 5}, {"c", 3}}
	if !j.Equal(want) {
		t.Fatalf("join = %v, want %v", j, want)
	}
	if !j.Descends(a) || !j.Descends(b) || a.Descends(b) {
		t.Fatalf("descends wrong")
	}
	cases := []struct {
		d    Dot
		want bool
	}{
		{Dot{"a", 2}, true}, {Dot{"a", 3}, false}, {Dot{"z", 1}, false}, {Dot{"c", 3}, true},
	}
	for _, c := range cases {
		if got := j.Covers(c.d); got != c.want {
			t.Errorf("covers(%v) = %v, want %v", c.d, got, c.want)
		}
	}
	if got := a.With("b", 1); !got.Equal(Clock{{"a", 2}, {"b", 1}, {"c", 1}}) {
		t.Errorf("with = %v", got)
	}
	if len(a) != 2 {
		t.Errorf("join modified its receiver")
	}
}

func TestUpdateTable(t *testing.T) {
	var empty Object
	one := put(empty, nil, "v1", "a", 1)
	cases := []struct {
		name   string
		obj    Object
		ctx    Clock
		actor  string
		values []string
		clock  Clock
	}{
		{"first write", empty, nil, "a", []string{"new"}, Clock{{"a", 1}}},
		{"blind write keeps sibling", one, nil, "a", []string{"new", "v1"}, Clock{{"a", 2}}},
		{"context supersedes", one, one.Clock, "a", []string{"new"}, Clock{{"a", 2}}},
		{"other actor with context", one, one.Clock, "b", []string{"new"}, Clock{{"a", 1}, {"b", 1}}},
		{"context ahead of replica", one, Clock{{"a", 5}}, "a", []string{"new"}, Clock{{"a", 6}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := put(c.obj, c.ctx, "new", c.actor, 2)
			if vs := values(got, 0); !slices.Equal(vs, c.values) {
				t.Errorf("values = %v, want %v", vs, c.values)
			}
			if !got.Clock.Equal(c.clock) {
				t.Errorf("clock = %v, want %v", got.Clock, c.clock)
			}
		})
	}
}

// Two clients read the same object, each change it and write back through
// the same node with the same context: both writes survive as siblings.
func TestSameContextSameNodeKeepsBoth(t *testing.T) {
	o := put(Object{}, nil, "base", "a", 1)
	ctx := o.Context()
	o = put(o, ctx, "alice", "a", 2)
	o = put(o, ctx, "bob", "a", 3)
	if got := values(o, 0); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("siblings = %v, want alice and bob", got)
	}
	merged := put(o, o.Context(), "both", "a", 4)
	if got := values(merged, 0); !slices.Equal(got, []string{"both"}) {
		t.Fatalf("after write with full context: %v", got)
	}
}

// A DPUT with a DGET's context supersedes exactly the siblings the DGET
// returned; a write concurrent with it on another replica survives.
func TestContextSupersedesExactlyWhatWasRead(t *testing.T) {
	// Replicas a and b both hold x; c concurrently writes y on its own.
	ra := put(Object{}, nil, "x", "a", 1)
	rb := Sync(Object{}, ra)
	read := Sync(ra, rb) // the DGET: R=2 replies merged
	rc := put(rb, nil, "y", "c", 2)
	// The client writes z through a with the DGET's context.
	ra = put(ra, read.Context(), "z", "a", 3)
	if got := values(ra, 0); !slices.Equal(got, []string{"z"}) {
		t.Fatalf("coordinator holds %v, want z", got)
	}
	all := Sync(Sync(ra, rb), rc)
	if got := values(all, 0); !slices.Equal(got, []string{"y", "z"}) {
		t.Fatalf("after sync: %v, want y (concurrent) and z", got)
	}
}

func TestReplyContext(t *testing.T) {
	o := put(Object{}, nil, "base", "a", 1)
	ctx := o.Context()
	first, d1 := updateAs(o, ctx, Sibling{Value: []byte("alice")}, "a")
	// Alice's reply context supersedes her own write when she writes again.
	rc := ReplyContext(first, ctx, d1)
	again := put(first, rc, "alice2", "a", 2)
	if got := values(again, 0); !slices.Equal(got, []string{"alice2"}) {
		t.Fatalf("rewrite with reply context: %v", got)
	}
	// Bob wrote from the same old context after Alice: his reply context
	// must not cover Alice's sibling, which he never saw.
	second, d2 := updateAs(first, ctx, Sibling{Value: []byte("bob")}, "a")
	rc2 := ReplyContext(second, ctx, d2)
	if rc2.Covers(d1) {
		t.Fatalf("bob's reply context %v covers alice's dot %v", rc2, d1)
	}
	after := put(second, rc2, "bob2", "a", 3)
	if got := values(after, 0); !slices.Contains(got, "alice") {
		t.Fatalf("alice's write lost: %v", got)
	}
}

func TestPickAndExpiry(t *testing.T) {
	o := put(Object{}, nil, "old", "b", 10)
	o = put(o, nil, "new", "a", 20)
	if s, _ := o.Resolve(0); string(s.Bytes) != "new" {
		t.Fatalf("pick = %q, want the later write", s.Bytes)
	}
	tie := put(put(Object{}, nil, "from-a", "a", 5), nil, "from-b", "b", 5)
	if s, _ := tie.Resolve(0); string(s.Bytes) != "from-b" {
		t.Fatalf("tie pick = %q, want the higher actor", s.Bytes)
	}
	exp, _ := updateAs(Object{}, nil, Sibling{Value: []byte("v"), Time: 1, Expiry: 100}, "a")
	if _, ok := exp.Resolve(99); !ok {
		t.Fatalf("expired too early")
	}
	if _, ok := exp.Resolve(100); ok || exp.HasLive(100) {
		t.Fatalf("reads after expiry")
	}
	del, _ := updateAs(o, o.Context(), Sibling{Tombstone: true, Time: 30}, "a")
	if _, ok := del.Resolve(0); ok || del.Empty() {
		t.Fatalf("tombstone reads as present, or object forgot the delete")
	}
}

// history builds reachable replica states: a few actors write with random
// contexts and replicas exchange objects at random, as a cluster would.
type history struct {
	rng      *rand.Rand
	replicas []Object
	n        int
}

func newHistory(seed uint64) *history {
	return &history{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), replicas: make([]Object, 4)}
}

func (h *history) step() {
	i := h.rng.IntN(len(h.replicas))
	switch h.rng.IntN(4) {
	case 0, 1: // a write at replica i, actor = its index
		var ctx Clock
		if h.rng.IntN(3) > 0 { // a context read from some replica
			ctx = h.replicas[h.rng.IntN(len(h.replicas))].Context()
		}
		h.n++
		s := Sibling{Value: fmt.Appendf(nil, "v%d", h.n), Time: int64(h.n), Tombstone: h.rng.IntN(8) == 0}
		if h.rng.IntN(5) == 0 {
			s.Expiry = int64(h.n + 10)
		}
		h.replicas[i], _ = updateAs(h.replicas[i], ctx, s, fmt.Sprintf("r%d#x", i))
	case 2: // i pulls from another replica
		j := h.rng.IntN(len(h.replicas))
		h.replicas[i] = Sync(h.replicas[i], h.replicas[j])
	case 3: // a whole-container removal at replica i: its removal clock
		// takes in what some replica had seen
		j := h.rng.IntN(len(h.replicas))
		h.n++
		o, _ := updateAs(h.replicas[i], h.replicas[i].Context(), Sibling{Time: int64(h.n), Tombstone: true}, fmt.Sprintf("r%d#x", i))
		o.Removed = o.Removed.Join(h.replicas[j].Clock)
		h.replicas[i] = o
	}
}

func (h *history) object() Object { return h.replicas[h.rng.IntN(len(h.replicas))] }

func TestSyncLaws(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		h := newHistory(seed)
		for range 40 {
			h.step()
		}
		a, b, c := h.object(), h.object(), h.object()
		if !Sync(a, b).Equal(Sync(b, a)) {
			t.Fatalf("seed %d: sync not commutative\na=%v\nb=%v", seed, a, b)
		}
		if !Sync(Sync(a, b), c).Equal(Sync(a, Sync(b, c))) {
			t.Fatalf("seed %d: sync not associative", seed)
		}
		if !Sync(a, a).Equal(a) || !Sync(Sync(a, b), b).Equal(Sync(a, b)) {
			t.Fatalf("seed %d: sync not idempotent", seed)
		}
		if !Sync(a, b).Clock.Descends(a.Clock) {
			t.Fatalf("seed %d: merged clock lost history", seed)
		}
	}
}

// Every replica converges to the same object once all have exchanged, and
// no write survives unless no one has superseded it.
func TestConvergence(t *testing.T) {
	for seed := uint64(1); seed <= 100; seed++ {
		h := newHistory(seed)
		for range 60 {
			h.step()
		}
		var all Object
		for _, r := range h.replicas {
			all = Sync(all, r)
		}
		for i := range h.replicas {
			h.replicas[i] = Sync(h.replicas[i], all)
			if !h.replicas[i].Equal(all) {
				t.Fatalf("seed %d: replica %d did not converge", seed, i)
			}
		}
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		h := newHistory(seed)
		for range 30 {
			h.step()
		}
		o := h.object()
		enc := AppendObject(nil, o)
		if len(enc) > maxEncodedSize(o) {
			t.Fatalf("seed %d: encoding of %d bytes past its bound %d", seed, len(enc), maxEncodedSize(o))
		}
		if n := testing.AllocsPerRun(3, func() { AppendObject(nil, o) }); n != 1 && !raceEnabled {
			t.Fatalf("seed %d: encoding made %v allocations, want 1", seed, n)
		}
		got, err := DecodeObject(enc)
		if err != nil {
			t.Fatalf("seed %d: decode: %v", seed, err)
		}
		if !got.Equal(o) {
			t.Fatalf("seed %d: round trip changed the object", seed)
		}
		ctx, err := DecodeClock(AppendClock(nil, o.Context()))
		if err != nil || !ctx.Equal(o.Context()) {
			t.Fatalf("seed %d: clock round trip: %v %v", seed, ctx, err)
		}
		sealer := NewSealer([]byte("round trip"))
		ctx, err = sealer.Open([]byte("k"), sealer.Seal([]byte("k"), o.Context()))
		if err != nil || !ctx.Equal(o.Context()) {
			t.Fatalf("seed %d: context round trip: %v %v", seed, ctx, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := AppendObject(nil, put(Object{}, nil, "v", "a", 1))
	bad := map[string][]byte{
		"empty":       {},
		"version":     append([]byte{9}, good[1:]...),
		"truncated":   good[:len(good)-1],
		"trailing":    append(append([]byte{}, good...), 0),
		"dot outside": AppendObject(nil, Object{Clock: Clock{{"a", 1}}, Siblings: []Sibling{{Dot: Dot{"a", 2}}}}),
		"unsorted":    AppendObject(nil, Object{Clock: Clock{{"b", 1}, {"a", 1}}}),
	}
	for name, b := range bad {
		if _, err := DecodeObject(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	sealer := NewSealer([]byte("rejects"))
	sealed := sealer.Seal([]byte("k"), Clock{{"a", 1}})
	flipped := []byte(sealed)
	flipped[3] ^= 1
	bare := base64.RawURLEncoding.EncodeToString(AppendClock(nil, Clock{{"a", 1}}))
	for name, c := range map[string]string{
		"not base64": "!!", "short": "AQ", "spaces": "not base64 at all", "trailing byte": sealed + "A",
		"one bit changed": string(flipped), "unsealed": bare,
		"another cluster": NewSealer([]byte("other")).Seal([]byte("k"), Clock{{"a", 1}}),
	} {
		if _, err := sealer.Open([]byte("k"), c); !errors.Is(err, ErrBadContext) {
			t.Errorf("%s: context %q opened: %v", name, c, err)
		}
	}
	if _, err := sealer.Open([]byte("other key"), sealed); !errors.Is(err, ErrBadContext) {
		t.Errorf("a context opened for another key: %v", err)
	}
}

package coord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// deliverHints hands every hint the cluster's nodes hold to its target,
// as hint delivery does once the target is back.
func (tc *testCluster) deliverHints() {
	tc.t.Helper()
	for _, id := range tc.ids {
		from := tc.nodes[id].store
		for target := range from.HintTargets() {
			hs, err := from.Hints(target, nil, 1<<20)
			if err != nil {
				tc.t.Fatal(err)
			}
			for _, h := range hs {
				if _, err := tc.nodes[target].store.Merge(h.Key, h.Object); err != nil {
					tc.t.Fatal(err)
				}
				if _, err := from.DeliveredHint(target, h.Key, h.Object); err != nil {
					tc.t.Fatal(err)
				}
			}
		}
	}
}

// TestFallbackClockGrowsPerOutage is the fifth bug of the dot design: a
// fallback used to mint every write under a one-off actor, so a long
// outage grew the key's clock by an entry per write until it no longer
// decoded. Now 1100 writes through a fallback add one actor.
func TestFallbackClockGrowsPerOutage(t *testing.T) {
	tc := newTestCluster(t, 26, 5, 3, 2, 2, 200*time.Millisecond)
	key := "outage"
	p := tc.primaries(key)
	via := tc.outsider(key)
	// The key exists before the outage. A counter, not a string: on a
	// loaded machine this write may reach a fallback too, and the outage's
	// increments must add to it, not meet a string sibling.
	if _, err := tc.nodes[via].coord.Write(context.Background(), []byte(key), Op{Kind: Incr, Delta: 1}); err != nil {
		t.Fatal(err)
	}
	for _, id := range p {
		tc.net.Remove(id) // gone: refused, so the outsider coordinates
	}
	const writes = 1100
	for i := range writes {
		if _, err := tc.nodes[via].coord.Write(context.Background(), []byte(key), Op{Kind: Incr, Delta: 1}); err != nil {
			t.Fatalf("fallback write %d: %v", i, err)
		}
	}
	for _, id := range p {
		tc.net.Add(id, tc.nodes[id].store, tc.nodes[id].coord)
	}
	for _, id := range tc.ids {
		if err := tc.nodes[id].coord.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	tc.deliverHints()
	for _, id := range p {
		o, err := tc.nodes[id].store.Get([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Check(); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if len(o.Clock) > 3 {
			t.Fatalf("%s: %d clock entries after one outage: %v", id, len(o.Clock), o.Clock)
		}
		if v, _ := o.Resolve(time.Now().UnixMilli()); string(v.Bytes) != fmt.Sprint(writes+1) {
			t.Fatalf("%s reads %q, want %d increments", id, v.Bytes, writes+1)
		}
	}
}

// TestLateForwardNotRun is the third bug at the coordinator: a write
// forwarded to a primary that answers too late fails as UNAVAILABLE, is
// not run anywhere else, and the primary drops it when it arrives after
// its sender gave up.
func TestLateForwardNotRun(t *testing.T) {
	tc := newTestCluster(t, 27, 4, 3, 2, 2, 150*time.Millisecond)
	key := "count"
	p := tc.primaries(key)
	via := tc.outsider(key)
	incr := func() error {
		_, err := tc.nodes[via].coord.Write(context.Background(), []byte(key), Op{Kind: Incr, Delta: 1})
		return err
	}
	if err := incr(); err != nil {
		t.Fatal(err)
	}
	tc.net.SetSlow(p[0], 400*time.Millisecond)
	if err := incr(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("INCR forwarded to a paused primary: %v, want UNAVAILABLE", err)
	}
	eventually(t, "the late forward to arrive and be dropped", func() bool {
		return tc.nodes[p[0]].coord.LateForwards() == 1
	})
	tc.net.SetSlow(p[0], 0)
	for _, id := range tc.ids {
		if err := tc.nodes[id].coord.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	o, err := tc.nodes[p[1]].coord.Get(context.Background(), []byte(key), 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := o.Resolve(time.Now().UnixMilli()); string(v.Bytes) != "1" {
		t.Fatalf("the counter reads %q after one acknowledged INCR and one UNAVAILABLE, want 1", v.Bytes)
	}
}

// TestDecidingWritesGoToTheFirstPrimary: SET NX sent to the second
// primary is decided by the first, so that two of them sent to different
// nodes never race; a blind SET stays where it arrived.
func TestDecidingWritesGoToTheFirstPrimary(t *testing.T) {
	tc := newTestCluster(t, 28, 3, 3, 2, 2, time.Second)
	key := "lock"
	p := tc.primaries(key)
	res, err := tc.put(p[1], key, "x", Op{Cond: IfAbsent})
	if err != nil || !res.Written {
		t.Fatalf("SET NX: %v, %v", res, err)
	}
	if first := tc.nodes[p[0]].store.Actor(); res.Dot.Actor != first {
		t.Fatalf("SET NX through %s was minted by %s, want the first primary %s", p[1], res.Dot.Actor, first)
	}
	res, err = tc.put(p[2], key, "y", Op{Cond: IfAbsent})
	if err != nil || res.Written {
		t.Fatalf("a second SET NX through %s: written %v, %v", p[2], res.Written, err)
	}
	res, err = tc.put(p[1], key, "z", Op{})
	if err != nil || res.Dot.Actor != tc.nodes[p[1]].store.Actor() {
		t.Fatalf("blind SET through %s minted by %q (%v)", p[1], res.Dot.Actor, err)
	}
}

// TestForeignContextRefused: a context naming the coordinator's writes
// beyond the last it made is refused before anything is written. (Other
// nodes' entries are vouched for by the seal of the client's context.)
func TestForeignContextRefused(t *testing.T) {
	tc := newTestCluster(t, 29, 3, 3, 2, 2, time.Second)
	key := "k"
	p := tc.primaries(key)
	if _, err := tc.put(p[0], key, "v", Op{}); err != nil {
		t.Fatal(err)
	}
	if err := tc.nodes[p[0]].coord.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	bogus := replica.Clock{{Actor: tc.nodes[p[0]].store.Actor(), Counter: 1 << 60}}
	_, err := tc.put(p[0], key, "intruder", Op{HasContext: true, Context: bogus})
	if !errors.Is(err, replica.ErrBadContext) {
		t.Fatalf("DPUT with a context beyond what %s issued: %v", p[0], err)
	}
	for _, id := range p {
		if got := tc.local(id, key); strings.Join(got, ",") != "v" {
			t.Fatalf("%s holds %v after refused writes (primaries %v)", id, got, p)
		}
	}
}

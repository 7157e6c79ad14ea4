package coord

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// hintsFor returns how many hints for target the cluster's nodes hold.
func (tc *testCluster) hintsFor(target string) int {
	n := 0
	for _, id := range tc.ids {
		if st, ok := tc.nodes[id].store.HintTargets()[target]; ok {
			n += int(st.Count)
		}
	}
	return n
}

func TestSloppyWriteLeavesHint(t *testing.T) {
	tc := newTestCluster(t, 11, 5, 3, 2, 2, 300*time.Millisecond)
	key := "k"
	p := tc.primaries(key)
	others := slices.DeleteFunc(slices.Clone(tc.ids), func(id string) bool { return id == p[2] })
	tc.net.Partition(others, []string{p[2]})
	// W=3: the hint a fallback keeps for the cut-off primary counts.
	if _, err := tc.put(p[0], key, "v", Op{W: 3}); err != nil {
		t.Fatalf("W=3 with one primary unreachable and fallbacks up: %v", err)
	}
	if got := tc.hintsFor(p[2]); got != 1 {
		t.Fatalf("%d hints for %s, want 1", got, p[2])
	}
	// A second write is remembered: the cut-off primary is not waited on.
	start := time.Now()
	if _, err := tc.put(p[0], key, "v2", Op{W: 3}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("second write took %v: the failed primary was tried again", d)
	}
}

func TestSloppyReadUsesFallbacks(t *testing.T) {
	tc := newTestCluster(t, 12, 5, 3, 2, 2, 300*time.Millisecond)
	key := "k"
	p := tc.primaries(key)
	rest := slices.DeleteFunc(slices.Clone(tc.ids), func(id string) bool { return id == p[1] || id == p[2] })
	tc.net.Partition(rest, []string{p[1]}, []string{p[2]})
	if _, err := tc.put(p[0], key, "v", Op{}); err != nil {
		t.Fatalf("W=2 with two primaries unreachable: %v", err)
	}
	o, err := tc.nodes[p[0]].coord.Get(context.Background(), []byte(key), 2)
	if err != nil {
		t.Fatalf("R=2 with two primaries unreachable: %v", err)
	}
	if s, _ := o.Resolve(time.Now().UnixMilli()); string(s.Bytes) != "v" {
		t.Fatalf("read %q", s.Bytes)
	}
}

func TestFallbackCoordinatesWhenNoPrimaryIsReachable(t *testing.T) {
	tc := newTestCluster(t, 13, 5, 3, 2, 2, 300*time.Millisecond)
	key := "k"
	p := tc.primaries(key)
	rest := slices.DeleteFunc(slices.Clone(tc.ids), func(id string) bool { return slices.Contains(p, id) })
	tc.net.Partition(rest, p)
	via := rest[0]
	// Each primary that does not answer a forwarded write fails that
	// write (it may have been delivered) and is then passed over; once
	// every one has failed, the node coordinates as a fallback.
	for i := range p {
		if _, err := tc.put(via, key, "lost", Op{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("write %d with every primary cut off: %v, want UNAVAILABLE", i, err)
		}
	}
	if _, err := tc.put(via, key, "v", Op{}); err != nil {
		t.Fatalf("write with every primary known to be unreachable: %v", err)
	}
	hints := 0
	for _, target := range p {
		hints += tc.hintsFor(target)
	}
	if hints < 2 {
		t.Fatalf("%d hints held, want at least W=2", hints)
	}
	if got := tc.local(via, key); len(got) != 0 {
		t.Fatalf("the fallback coordinator wrote %v into its own replica", got)
	}
	// With only two nodes reachable there is no W=3.
	if _, err := tc.put(via, key, "w", Op{W: 3}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("W=3 with two nodes reachable: %v", err)
	}
}

// onlyOn leaves value for key on node alone: written through it while it
// is cut off from every other node, with W=1.
func (tc *testCluster) onlyOn(node, key, value string) {
	tc.t.Helper()
	others := slices.DeleteFunc(slices.Clone(tc.ids), func(id string) bool { return id == node })
	tc.net.Partition(others, []string{node})
	if _, err := tc.put(node, key, value, Op{W: 1}); err != nil {
		tc.t.Fatal(err)
	}
	// The sends to the others end at the timeout, as hints it keeps.
	if err := tc.nodes[node].coord.Wait(context.Background()); err != nil {
		tc.t.Fatal(err)
	}
	tc.net.Heal()
	for _, id := range others {
		if got := tc.local(id, key); len(got) != 0 {
			tc.t.Fatalf("%s holds %v; only %s should", id, got, node)
		}
	}
}

// A fallback asked beside a slow primary holds nothing of the key, so its
// answer must not stand in for the primary's while the primary may still
// answer: a read at R=N then sees every primary's siblings.
func TestHedgedReadWaitsForSlowPrimary(t *testing.T) {
	timeout := 600 * time.Millisecond // the hedge goes out at 200 ms
	tc := newTestCluster(t, 14, 5, 3, 2, 2, timeout)
	key := "k"
	p := tc.primaries(key)
	tc.onlyOn(p[2], key, "only-on-the-slow-primary")
	tc.net.SetSlow(p[2], timeout/2)
	o, err := tc.nodes[p[0]].coord.Get(context.Background(), []byte(key), 3)
	if err != nil {
		t.Fatalf("R=3 with a slow primary: %v", err)
	}
	var got []string
	for _, s := range o.Live(time.Now().UnixMilli()) {
		got = append(got, string(s.Value))
	}
	if !slices.Equal(got, []string{"only-on-the-slow-primary"}) {
		t.Fatalf("R=3 read %v: the hedge answered for the slow primary", got)
	}
}

// A primary that does not answer within the timeout counts as failed: the
// fallback asked beside it answers in its place.
func TestHedgeStandsInForPrimaryPastTimeout(t *testing.T) {
	timeout := 300 * time.Millisecond
	tc := newTestCluster(t, 15, 5, 3, 2, 2, timeout)
	key := "k"
	p := tc.primaries(key)
	if _, err := tc.put(p[0], key, "v", Op{W: 3}); err != nil {
		t.Fatal(err)
	}
	tc.net.SetSlow(p[2], 10*timeout)
	o, err := tc.nodes[p[0]].coord.Get(context.Background(), []byte(key), 3)
	if err != nil {
		t.Fatalf("R=3 with a primary past the timeout and a fallback beside it: %v", err)
	}
	if s, _ := o.Resolve(time.Now().UnixMilli()); string(s.Bytes) != "v" {
		t.Fatalf("read %q", s.Bytes)
	}
	tc.net.SetSlow(p[2], 0)
}

// A node that failed a request is tried last until a probe or gossip says
// it is back: Returned (gossip saw it alive again) makes it healthy at
// once, without waiting out the failure memory.
func TestReturnedForgetsFailure(t *testing.T) {
	tc := newTestCluster(t, 1, 3, 3, 2, 2, time.Second)
	c := tc.nodes["n1"].coord
	c.markFailed("n2")
	if c.healthy("n2") {
		t.Fatal("n2 is healthy right after it failed a request")
	}
	c.Returned("n2")
	if !c.healthy("n2") {
		t.Fatal("n2 is not healthy after gossip saw it return")
	}
}

package tests

import (
	"slices"
	"testing"
	"time"
)

// TestSkewedClock runs a cluster in which n3's wall clock is an hour
// behind. Causality does not depend on clocks: a write that saw a
// version replaces it although its timestamp is older, concurrent writes
// both survive as siblings, and the shopping cart loses nothing. The
// clock decides only which sibling GET picks.
func TestSkewedClock(t *testing.T) {
	n1 := StartNode(t, "n1", "")
	n2 := joinNode(t, []*Node{n1}, "n2", "")
	n3 := NewNode(t, "n3", "")
	n3.ClusterName, n3.Seeds, n3.Env = n1.ClusterName, []string{n1.Gossip}, []string{"DYNAKV_CLOCK_SKEW=-1h"}
	n3.Start()
	nodes := []*Node{n1, n2, n3}
	waitRing(t, nodes, 3)
	c := ctx(t)

	// With N=3 every node replicates every key, so the node a write is
	// sent to coordinates it and stamps it with its own clock.
	const key = "skewed"
	siblings := func() (string, []string) {
		t.Helper()
		ctx, sibs, err := dget(c, n2.Redis(), key, 3)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range sibs {
			out = append(out, s.(string))
		}
		slices.Sort(out)
		return ctx, out
	}

	if err := n1.Redis().Set(c, key, "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ctx1, _ := siblings()
	// n3 stamps v2 an hour before v1, yet v2 saw v1 and replaces it.
	if err := n3.Redis().Do(c, "DPUT", key, ctx1, "v2").Err(); err != nil {
		t.Fatal(err)
	}
	ctx2, sibs := siblings()
	if !slices.Equal(sibs, []string{"v2"}) {
		t.Fatalf("after a causal overwrite stamped an hour earlier: %v, want [v2]", sibs)
	}
	if v, err := n1.Redis().Get(c, key).Result(); err != nil || v != "v2" {
		t.Fatalf("GET = %q, %v, want v2", v, err)
	}

	// Two writes from the same context: one stamped by a true clock, then
	// one stamped an hour behind. Both survive; GET picks by timestamp.
	if err := n1.Redis().Do(c, "DPUT", key, ctx2, "fast").Err(); err != nil {
		t.Fatal(err)
	}
	if err := n3.Redis().Do(c, "DPUT", key, ctx2, "slow").Err(); err != nil {
		t.Fatal(err)
	}
	if _, sibs := siblings(); !slices.Equal(sibs, []string{"fast", "slow"}) {
		t.Fatalf("concurrent writes across skewed clocks: %v, want [fast slow]", sibs)
	}
	for _, n := range nodes {
		if v, err := n.Redis().Get(c, key).Result(); err != nil || v != "fast" {
			t.Fatalf("GET through %s = %q, %v: want fast, the sibling with the latest timestamp, on every node", n.ID, v, err)
		}
	}

	load := newCartLoad(t, nodes, 10)
	stop := make(chan struct{})
	wait := load.run(8, 0, stop)
	time.Sleep(4 * time.Second)
	close(stop)
	wait()
	load.verify(nodes, 3)
}

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
	if _, err := tc.put(via, key, "v", Op{}); err != nil {
		t.Fatalf("write with every primary unreachable: %v", err)
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

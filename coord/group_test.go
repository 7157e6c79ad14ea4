package coord

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestGroupSendsItsWritesTogether: a group's writes are applied at its
// coordinator as they come, reach no other replica before Commit, then
// reach the replica that is up together and are kept as hints, together,
// for the one cut off; an outsider gets no group while the primaries are
// healthy.
func TestGroupSendsItsWritesTogether(t *testing.T) {
	tc := newTestCluster(t, 5, 4, 3, 2, 2, 300*time.Millisecond)
	keys := []string{"{g}a", "{g}b", "{g}c"}
	p := tc.primaries(keys[0])
	lead := tc.nodes[p[0]].coord
	if g, err := tc.nodes[tc.outsider(keys[0])].coord.NewGroup([]byte(keys[0])); err != nil || g != nil {
		t.Fatalf("an outsider started a group (%v, %v)", g, err)
	}
	g, err := lead.NewGroup([]byte(keys[0]))
	if err != nil || g == nil {
		t.Fatalf("the leader got no group: %v", err)
	}
	ctx := context.Background()
	for _, k := range keys {
		if _, err := lead.WriteIn(ctx, g.Pipelined(), []byte(k), Op{Kind: Put, Value: []byte("v-" + k)}); err != nil {
			t.Fatal(err)
		}
		if got := tc.local(p[0], k); !slices.Equal(got, []string{"v-" + k}) {
			t.Fatalf("the coordinator holds %v for %s before Commit", got, k)
		}
		if got := tc.local(p[1], k); len(got) != 0 {
			t.Fatalf("%s got %s before Commit: %v", p[1], k, got)
		}
	}
	if g.Len() != 3 {
		t.Fatalf("the group holds %d objects, want 3", g.Len())
	}
	tc.net.Partition([]string{p[0], p[1]}, []string{p[2]})
	if err := lead.Commit(ctx, g); err != nil {
		t.Fatalf("commit with one replica cut off (W=2): %v", err)
	}
	for _, k := range keys {
		if got := tc.local(p[1], k); !slices.Equal(got, []string{"v-" + k}) {
			t.Fatalf("%s holds %v for %s after Commit", p[1], got, k)
		}
	}
	// The replica cut off gets them as hints, kept whole somewhere: on a
	// fallback or on the coordinator.
	eventually(t, "the hints for the replica cut off", func() bool {
		n := int64(0)
		for _, node := range tc.nodes {
			n += node.store.HintTargets()[p[2]].Count
		}
		return n == 3
	})
}

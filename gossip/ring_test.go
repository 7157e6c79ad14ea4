package gossip

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"
)

// joinStats describes one ring change.
type joinStats struct {
	nodes          int
	maxOwn, minOwn int
	meanOwn        float64
	maxRep         int     // most partitions any node replicates
	meanRep        float64 // mean partitions replicated per node
	moved          int     // replicas (partition, node) that are new
	ideal          float64 // Q*N/S for the node that joined
	ownMoves       int     // partitions whose owner changed
	minOwnMoves    int     // the fewest owner changes balance needs
}

func nodeName(i int) string { return fmt.Sprintf("node%03d", i) }

// simulateJoin adds one node to owners and checks the result.
func simulateJoin(t testing.TB, owners []string, nodes []string, q, n int) ([]string, joinStats) {
	t.Helper()
	next := Assign(owners, nodes, q, n)
	s := joinStats{nodes: len(nodes)}
	eff := min(n, len(nodes))
	own := Counts(next)
	rep := map[string]int{}
	s.minOwn = q
	for _, id := range nodes {
		s.maxOwn, s.minOwn = max(s.maxOwn, own[id]), min(s.minOwn, own[id])
	}
	s.meanOwn = float64(q) / float64(len(nodes))
	for p := range q {
		pl := Preference(next, p, n)
		if len(pl) != eff || len(slices.Compact(slices.Sorted(slices.Values(pl)))) != eff {
			t.Fatalf("%d nodes, q=%d: preference list of %d is %v", len(nodes), q, p, pl)
		}
		for _, id := range pl {
			rep[id]++
		}
		if owners != nil {
			old := Preference(owners, p, n)
			for _, id := range pl {
				if !slices.Contains(old, id) {
					s.moved++
				}
			}
			if owners[p] != next[p] {
				s.ownMoves++
			}
		}
	}
	for _, id := range nodes {
		s.maxRep = max(s.maxRep, rep[id])
	}
	s.meanRep = float64(q*eff) / float64(len(nodes))
	s.ideal = float64(q*eff) / float64(len(nodes))
	if owners != nil {
		// The fewest owner changes: every old node's partitions above its
		// new share must go.
		prev := Counts(owners)
		for _, id := range nodes {
			s.minOwnMoves += max(0, prev[id]-(q/len(nodes)+1))
		}
	}
	if s.maxOwn-s.minOwn > 1 {
		t.Fatalf("%d nodes, q=%d: ownership %d..%d, not within one of %.1f", len(nodes), q, s.minOwn, s.maxOwn, s.meanOwn)
	}
	return next, s
}

// TestRingSimulation grows clusters one node at a time and reports, at
// chosen sizes, ownership and replica balance and the replicas moved by the
// join against the ideal Q*N/(S+1).
func TestRingSimulation(t *testing.T) {
	const n = 3
	cases := []struct {
		q, upTo int
		report  []int
	}{
		{64, 20, []int{3, 4, 5, 8, 16, 20}},
		{256, 64, []int{3, 4, 5, 8, 16, 32, 64}},
		{1024, 50, []int{3, 4, 5, 10, 25, 50}},
	}
	if !testing.Short() {
		cases = append(cases, struct {
			q, upTo int
			report  []int
		}{4096, 200, []int{3, 4, 5, 10, 50, 100, 200}})
	}
	for _, tc := range cases {
		owners := Founding(tc.q, nodeName(0)).Owners
		nodes := []string{nodeName(0)}
		for size := 2; size <= tc.upTo; size++ {
			nodes = append(nodes, nodeName(size-1))
			var s joinStats
			owners, s = simulateJoin(t, owners, nodes, tc.q, n)
			if s.ownMoves > s.minOwnMoves+len(nodes) {
				t.Errorf("q=%d, %d nodes: %d owner changes, balance needs about %d", tc.q, size, s.ownMoves, s.minOwnMoves)
			}
			if slices.Contains(tc.report, size) {
				t.Logf("q=%4d nodes=%3d own max/mean %3d/%6.1f  replicas max/mean %4d/%7.1f  moved %5d ideal %7.1f (%.2fx)",
					tc.q, size, s.maxOwn, s.meanOwn, s.maxRep, s.meanRep, s.moved, s.ideal, float64(s.moved)/s.ideal)
			}
		}
	}
}

// BenchmarkRingJoin measures one join at Q=4096 into a 100-node ring.
func BenchmarkRingJoin(b *testing.B) {
	const q, n = 4096, 3
	var nodes []string
	for i := range 100 {
		nodes = append(nodes, nodeName(i))
	}
	owners := Assign(nil, nodes, q, n)
	joined := append(slices.Clone(nodes), nodeName(100))
	b.ResetTimer()
	for range b.N {
		Assign(owners, joined, q, n)
	}
}

func TestRingEncoding(t *testing.T) {
	r := Founding(16, "a")
	r.Next = Assign(r.Owners, []string{"a", "b", "c"}, 16, 3)
	r.Epoch = 7
	got, err := DecodeRing(r.Encode())
	if err != nil || got.Epoch != 7 || got.Claimant != "a" || !slices.Equal(got.Owners, r.Owners) || !slices.Equal(got.Next, r.Next) ||
		len(r.Key) != contextKeyLen || !bytes.Equal(got.Key, r.Key) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	enc := r.Encode()
	for i := range enc {
		if _, err := DecodeRing(enc[:i]); err == nil {
			t.Fatalf("truncated ring of %d bytes decoded", i)
		}
	}
	// A ring stored before rings carried a context key still decodes,
	// without one, as a legacy ring (keys at md5 positions); the claimant
	// then gives the ring a key, and ends legacy placement once every key
	// has moved.
	v1 := append([]byte{ringV1}, enc[1:len(enc)-4-len(r.Key)]...) // no key, legacy flag or zones
	old, err := DecodeRing(v1)
	if err != nil || old.Key != nil || !old.Legacy || !slices.Equal(old.Owners, r.Owners) {
		t.Fatalf("version 1 ring: %v %v", old, err)
	}
	if r.Legacy {
		t.Fatal("a founding ring is a legacy ring")
	}
	r.Legacy = true
	r.Zones, r.NextZones = map[string]string{"a": "rack1", "b": "rack2"}, map[string]string{"a": "rack1", "b": "rack2", "c": "rack3"}
	if got, err := DecodeRing(r.Encode()); err != nil || !got.Legacy || !maps.Equal(got.Zones, r.Zones) || !maps.Equal(got.NextZones, r.NextZones) {
		t.Fatalf("legacy flag and zones round trip: %v %v", got, err)
	}
}

func TestRingNewer(t *testing.T) {
	a := Ring{Epoch: 3, Claimant: "n2"}
	if !(Ring{Epoch: 4, Claimant: "n9"}).Newer(a) || a.Newer(Ring{Epoch: 4}) {
		t.Fatal("higher epoch must win")
	}
	if !(Ring{Epoch: 3, Claimant: "n1"}).Newer(a) || (Ring{Epoch: 3, Claimant: "n3"}).Newer(a) || a.Newer(a) {
		t.Fatal("same epoch: the lower claimant must win, and a ring is not newer than itself")
	}
}

// TestViewSole checks when a view says one node holds every key: only for
// a ring of one member with no change under way, which is what lets the
// coordinator skip placing keys.
func TestViewSole(t *testing.T) {
	one := Founding(16, "a")
	joining := one
	joining.Next = Assign(one.Owners, []string{"a", "b"}, 16, 3)
	two := Ring{Owners: joining.Next}
	for _, tc := range []struct {
		name string
		ring Ring
		want string
	}{
		{"one member", one, "a"},
		{"one member, another joining", joining, ""},
		{"two members", two, ""},
	} {
		if got := newView(tc.ring, 3).sole; got != tc.want {
			t.Errorf("%s: sole %q, want %q", tc.name, got, tc.want)
		}
	}
	c := &Cluster{}
	if got := c.Sole(); got != "" {
		t.Errorf("no ring yet: sole %q, want none", got)
	}
	c.view.Store(newView(one, 3))
	if got := c.Sole(); got != "a" {
		t.Errorf("one-member ring: sole %q, want a", got)
	}
}

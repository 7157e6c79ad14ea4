package gossip

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func TestZonedPreference(t *testing.T) {
	owners := []string{"a1", "a2", "b1", "a3", "c1", "b2"}
	zones := map[string]string{"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "c1": "C"}
	for _, c := range []struct {
		p, n, limit int
		want        []string
	}{
		{0, 3, 3, []string{"a1", "b1", "c1"}},                   // a2, a3 skipped for zone A
		{0, 3, 6, []string{"a1", "b1", "c1", "a2", "a3", "b2"}}, // then the skipped, then the rest
		{1, 2, 2, []string{"a2", "b1"}},
		{4, 3, 3, []string{"c1", "b2", "a1"}},
	} {
		if got := ZonedPreference(owners, zones, c.p, c.n, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("ZonedPreference(p=%d, n=%d, limit=%d) = %v, want %v", c.p, c.n, c.limit, got, c.want)
		}
	}
	// Two zones, N=3: both zones, then the nearest skipped node.
	two := map[string]string{"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "c1": "A"}
	if got := ZonedPreference(owners, two, 0, 3, 3); !slices.Equal(got, []string{"a1", "b1", "a2"}) {
		t.Errorf("two zones: %v", got)
	}
	// No zones: the ring order, as Preference.
	if got := ZonedPreference(owners, nil, 0, 3, 3); !slices.Equal(got, []string{"a1", "a2", "b1"}) {
		t.Errorf("no zones: %v", got)
	}
}

// zoneStats describes a zoned ring.
type zoneStats struct {
	violations       int
	maxOwn           int
	meanOwn          float64
	maxRep, minRep   int
	meanRep          float64
	moved            int
	ideal            float64
	maxZoneRepPerNod float64 // the largest mean replicas per node of a zone
	minZoneRepPerNod float64
}

// zonedRing measures a ring of owners over zones.
func zonedRing(owners []string, zones map[string]string, prev []string, prevZones map[string]string, n int) zoneStats {
	r := Ring{Owners: owners, Zones: zones}
	q := len(owners)
	nodes := r.Members()
	s := zoneStats{violations: r.SpreadViolations(n), meanOwn: float64(q) / float64(len(nodes))}
	for _, c := range Counts(owners) {
		s.maxOwn = max(s.maxOwn, c)
	}
	rep := map[string]int{}
	all := r.AllPrimaries(n)
	var olds [][]string
	if prev != nil {
		olds = Ring{Owners: prev, Zones: prevZones}.AllPrimaries(n)
	}
	for p, pl := range all {
		for _, id := range pl {
			rep[id]++
		}
		if prev != nil {
			for _, id := range pl {
				if !slices.Contains(olds[p], id) {
					s.moved++
				}
			}
		}
	}
	s.minRep = q * n
	for _, id := range nodes {
		s.maxRep, s.minRep = max(s.maxRep, rep[id]), min(s.minRep, rep[id])
	}
	s.meanRep = float64(q*n) / float64(len(nodes))
	s.ideal = s.meanRep
	perZone, nodesIn := map[string]int{}, map[string]int{}
	for _, id := range nodes {
		perZone[zones[id]] += rep[id]
		nodesIn[zones[id]]++
	}
	s.minZoneRepPerNod = float64(q * n)
	for z, r := range perZone {
		v := float64(r) / float64(nodesIn[z])
		s.maxZoneRepPerNod, s.minZoneRepPerNod = max(s.maxZoneRepPerNod, v), min(s.minZoneRepPerNod, v)
	}
	return s
}

// TestZonedRingSimulation grows zoned clusters one node at a time, the
// zones taking turns, and reports spread violations (which must be 0 once
// there are N zones), ownership and replica balance, and the replicas
// each join moves against the ideal Q*N/S.
func TestZonedRingSimulation(t *testing.T) {
	const n = 3
	cases := []struct {
		name  string
		q     int
		sizes []int // nodes per zone
	}{
		{"3 zones x 10", 512, []int{10, 10, 10}},
		{"5 zones x 40", 2048, []int{40, 40, 40, 40, 40}},
		{"uneven 2/3/7", 512, []int{2, 3, 7}},
	}
	if testing.Short() {
		cases[1] = struct {
			name  string
			q     int
			sizes []int
		}{"5 zones x 8", 512, []int{8, 8, 8, 8, 8}}
	}
	for _, tc := range cases {
		// The join order: the zones take turns while they have nodes left.
		var order []string
		zones := map[string]string{}
		for i := 0; len(order) < sum(tc.sizes); i++ {
			for z, size := range tc.sizes {
				if i < size {
					id := fmt.Sprintf("z%d-%03d", z, i)
					order = append(order, id)
					zones[id] = fmt.Sprintf("zone%d", z)
				}
			}
		}
		owners := Founding(tc.q, order[0]).Owners
		cur := map[string]string{order[0]: zones[order[0]]}
		var worst float64
		var last zoneStats
		for i := 1; i < len(order); i++ {
			next := maps.Clone(cur)
			next[order[i]] = zones[order[i]]
			nodes := slices.Collect(maps.Keys(next))
			o := AssignZones(owners, nodes, next, tc.q, n)
			s := zonedRing(o, next, owners, cur, n)
			if zoneCount(next) >= n && s.violations != 0 {
				t.Fatalf("%s, %d nodes: %d partitions without full zone spread", tc.name, len(nodes), s.violations)
			}
			if s.maxOwn-int(s.meanOwn) > 1 {
				t.Fatalf("%s, %d nodes: ownership max %d over a mean of %.1f", tc.name, len(nodes), s.maxOwn, s.meanOwn)
			}
			worst = max(worst, float64(s.moved)/s.ideal)
			owners, cur, last = o, next, s
		}
		t.Logf("%-13s q=%4d nodes=%3d spread violations %d  own max/mean %3d/%6.1f  replicas min/max/mean %4d/%4d/%7.1f  replicas per node by zone %.1f-%.1f  worst join moved %.2fx the ideal",
			tc.name, tc.q, len(cur), last.violations, last.maxOwn, last.meanOwn, last.minRep, last.maxRep, last.meanRep,
			last.minZoneRepPerNod, last.maxZoneRepPerNod, worst)
	}
}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

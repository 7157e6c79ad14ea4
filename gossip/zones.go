package gossip

import "slices"

// Zones: racks, rooms or data centers (node.zone). A key's N replicas go
// to N distinct zones while the ring has at least N of them, so that
// losing a zone loses no key's every copy: Cassandra's
// NetworkTopologyStrategy, and Dynamo's preference lists across data
// centers. A ring records each member's zone (Ring.Zones, and NextZones
// for the owners of a change in progress); a node's zone changing is a
// ring change like a join.

// zoneCount is the number of distinct zones of a zone map; at least one
// (a ring without zones is one zone).
func zoneCount(zones map[string]string) int {
	var seen []string // zones are few: a slice beats a map
	for _, z := range zones {
		if !slices.Contains(seen, z) {
			seen = append(seen, z)
		}
	}
	return max(1, len(seen))
}

// ZonedPreference returns partition p's preference list over owners, at
// most limit nodes: walking clockwise from p over distinct nodes, it
// skips a node whose zone is listed already until every zone of the ring
// is (or n nodes are), then takes the nodes it skipped, in ring order,
// and the rest. The first n are the primaries, in n distinct zones when
// the ring has that many; the others are fallbacks. With one zone (zones
// nil or all equal) it is the ring order.
func ZonedPreference(owners []string, zones map[string]string, p, n, limit int) []string {
	return zonedPreference(owners, zones, zoneCount(zones), p, n, limit)
}

// zonedPreference is ZonedPreference with the ring's zone count given.
func zonedPreference(owners []string, zones map[string]string, total, p, n, limit int) []string {
	out := make([]string, 0, limit)
	q := len(owners)
	allSeen := total <= 1
	var seen []string // the zones listed; few
	var skipped []string
	for i := 0; i < q && len(out) < limit; i++ {
		o := owners[(p+i)%q]
		if o == "" || slices.Contains(out, o) || slices.Contains(skipped, o) {
			continue
		}
		z := ""
		if !allSeen {
			z = zones[o]
		}
		if !allSeen && len(out) < n && slices.Contains(seen, z) {
			skipped = append(skipped, o)
			continue
		}
		out = append(out, o)
		if !allSeen && !slices.Contains(seen, z) {
			seen = append(seen, z)
			if len(seen) == total {
				allSeen = true
				for _, s := range skipped {
					if len(out) < limit {
						out = append(out, s)
					}
				}
				skipped = nil
			}
		}
	}
	for _, s := range skipped {
		if len(out) < limit {
			out = append(out, s)
		}
	}
	return out
}

// preferences returns every partition's preference list of at most limit
// nodes over owners, the first n the primaries.
func preferences(owners []string, zones map[string]string, n, limit int) [][]string {
	total := zoneCount(zones)
	out := make([][]string, len(owners))
	for p := range owners {
		out[p] = zonedPreference(owners, zones, total, p, n, limit)
	}
	return out
}

// AllPrimaries returns the n primaries of every partition under the
// owners: Primaries for each, computed together.
func (r Ring) AllPrimaries(n int) [][]string { return preferences(r.Owners, r.Zones, n, n) }

// Primaries returns the n primaries of partition p under the owners.
func (r Ring) Primaries(p, n int) []string {
	return ZonedPreference(r.Owners, r.Zones, p, n, n)
}

// NextPrimaries returns the n primaries of partition p under the owners
// of the change in progress (nil when there is none).
func (r Ring) NextPrimaries(p, n int) []string {
	if r.Next == nil {
		return nil
	}
	return ZonedPreference(r.Next, r.nextZones(), p, n, n)
}

// nextZones is the zone map of the change in progress: NextZones, or the
// current one when the change moves no zone.
func (r Ring) nextZones() map[string]string {
	if r.NextZones != nil {
		return r.NextZones
	}
	return r.Zones
}

// SpreadViolations counts the partitions whose n primaries are in fewer
// distinct zones than they could be (min(n, zones of the ring)): 0 in a
// healthy ring.
func (r Ring) SpreadViolations(n int) int {
	want := min(n, zoneCount(r.Zones), len(r.Members()))
	bad := 0
	for _, pl := range r.AllPrimaries(n) {
		var zs []string
		for _, id := range pl {
			if z := r.Zones[id]; !slices.Contains(zs, z) {
				zs = append(zs, z)
			}
		}
		if len(zs) < want {
			bad++
		}
	}
	return bad
}

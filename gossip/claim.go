package gossip

import (
	"slices"
)

// Assign computes the owners of q partitions over nodes, starting from prev
// (the current owners; nil when there are none). It is deterministic: every
// node computing it from the same inputs gets the same ring.
//
// It aims, in this order, at:
//   - balance: every node owns q/len(nodes) partitions, rounded down or up;
//   - few moves: only partitions of nodes above their share (or of nodes no
//     longer listed) change hands, and the nodes that keep an extra
//     partition are those that already own the most;
//   - spacing: a node's partitions are at least n apart where it can be
//     done, so that a preference list is n consecutive owners and each node
//     replicates about n times what it owns. Partitions that break the
//     spacing are the first to be moved.
func Assign(prev []string, nodes []string, q, n int) []string {
	return AssignZones(prev, nodes, nil, q, n)
}

// AssignZones is Assign for nodes in zones (node → zone): it also aims,
// after node spacing, at zone spacing: the owners of any n consecutive
// partitions in n distinct zones where the zones allow it, so that a
// preference list, which spreads across zones (ZonedPreference), is n
// consecutive owners and each node's share of replicas follows its share
// of ownership.
func AssignZones(prev []string, nodes []string, zones map[string]string, q, n int) []string {
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	if len(nodes) == 0 {
		return make([]string, q)
	}
	c := newClaim(prev, nodes, q, n)
	inZones := map[string]string{}
	for _, id := range nodes {
		inZones[id] = zones[id]
	}
	c.zoneWindow = min(n, zoneCount(inZones)) - 1
	if c.zoneWindow > 0 {
		// Zones as small numbers, per node and per partition, so that the
		// claim compares numbers rather than looking strings up.
		ids := map[string]int{}
		c.zoneOf = map[string]int{}
		for _, id := range nodes {
			z, ok := ids[inZones[id]]
			if !ok {
				z = len(ids) + 1
				ids[inZones[id]] = z
			}
			c.zoneOf[id] = z
		}
		c.ownerZone = make([]int, q)
		for p, o := range c.owners {
			c.ownerZone[p] = c.zoneOf[o]
		}
	}
	c.run()
	return c.owners
}

type claim struct {
	owners []string
	nodes  []string
	q      int
	window int // partitions on each side that should not share an owner
	// zoneWindow is how many partitions on each side should not share a
	// zone; zoneOf numbers each node's zone (from 1), and ownerZone holds
	// each partition's owner's (0: unowned).
	zoneWindow int
	zoneOf     map[string]int
	ownerZone  []int
	count      map[string]int
	target     map[string]int
	listed     map[string]bool
}

func newClaim(prev []string, nodes []string, q, n int) *claim {
	c := &claim{
		owners: make([]string, q), nodes: nodes, q: q,
		window: min(n, len(nodes)) - 1,
		count:  map[string]int{}, target: map[string]int{}, listed: map[string]bool{},
	}
	for _, id := range nodes {
		c.listed[id] = true
	}
	for p := range c.owners {
		if p < len(prev) && c.listed[prev[p]] {
			c.owners[p] = prev[p]
			c.count[prev[p]]++
		}
	}
	// Shares: q/S each, and the q%S extra partitions go to the nodes that
	// own the most already (ties: the lower id), so they need not move.
	byCount := slices.Clone(nodes)
	slices.SortStableFunc(byCount, func(a, b string) int { return c.count[b] - c.count[a] })
	for i, id := range byCount {
		c.target[id] = q / len(nodes)
		if i < q%len(nodes) {
			c.target[id]++
		}
	}
	return c
}

// conflicts reports whether node owns a partition within the window around
// p (other than p itself).
func (c *claim) conflicts(node string, p int) bool {
	for k := 1; k <= c.window; k++ {
		if c.owners[(p+k)%c.q] == node || c.owners[(p-k+c.q)%c.q] == node {
			return true
		}
	}
	return false
}

// zoneConflicts reports whether a node of node's zone owns a partition
// within the zone window around p (other than p itself).
func (c *claim) zoneConflicts(node string, p int) bool {
	if c.zoneWindow <= 0 {
		return false
	}
	z := c.zoneOf[node]
	for k := 1; k <= c.zoneWindow; k++ {
		if c.ownerZone[(p+k)%c.q] == z || c.ownerZone[(p-k+c.q)%c.q] == z {
			return true
		}
	}
	return false
}

// run moves partitions from nodes above their share (and unowned ones) to
// nodes below it, one at a time, each time to the neediest receiver.
func (c *claim) run() {
	for {
		r := c.neediest()
		if r == "" {
			return
		}
		p := c.bestFor(r)
		if p < 0 {
			return
		}
		if old := c.owners[p]; old != "" {
			c.count[old]--
		}
		c.owners[p] = r
		c.count[r]++
		if c.ownerZone != nil {
			c.ownerZone[p] = c.zoneOf[r]
		}
	}
}

// neediest returns the node furthest below its share, or "".
func (c *claim) neediest() string {
	best, deficit := "", 0
	for _, id := range c.nodes {
		if d := c.target[id] - c.count[id]; d > deficit {
			best, deficit = id, d
		}
	}
	return best
}

// bestFor picks the partition receiver r should take: unowned ones first,
// then those that keep r's spacing, then those that break their current
// owner's spacing, then those of the donor furthest above its share, then
// the lowest.
func (c *claim) bestFor(r string) int {
	type score struct {
		unowned, spaced, zoned, repairs bool
		surplus                         int
	}
	better := func(a, b score) bool {
		switch {
		case a.unowned != b.unowned:
			return a.unowned
		case a.spaced != b.spaced:
			return a.spaced
		case a.zoned != b.zoned:
			return a.zoned
		case a.repairs != b.repairs:
			return a.repairs
		}
		return a.surplus > b.surplus
	}
	bestP := -1
	var best score
	for p, owner := range c.owners {
		var s score
		switch {
		case owner == "":
			s.unowned = true
		case c.count[owner] > c.target[owner]:
			s.surplus = c.count[owner] - c.target[owner]
			s.repairs = c.conflicts(owner, p) || c.zoneConflicts(owner, p)
		default:
			continue
		}
		s.spaced = !c.conflicts(r, p)
		s.zoned = !c.zoneConflicts(r, p)
		if bestP < 0 || better(s, best) {
			bestP, best = p, s
		}
	}
	return bestP
}

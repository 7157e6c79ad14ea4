package gossip

import (
	"context"
	"errors"
	"slices"

	"github.com/dynakv/dynakv/replica"
)

// view is an immutable snapshot of the ring with its preference lists.
type view struct {
	ring  Ring
	n     int        // primaries per partition: N, or every node if fewer
	cur   [][]string // extended preference list per partition under Owners
	next  [][]string // primaries per partition under Next, or nil
	epoch uint64
	sole  string // the only owner, with no change under way; "" otherwise
}

func newView(r Ring, n int) *view {
	v := &view{ring: r, epoch: r.Epoch}
	owners := len(Counts(r.Owners))
	v.n = min(n, owners)
	// The primaries and as many fallbacks: enough to replace every
	// primary that is down.
	v.cur = preferences(r.Owners, r.Zones, v.n, min(2*n, owners))
	if r.Next != nil {
		v.next = preferences(r.Next, r.nextZones(), n, n)
	} else if owners == 1 {
		v.sole = r.Owners[0]
	}
	return v
}

func (v *view) partition(pos uint64) int {
	return replica.Partition(pos, v.ring.Q())
}

// Ring returns the current ring and whether there is one.
func (c *Cluster) Ring() (Ring, bool) {
	v := c.view.Load()
	if v == nil {
		return Ring{}, false
	}
	return v.ring, true
}

// EncodedRing serves the ring to peers that fetch it.
func (c *Cluster) EncodedRing(ctx context.Context, args [][]byte) ([]byte, error) {
	v := c.view.Load()
	if v == nil {
		return nil, errors.New("gossip: no ring yet")
	}
	return v.ring.Encode(), nil
}

// Changed returns a channel closed at the next ring change.
func (c *Cluster) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.changed
}

// Preference implements coord's Placement: the primaries of pos under the
// current owners, the fallbacks that stand in for primaries that are down,
// and the nodes that join its replicas in the change in progress.
func (c *Cluster) Preference(pos uint64) (primaries, fallbacks, joining []string) {
	v := c.view.Load()
	if v == nil {
		return nil, nil, nil
	}
	p := v.partition(pos)
	primaries, fallbacks = v.cur[p][:v.n], v.cur[p][v.n:]
	if v.next != nil {
		for _, id := range v.next[p] {
			if !slices.Contains(primaries, id) {
				joining = append(joining, id)
			}
		}
	}
	return primaries, fallbacks, joining
}

// Zone implements coord's Placement: node's zone ("" when none is known).
func (c *Cluster) Zone(node string) string {
	if v := c.view.Load(); v != nil {
		if z, ok := v.ring.Zones[node]; ok {
			return z
		}
		if z, ok := v.ring.NextZones[node]; ok {
			return z
		}
	}
	m, _ := c.member(node)
	return m.Zone
}

// SpreadAcks implements coord's Placement: while the ring has N zones and
// N of them have a member up, a write's acknowledgements must come from
// distinct zones.
func (c *Cluster) SpreadAcks() bool {
	v := c.view.Load()
	if v == nil || zoneCount(v.ring.Zones) < c.opts.N {
		return false
	}
	up := map[string]bool{}
	c.mu.Lock()
	for id, m := range c.mu.members {
		if z, ok := v.ring.Zones[id]; ok && m.State == Alive {
			up[z] = true
		}
	}
	c.mu.Unlock()
	return len(up) >= c.opts.N
}

// Legacy implements coord's Placement: whether keys may still sit on the
// replicas of their legacy positions (Ring.Legacy).
func (c *Cluster) Legacy() bool {
	v := c.view.Load()
	return v != nil && v.ring.Legacy
}

// ContextKey implements coord's Placement: the key clients' contexts are
// sealed with, derived from the cluster secret when there is one, else the
// ring's; nil before this node has a ring with a key.
func (c *Cluster) ContextKey() []byte {
	if c.contextKey != nil {
		return c.contextKey
	}
	if v := c.view.Load(); v != nil && len(v.ring.Key) > 0 {
		return v.ring.Key
	}
	return nil
}

// Sole implements coord's Placement: the ring's only member while it has
// one and no ownership change is under way, else "".
func (c *Cluster) Sole() string {
	if v := c.view.Load(); v != nil {
		return v.sole
	}
	return ""
}

// Partitions is the ring's Q, or 0 before this node has a ring.
func (c *Cluster) Partitions() int {
	if v := c.view.Load(); v != nil {
		return v.ring.Q()
	}
	return 0
}

// Nodes lists the ring's members.
func (c *Cluster) Nodes() []string {
	if v := c.view.Load(); v != nil {
		return v.ring.Members()
	}
	return nil
}

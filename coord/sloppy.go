package coord

import (
	"context"
	"errors"
	"slices"
	"time"
)

// The sloppy quorum's view of the nodes: a request goes to the first
// healthy nodes of a key's preference list, a fallback standing in for
// each primary that is not.

// failMemory is how long the coordinator avoids a peer that refused or
// timed out before it checks, with a PING, whether the peer answers
// again. Requests never serve as that check: a write forwarded to a peer
// that is merely paused can neither be retried elsewhere nor reported
// done, so it would fail its client.
const failMemory = 2 * time.Second

// markFailed remembers that node refused or timed out just now.
func (c *Coordinator) markFailed(node string) {
	c.failed.Lock()
	defer c.failed.Unlock()
	if c.failed.at == nil {
		c.failed.at = map[string]time.Time{}
		c.failed.probing = map[string]bool{}
	}
	c.failed.at[node] = time.Now()
}

// healthy reports whether node is this one, or believed up by membership
// and has not failed a request of this coordinator since it last answered
// a probe. A failed node is probed once failMemory has passed.
func (c *Coordinator) healthy(node string) bool {
	if node == c.opts.Self {
		return true
	}
	if !c.place.Up(node) {
		return false
	}
	c.failed.Lock()
	defer c.failed.Unlock()
	at, failed := c.failed.at[node]
	if failed && time.Since(at) > failMemory && !c.failed.probing[node] {
		c.failed.probing[node] = true
		c.background.Add(1)
		go c.probe(node)
	}
	return !failed
}

// probe checks whether a failed node answers again: a PING within the
// request timeout makes it healthy; otherwise it stays failed for another
// failMemory.
func (c *Coordinator) probe(node string) {
	defer c.background.Done()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	err := c.net.Ping(ctx, node)
	cancel()
	c.failed.Lock()
	defer c.failed.Unlock()
	delete(c.failed.probing, node)
	if err == nil {
		delete(c.failed.at, node)
		return
	}
	c.failed.at[node] = time.Now()
}

// Returned forgets that node failed a request: gossip saw it come back
// (Dynamo's nodes learn of a recovery the same way), so requests go to it
// again at once rather than after the failure memory and a probe.
func (c *Coordinator) Returned(node string) {
	c.failed.Lock()
	delete(c.failed.at, node)
	c.failed.Unlock()
}

// standIns hands out a key's fallbacks, healthy ones first, each once.
type standIns struct {
	c    *Coordinator
	list []string
	used map[string]bool
}

// standIns returns the fallbacks of a key placed as p.
func (c *Coordinator) standIns(p prefs) standIns {
	return standIns{c: c, list: p.fallbacks}
}

// next returns an unused fallback, or false when none is left. (The
// fallbacks never include a primary.)
func (s *standIns) next() (string, bool) { return s.nextIn("") }

// nextIn is next, a healthy fallback of zone first when zone is set: one
// that stands in for a primary of that zone keeps the write's copies
// spread across zones.
func (s *standIns) nextIn(zone string) (string, bool) {
	for pass := range 3 {
		if pass == 0 && zone == "" {
			continue
		}
		for _, f := range s.list {
			if s.used[f] || (pass < 2 && !s.c.healthy(f)) || (pass == 0 && s.c.place.Zone(f) != zone) {
				continue
			}
			if s.used == nil {
				s.used = map[string]bool{}
			}
			s.used[f] = true
			return f, true
		}
	}
	return "", false
}

// orderByHealth puts the healthy nodes first, keeping the order otherwise.
func (c *Coordinator) orderByHealth(nodes []string) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if c.healthy(n) {
			out = append(out, n)
		}
	}
	for _, n := range nodes {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// noteFailure remembers a peer that could not be asked.
func (c *Coordinator) noteFailure(node string, err error) {
	if node != c.opts.Self && errors.Is(err, ErrUnreachable) {
		c.markFailed(node)
	}
}

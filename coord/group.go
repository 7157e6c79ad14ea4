package coord

import (
	"context"
	"sync"

	"github.com/dynakv/dynakv/replica"
)

// Group is a write of several objects of one slot coordinated by this
// node as one: a transaction, a script, SMOVE, a hash's header with its
// first fields. Each of its writes is decided and applied here as it
// comes, so that the next one reads it; none is sent on until Commit,
// which sends them all to each other replica in one request, stored there
// in one Pebble batch, or kept whole as hints for a replica that is down.
// A replica, the coordinator excepted, therefore holds all of the group or
// none of it (read repair and anti-entropy, which move objects one at a
// time, may show part of it for a moment).
//
// Writes to keys of another slot than the group's go out one by one, as
// without a group.
type Group struct {
	p        prefs
	slot     int
	fallback bool // no primary of the slot is healthy: this node stands in
	need     int  // the largest W of the group's writes
	pending  replica.Pending
	pl       Pipelined

	mu    sync.Mutex // a command may write several keys at once (HSET's fields)
	objs  []replica.KeyObject
	index map[string]int
}

// NewGroup starts a group of writes to keys of key's slot. It returns nil,
// and the writes then go out one by one, when this node must not
// coordinate them: it is not one of the slot's primaries while one of
// those is healthy (a caller runs a group at the slot's leader; see
// Leader).
func (c *Coordinator) NewGroup(key []byte) (*Group, error) {
	p, err := c.replicas(key)
	if err != nil {
		return nil, err
	}
	primary, healthy := false, false
	for _, node := range p.primaries {
		primary = primary || node == c.opts.Self
		healthy = healthy || c.healthy(node)
	}
	if !primary && healthy {
		return nil, nil
	}
	g := &Group{p: p, slot: replica.PositionSlot(p.pos), fallback: !primary, index: map[string]int{}}
	g.pl = Pipelined{Pending: &g.pending, Group: g}
	return g, nil
}

// Pipelined is what the group lends the requests whose writes it
// collects (GetIn and WriteIn take it); nil for a nil group.
func (g *Group) Pipelined() *Pipelined {
	if g == nil {
		return nil
	}
	return &g.pl
}

// holds reports whether the write of a key placed at p belongs to g.
func (g *Group) holds(p prefs) bool {
	return g != nil && replica.PositionSlot(p.pos) == g.slot
}

// add records o as key's object after the group's latest write to it,
// which needs W of need.
func (g *Group) add(key []byte, o replica.Object, need int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.need = max(g.need, need)
	if i, ok := g.index[string(key)]; ok {
		g.objs[i].Object = o
		return
	}
	g.index[string(key)] = len(g.objs)
	g.objs = append(g.objs, replica.KeyObject{Key: append([]byte(nil), key...), Object: o})
}

// Len is how many objects the group has written.
func (g *Group) Len() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.objs)
}

// Commit makes the group's local writes durable and sends them to the
// slot's other replicas as one write, waiting for W of them (the largest
// any of its writes asked for) as a single write does. A nil or empty
// group commits nothing.
func (c *Coordinator) Commit(ctx context.Context, g *Group) error {
	if g.Len() == 0 {
		if g != nil {
			return g.pending.Wait()
		}
		return nil
	}
	if err := g.pending.Wait(); err != nil {
		return err
	}
	g.mu.Lock()
	objs, need := g.objs, g.need
	g.objs, g.index = nil, map[string]int{}
	g.mu.Unlock()
	f := c.fanOutAll(ctx, objs[0].Key, replica.Object{}, objs, g.p, need)
	if f == nil {
		return nil
	}
	return f.wait(ctx)
}

package gossip

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// claim is the claimant's work: finish an ownership change whose data has
// moved, or start one for nodes that joined. Every node also advertises a
// FLUSHALL it applied since its metadata was last sent.
func (c *Cluster) claim() {
	if f := c.opts.Flushes; f != nil {
		if t := f.FlushedBefore(); t > c.flushAdvertised {
			c.flushAdvertised = t
			c.advertise()
		}
	}
	v := c.view.Load()
	if v == nil {
		return
	}
	ring := v.ring
	members := ring.Members()
	self := c.opts.NodeID
	if claimant := c.claimant(members); claimant != self {
		return
	}
	if !ring.Stable() {
		for _, id := range Gainers(ring, c.opts.N) {
			m, ok := c.member(id)
			if !ok || m.State != Alive || m.Ready < ring.Epoch {
				return
			}
		}
		next := Ring{Epoch: ring.Epoch + 1, Claimant: self, Owners: ring.Next, Key: ring.Key, Legacy: ring.Legacy,
			Zones: ring.nextZones()}
		if err := c.adopt(next); err != nil {
			c.log.Error("cannot commit ring", "err", err)
		}
		return
	}
	if ring.Legacy {
		c.endLegacy(ring, members)
		return
	}
	if len(ring.Key) == 0 {
		// A ring from before contexts were sealed: the claimant gives the
		// cluster its context key, in a ring that changes nothing else.
		next := Ring{Epoch: ring.Epoch + 1, Claimant: self, Owners: ring.Owners, Key: NewContextKey(), Legacy: ring.Legacy,
			Zones: ring.Zones}
		c.log.Info("giving the ring a context key")
		if err := c.adopt(next); err != nil {
			c.log.Error("cannot add a context key to the ring", "err", err)
		}
		return
	}
	// Joiners, and members whose zone changed (a restart with another
	// node.zone), make a change: data moves to the new replicas before
	// ownership does, as for a join.
	var joiners, moved []string
	zones := maps.Clone(ring.Zones)
	if zones == nil {
		zones = map[string]string{}
	}
	for _, m := range c.Members() {
		switch {
		case m.State != Alive || m.Peer == "" || m.Departing:
		case !slices.Contains(members, m.ID):
			joiners = append(joiners, m.ID)
			zones[m.ID] = m.Zone
		case m.Zone != ring.Zones[m.ID]:
			moved = append(moved, m.ID)
			zones[m.ID] = m.Zone
		}
	}
	if len(joiners) == 0 && len(moved) == 0 {
		return
	}
	nodes := append(slices.Clone(members), joiners...)
	next := Ring{
		Epoch: ring.Epoch + 1, Claimant: self, Owners: ring.Owners, Zones: ring.Zones,
		Next: AssignZones(ring.Owners, nodes, zones, ring.Q(), c.opts.N), NextZones: compactZones(zones), Key: ring.Key,
	}
	c.log.Info("ring change: nodes joining or changing zone", "joining", joiners, "zone_changed", moved)
	if err := c.adopt(next); err != nil {
		c.log.Error("cannot start ring change", "err", err)
	}
}

// compactZones returns zones, or nil when no node has one: a ring without
// zones encodes none.
func compactZones(zones map[string]string) map[string]string {
	for _, z := range zones {
		if z != "" {
			return zones
		}
	}
	return nil
}

// endLegacy clears a stable legacy ring's flag once every member has
// pushed the keys it holds to their replicas; until then the ring stays
// as it is (joins wait).
func (c *Cluster) endLegacy(ring Ring, members []string) {
	if len(ring.Key) == 0 {
		ring.Key = NewContextKey() // a ring of the oldest format: one change for both
	}
	for _, id := range members {
		m, ok := c.member(id)
		if !ok || m.State != Alive || m.Migrated < ring.Epoch {
			return
		}
	}
	next := Ring{Epoch: ring.Epoch + 1, Claimant: c.opts.NodeID, Owners: ring.Owners, Key: ring.Key, Zones: ring.Zones}
	c.log.Info("every key is with its replicas under slot positions: the ring leaves legacy placement")
	if err := c.adopt(next); err != nil {
		c.log.Error("cannot end legacy placement", "err", err)
	}
}

// claimant returns the alive ring member with the lowest id: the one node
// that makes ring changes.
func (c *Cluster) claimant(members []string) string {
	for _, id := range members {
		if m, ok := c.member(id); ok && m.State == Alive {
			return id
		}
	}
	return ""
}

type changeRequest struct {
	kind, node string
	reply      chan error
}

// Leave asks the claimant to hand this node's partitions to the others;
// once they have them the node leaves the ring (and Options.Left runs).
func (c *Cluster) Leave(ctx context.Context) error {
	c.leaving.Store(true)
	if err := c.requestChange(ctx, "leave", c.opts.NodeID); err != nil {
		c.leaving.Store(false)
		return err
	}
	c.advertise()
	return nil
}

// SetHandoffError records (or, with "", clears) the error that keeps this
// node from completing a transfer, and advertises it.
func (c *Cluster) SetHandoffError(msg string) {
	if old, _ := c.handoffErr.Load().(string); old == msg {
		return
	}
	c.handoffErr.Store(msg)
	c.advertise()
}

// Transfer is how far a node is in copying in the partitions a ring
// change gives it, as it advertises it: any node can then show every
// transfer of a change (DYN.TRANSFERS, dynakv status).
type Transfer struct {
	Epoch      uint64 `json:"e"`
	Partitions int    `json:"p"`           // partitions to copy in for this change
	Done       int    `json:"d"`           // of them copied
	Copied     int64  `json:"c"`           // objects copied so far
	Expected   int64  `json:"x,omitempty"` // about how many objects in all; 0: unknown
	Elapsed    int64  `json:"t"`           // ms since the transfer started
}

// SetTransfer advertises this node's transfer progress; a zero Transfer
// clears it. Callers advertise at most about once a second.
func (c *Cluster) SetTransfer(t Transfer) {
	if t == (Transfer{}) {
		if c.transfer.Swap(nil) == nil {
			return
		}
	} else {
		c.transfer.Store(&t)
	}
	c.advertise()
}

// Forget asks the claimant to give a dead node's partitions new owners,
// rebuilt from the surviving replicas.
func (c *Cluster) Forget(ctx context.Context, node string) error {
	return c.requestChange(ctx, "forget", node)
}

// requestChange hands a change to the claimant: this node's loop when it
// is the claimant, else the claimant's peer port.
func (c *Cluster) requestChange(ctx context.Context, kind, node string) error {
	v := c.view.Load()
	if v == nil {
		return ErrNotMember
	}
	claimant := c.claimant(v.ring.Members())
	if claimant == "" {
		return ErrNoClaimant
	}
	if claimant == c.opts.NodeID {
		return c.localChange(ctx, kind, node)
	}
	addr, ok := c.PeerAddr(claimant)
	if !ok || c.opts.Change == nil {
		return fmt.Errorf("%w: no address for %s", ErrNoClaimant, claimant)
	}
	if err := c.opts.Change(ctx, addr, kind, node); err != nil {
		return fmt.Errorf("claimant %s: %w", claimant, err)
	}
	return nil
}

func (c *Cluster) localChange(ctx context.Context, kind, node string) error {
	req := changeRequest{kind, node, make(chan error, 1)}
	select {
	case c.changes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return ErrNoClaimant
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeChange is the peer handler of a ring change (G.CHANGE), on the
// claimant.
func (c *Cluster) ServeChange(ctx context.Context, args [][]byte) ([]byte, error) {
	if len(args) != 3 {
		return nil, errors.New("gossip: want G.CHANGE leave|forget node")
	}
	v := c.view.Load()
	if v == nil || c.claimant(v.ring.Members()) != c.opts.NodeID {
		return nil, fmt.Errorf("%w: this node is not the claimant", ErrNoClaimant)
	}
	if err := c.localChange(ctx, string(args[1]), string(args[2])); err != nil {
		return nil, err
	}
	return []byte("OK"), nil
}

// change validates and starts a leave or forget; it runs on the loop.
func (c *Cluster) change(kind, node string) error {
	v := c.view.Load()
	if v == nil {
		return ErrNotMember
	}
	ring := v.ring
	if !ring.Stable() {
		return fmt.Errorf("%w (epoch %d): try again when it completes", ErrChangeInProgress, ring.Epoch)
	}
	if ring.Legacy {
		return fmt.Errorf("%w: keys are moving to their slot positions (INFO migration_partitions_pending); try again when it completes", ErrChangeInProgress)
	}
	members := ring.Members()
	if !slices.Contains(members, node) {
		return fmt.Errorf("%w: %s", ErrNotMember, node)
	}
	remaining := slices.DeleteFunc(slices.Clone(members), func(id string) bool { return id == node })
	if len(remaining) < c.opts.N {
		return fmt.Errorf("%w: without %s the ring would have %d nodes, fewer than N=%d", ErrTooFewNodes, node, len(remaining), c.opts.N)
	}
	up := c.Up(node)
	switch {
	case kind == "forget" && up:
		return fmt.Errorf("%w: %s is alive; stop it for good first, or make it leave with DYN.LEAVE", ErrAlive, node)
	case kind == "leave" && !up:
		return fmt.Errorf("%w: %s cannot hand its data over; use DYN.FORGET %s", ErrNotAlive, node, node)
	case kind != "leave" && kind != "forget":
		return fmt.Errorf("gossip: unknown ring change %q", kind)
	}
	zones := maps.Clone(ring.Zones)
	delete(zones, node)
	next := Ring{
		Epoch: ring.Epoch + 1, Claimant: c.opts.NodeID, Owners: ring.Owners, Zones: ring.Zones,
		Next: AssignZones(ring.Owners, remaining, zones, ring.Q(), c.opts.N), NextZones: compactZones(zones), Key: ring.Key,
	}
	c.log.Info("ring change requested", "change", kind, "node", node)
	if kind == "leave" {
		// Not a joiner once it is out, even before its own metadata says so.
		c.mu.Lock()
		if m := c.mu.members[node]; m != nil {
			m.Departing = true
		}
		c.mu.Unlock()
	}
	return c.adopt(next)
}

package gossip

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// claimInterval is how often the loop looks for ring work.
const claimInterval = 200 * time.Millisecond

// loop owns the ring: it adopts newer rings and, on the claimant, makes
// ring changes.
func (c *Cluster) loop() {
	defer c.wg.Done()
	t := time.NewTicker(claimInterval)
	defer t.Stop()
	fetching := map[string]bool{}
	fetched := make(chan string, 16)
	for {
		select {
		case <-c.stop:
			return
		case b := <-c.events:
			c.consider(b)
		case addr := <-c.fetch:
			if fetching[addr] || c.opts.FetchRing == nil {
				continue
			}
			fetching[addr] = true
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				b, err := c.opts.FetchRing(ctx, addr)
				if err == nil {
					select {
					case c.events <- b:
					case <-c.stop:
					}
				}
				select {
				case fetched <- addr:
				case <-c.stop:
				}
			}()
		case addr := <-fetched:
			delete(fetching, addr)
		case req := <-c.changes:
			req.reply <- c.change(req.kind, req.node)
		case <-c.poke:
			c.claim()
		case <-t.C:
			c.claim()
		}
	}
}

// consider adopts an encoded ring if it is newer than ours.
func (c *Cluster) consider(b []byte) {
	r, err := DecodeRing(b)
	if err != nil {
		c.log.Warn("ignoring a ring that does not decode", "err", err)
		return
	}
	if v := c.view.Load(); v != nil && !r.Newer(v.ring) {
		return
	}
	if err := c.adopt(r); err != nil {
		c.log.Error("cannot adopt ring", "err", err)
	}
}

// adopt makes r this node's ring: persisted, published, advertised.
func (c *Cluster) adopt(r Ring) error {
	if err := c.opts.Store.PutMeta(replica.MetaRing, r.Encode()); err != nil {
		return fmt.Errorf("persist ring: %w", err)
	}
	old := c.view.Load()
	c.view.Store(newView(r, c.opts.N))
	c.log.Info("ring changed", "ring", r.String())
	self := c.opts.NodeID
	if old != nil && slices.Contains(old.ring.Members(), self) && r.Stable() && !slices.Contains(r.Members(), self) {
		c.log.Info("this node has left the ring: its partitions are with the others")
		if c.opts.Left != nil {
			go c.opts.Left()
		}
	}
	c.mu.Lock()
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
	c.mu.Unlock()
	c.advertise()
	return nil
}

// SetMigrated records that this node has pushed every key it holds to the
// key's replicas under the legacy ring of epoch, and tells the claimant.
func (c *Cluster) SetMigrated(epoch uint64) {
	if c.migrated.Load() >= epoch {
		return
	}
	c.migrated.Store(epoch)
	c.advertise()
	c.wake(c.poke)
}

// SetReady records that this node has taken in the data of the ownership
// change at epoch, and tells the claimant.
func (c *Cluster) SetReady(epoch uint64) {
	if c.ready.Load() >= epoch {
		return
	}
	c.ready.Store(epoch)
	c.advertise()
	c.wake(c.poke)
}

package antientropy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// HintStore is the local hint range, as delivery uses it, and the local
// replica a re-routed hint may belong to.
type HintStore interface {
	HintTargets() map[string]replica.HintStats
	Hints(target string, after []byte, limit int) ([]replica.Hint, error)
	DeliveredHint(target string, key []byte, sent replica.Object) (bool, error)
	DropHint(target string, key []byte, read replica.Object) (bool, error)
	HintTTL() time.Duration
	Hint(target string, key []byte, o replica.Object) error
	Merge(key []byte, o replica.Object) (bool, error)
	// ReapStandIns deletes the fallback stand-in records that can no
	// longer be reused (replica/standin.go).
	ReapStandIns() (int, error)
}

// HintSender delivers an object to its replica, or hands a hint to
// another node to keep.
type HintSender interface {
	Merge(ctx context.Context, addr string, key []byte, o replica.Object) error
	// MergeAll delivers the hints of one slot in one request, stored in
	// one batch: the objects of a write of several keys arrive together.
	MergeAll(ctx context.Context, addr string, objs []replica.KeyObject) error
	Hint(ctx context.Context, addr, target string, key []byte, o replica.Object) error
}

// Liveness tells which nodes are up and where to reach them, and which
// are in the ring at all.
type Liveness interface {
	Up(node string) bool
	PeerAddr(node string) (string, bool)
	Ring() (gossip.Ring, bool)
}

// HintOptions configure hint delivery.
type HintOptions struct {
	// Self is this node's id and N the replication factor: a hint whose
	// target no longer replicates its key goes to the key's replicas.
	Self  string
	N     int
	Store HintStore
	Peers HintSender
	Nodes Liveness
	// Rate bounds the hints delivered per second, so that a node coming
	// back is not flooded.
	Rate int
	// Batch is how many hints are sent, and logged, at a time.
	Batch  int
	Logger *slog.Logger
}

// HintDelivery hands hints to their targets: when a node this one holds
// hints for is alive again, it streams them to it, merged with sync there,
// and deletes each hint once the target has stored it durably. A hint
// whose target no longer replicates the hint's partition (the ring moved
// it, or the target left or was forgotten) is re-routed to the key's
// current replicas instead: stored there, it is where reads and repair
// look.
type HintDelivery struct {
	opts HintOptions
	log  *slog.Logger
	loop loop
	// expired counts the hints dropped undelivered past the hint TTL.
	expired atomic.Int64
}

// Expired returns how many hints were dropped undelivered because they
// outlived the hint TTL (the tombstone grace) since the node started.
func (d *HintDelivery) Expired() int64 { return d.expired.Load() }

// hintScan is how often delivery looks for targets that are back.
const hintScan = 250 * time.Millisecond

// StartHintDelivery starts the delivery loop.
func StartHintDelivery(opts HintOptions) *HintDelivery {
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.Rate <= 0 {
		opts.Rate = 5000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &HintDelivery{opts: opts, log: opts.Logger}
	d.loop.start(d.run)
	return d
}

// Close stops delivery and waits for it.
func (d *HintDelivery) Close() { d.loop.close() }

func (d *HintDelivery) run(ctx context.Context) {
	t := time.NewTicker(hintScan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		targets := d.opts.Store.HintTargets()
		names := make([]string, 0, len(targets))
		for name := range targets {
			names = append(names, name)
		}
		slices.Sort(names)
		r, hasRing := d.opts.Nodes.Ring()
		for _, target := range names {
			switch {
			case hasRing && !slices.Contains(r.Members(), target):
				d.rerouteAll(ctx, r, target, false)
			case d.opts.Nodes.Up(target):
				d.deliver(ctx, target)
			}
		}
		if n, err := d.opts.Store.ReapStandIns(); err != nil {
			d.log.Warn("reaping stand-in records", "err", err)
		} else if n > 0 {
			d.log.Debug("reaped stand-in records", "count", n)
		}
	}
}

// HandOver gives away every hint this node holds, for a node that is
// leaving the ring: each goes to its target when the target is up and
// still replicates the key, else to the key's current replicas, and one
// of them keeps a hint for each replica that is down. It returns how many
// hints are left, with the last failure. Call it after Close.
func (d *HintDelivery) HandOver(ctx context.Context) (left int64, err error) {
	r, ok := d.opts.Nodes.Ring()
	if !ok {
		return 0, nil
	}
	for target := range d.opts.Store.HintTargets() {
		if ctx.Err() != nil {
			break
		}
		if slices.Contains(r.Members(), target) && d.opts.Nodes.Up(target) {
			d.deliver(ctx, target)
		}
		if e := d.rerouteAll(ctx, r, target, true); e != nil {
			err = e
		}
	}
	for _, st := range d.opts.Store.HintTargets() {
		left += st.Count
	}
	if err == nil && left > 0 {
		err = fmt.Errorf("%d hints not handed over", left)
	}
	return left, err
}

// replicas returns the nodes that replicate key under r: its primaries,
// and during a change the primaries it moves to.
func (d *HintDelivery) replicas(r gossip.Ring, key []byte) []string {
	p := replica.Partition(replica.Position(key), r.Q())
	out := r.Primaries(p, d.opts.N)
	if r.Next != nil {
		for _, id := range r.NextPrimaries(p, d.opts.N) {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// rerouteAll re-routes every hint for target whose key target does not
// replicate under r (all of them when leaving: this node is going away).
func (d *HintDelivery) rerouteAll(ctx context.Context, r gossip.Ring, target string, leaving bool) error {
	var after []byte
	moved := 0
	var lastErr error
	for ctx.Err() == nil {
		batch, err := d.opts.Store.Hints(target, after, d.opts.Batch)
		if err != nil {
			return err
		}
		for _, h := range batch {
			if !leaving && slices.Contains(d.replicas(r, h.Key), target) {
				continue
			}
			if err := d.reroute(ctx, r, target, h, leaving); err != nil {
				lastErr = err
				continue
			}
			moved++
		}
		if len(batch) < d.opts.Batch {
			break
		}
		after = batch[len(batch)-1].Key
	}
	if moved > 0 {
		d.log.Info("re-routed hints to the keys' current replicas", "target", target, "count", moved)
	}
	if lastErr != nil {
		d.log.Warn("re-routing hints", "target", target, "err", lastErr)
	}
	return lastErr
}

// reroute stores hint h, which target no longer should receive (or which
// a leaving node must not keep), on the key's current replicas: merged
// into each that is up (this node's own replica included), kept as a hint
// for each that is down, by this node or, when it is leaving, by a
// replica that is up. Then the hint is deleted.
func (d *HintDelivery) reroute(ctx context.Context, r gossip.Ring, target string, h replica.Hint, leaving bool) error {
	replicas := d.replicas(r, h.Key)
	var up, down []string
	for _, id := range replicas {
		if id == d.opts.Self || d.opts.Nodes.Up(id) {
			up = append(up, id)
		} else {
			down = append(down, id)
		}
	}
	for _, id := range up {
		var err error
		if id == d.opts.Self {
			_, err = d.opts.Store.Merge(h.Key, h.Object)
		} else {
			err = d.send(ctx, id, func(sctx context.Context, addr string) error {
				return d.opts.Peers.Merge(sctx, addr, h.Key, h.Object)
			})
		}
		if err != nil {
			return fmt.Errorf("hint for %s to %s: %w", target, id, err)
		}
	}
	for _, id := range down {
		var err error
		switch {
		case !leaving:
			err = d.opts.Store.Hint(id, h.Key, h.Object)
		case len(up) == 0:
			err = fmt.Errorf("no replica of the key is up to keep it")
		default:
			err = d.send(ctx, up[0], func(sctx context.Context, addr string) error {
				return d.opts.Peers.Hint(sctx, addr, id, h.Key, h.Object)
			})
		}
		if err != nil {
			return fmt.Errorf("hint for %s, kept for %s: %w", target, id, err)
		}
	}
	_, err := d.opts.Store.DropHint(target, h.Key, h.Object)
	return err
}

// send runs one request to node's peer address with a bounded wait.
func (d *HintDelivery) send(ctx context.Context, node string, fn func(context.Context, string) error) error {
	addr, ok := d.opts.Nodes.PeerAddr(node)
	if !ok {
		return fmt.Errorf("no peer address for %s", node)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return fn(sctx, addr)
}

// dropExpired deletes the hints of batch older than the hint TTL: past it
// a tombstone the hint predates may have been reaped, and the hint would
// bring the value back. Anti-entropy brings the target what they held.
func (d *HintDelivery) dropExpired(target string, batch []replica.Hint) []bool {
	ttl := d.opts.Store.HintTTL()
	expired := make([]bool, len(batch))
	if ttl <= 0 {
		return expired
	}
	cutoff := time.Now().Add(-ttl).UnixMilli()
	dropped := 0
	for i, h := range batch {
		if h.Stored >= cutoff {
			continue
		}
		expired[i] = true
		if gone, err := d.opts.Store.DropHint(target, h.Key, h.Object); err == nil && gone {
			dropped++
		}
	}
	if dropped > 0 {
		d.expired.Add(int64(dropped))
		d.log.Warn("dropped expired hints", "target", target, "count", dropped, "ttl", ttl)
	}
	return expired
}

// deliver streams target's hints to it, batch by batch, at the configured
// rate, until none is left or a send fails.
func (d *HintDelivery) deliver(ctx context.Context, target string) {
	addr, ok := d.opts.Nodes.PeerAddr(target)
	if !ok {
		return
	}
	var after []byte
	for ctx.Err() == nil {
		batch, err := d.opts.Store.Hints(target, after, d.opts.Batch)
		if err != nil {
			d.log.Error("reading hints", "target", target, "err", err)
			return
		}
		if len(batch) == 0 {
			return
		}
		start := time.Now()
		errs := make([]error, len(batch))
		expired := d.dropExpired(target, batch)
		r, hasRing := d.opts.Nodes.Ring()
		// The hints of one slot go in one request, stored in one batch
		// there: a page holds whole slots, in order.
		var wg sync.WaitGroup
		var idx []int
		var objs []replica.KeyObject
		send := func() {
			if len(idx) == 0 {
				return
			}
			idx, objs := idx, objs
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				var err error
				if len(objs) == 1 {
					err = d.opts.Peers.Merge(sctx, addr, objs[0].Key, objs[0].Object)
				} else {
					err = d.opts.Peers.MergeAll(sctx, addr, objs)
				}
				for _, i := range idx {
					errs[i] = err
				}
			}()
		}
		slot := -1
		for i, h := range batch {
			if expired[i] {
				continue
			}
			if hasRing && !slices.Contains(d.replicas(r, h.Key), target) {
				// The target no longer replicates the key: stored there,
				// the write would sit outside what its replicas serve.
				expired[i] = true
				if err := d.reroute(ctx, r, target, h, false); err != nil {
					d.log.Warn("re-routing a hint", "target", target, "err", err)
				}
				continue
			}
			if sl := replica.PositionSlot(replica.Position(h.Key)); sl != slot {
				send()
				slot, idx, objs = sl, nil, nil
			}
			idx = append(idx, i)
			objs = append(objs, replica.KeyObject{Key: h.Key, Object: h.Object})
		}
		send()
		wg.Wait()
		delivered := 0
		var firstErr error
		for i, h := range batch {
			if expired[i] {
				continue
			}
			if errs[i] != nil {
				firstErr = errs[i]
				continue
			}
			gone, err := d.opts.Store.DeliveredHint(target, h.Key, h.Object)
			if err != nil {
				d.log.Error("deleting a delivered hint", "target", target, "err", err)
				return
			}
			if gone {
				delivered++
			}
		}
		pending := d.opts.Store.HintTargets()[target].Count
		d.log.Info("hints delivered", "target", target, "count", delivered, "pending", pending,
			"took", time.Since(start).Round(time.Millisecond))
		if firstErr != nil {
			d.log.Warn("hint delivery stopped", "target", target, "err", firstErr)
			return
		}
		after = batch[len(batch)-1].Key
		// Throttle: a batch may go no faster than Rate hints a second.
		if wait := time.Duration(len(batch))*time.Second/time.Duration(d.opts.Rate) - time.Since(start); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
	}
}

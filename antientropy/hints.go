package antientropy

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// HintStore is the local hint range, as delivery uses it.
type HintStore interface {
	HintTargets() map[string]replica.HintStats
	Hints(target string, after []byte, limit int) ([]replica.Hint, error)
	DeliveredHint(target string, key []byte, sent replica.Object) (bool, error)
	DropHint(target string, key []byte, read replica.Object) (bool, error)
	HintTTL() time.Duration
}

// HintSender delivers an object to its replica.
type HintSender interface {
	Merge(ctx context.Context, addr string, key []byte, o replica.Object) error
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
// and deletes each hint once the target has stored it durably.
type HintDelivery struct {
	opts HintOptions
	log  *slog.Logger
	loop loop
}

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
			case hasRing && r.Stable() && !slices.Contains(r.Members(), target):
				d.discard(target)
			case d.opts.Nodes.Up(target):
				d.deliver(ctx, target)
			}
		}
	}
}

// discard drops every hint for a node that is no longer in the ring (it
// left, or was forgotten): its partitions have new owners, rebuilt from
// the replicas that hold these writes.
func (d *HintDelivery) discard(target string) {
	dropped := 0
	for {
		batch, err := d.opts.Store.Hints(target, nil, d.opts.Batch)
		if err != nil || len(batch) == 0 {
			break
		}
		for _, h := range batch {
			if gone, err := d.opts.Store.DropHint(target, h.Key, h.Object); err == nil && gone {
				dropped++
			}
		}
	}
	if dropped > 0 {
		d.log.Info("dropped the hints of a node no longer in the ring", "target", target, "count", dropped)
	}
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
		var wg sync.WaitGroup
		for i, h := range batch {
			if expired[i] {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				errs[i] = d.opts.Peers.Merge(sctx, addr, h.Key, h.Object)
			}()
		}
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

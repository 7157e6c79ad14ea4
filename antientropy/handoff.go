package antientropy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// Ring is what the handoff needs of membership.
type Ring interface {
	Ring() (gossip.Ring, bool)
	Changed() <-chan struct{}
	SetReady(epoch uint64)
	PeerAddr(node string) (string, bool)
	Up(node string) bool
}

// Source is a replica to copy a partition from.
type Source interface {
	Range(ctx context.Context, addr string, from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
}

// Sink is the local replica the copied objects are merged into.
type Sink interface {
	Merge(key []byte, o replica.Object) (bool, error)
}

// HandoffOptions configure a Handoff.
type HandoffOptions struct {
	Self  string
	N     int
	Ring  Ring
	Peers Source
	Store Sink
	// Batch is how many objects one range request carries.
	Batch  int
	Logger *slog.Logger
}

// Handoff brings this node's data in line with ownership changes: when a
// ring change makes it a replica of partitions it did not replicate, it
// copies each of them from the partition's current replicas (all that are
// up, merged with sync, so that a write one of them missed still arrives)
// and then reports itself ready, which lets the claimant complete the
// change. Writes made meanwhile reach it too: the coordinator sends writes
// to the joining replicas as well.
type Handoff struct {
	opts HandoffOptions
	log  *slog.Logger
	loop loop
}

// retryInterval is how long a failed transfer waits before trying again.
const retryInterval = time.Second

// StartHandoff starts the handoff loop.
func StartHandoff(opts HandoffOptions) *Handoff {
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Handoff{opts: opts, log: opts.Logger}
	h.loop.start(h.run)
	return h
}

// Close stops the loop and waits for it.
func (h *Handoff) Close() { h.loop.close() }

func (h *Handoff) run(ctx context.Context) {
	for {
		changed := h.opts.Ring.Changed()
		retry := h.step(ctx)
		var wait <-chan time.Time
		if retry {
			wait = time.After(retryInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-wait:
		}
	}
}

// step copies the partitions the change in progress gives this node. It
// reports whether something failed and should be retried.
func (h *Handoff) step(ctx context.Context) bool {
	r, ok := h.opts.Ring.Ring()
	if !ok || r.Stable() {
		return false
	}
	gained := gossip.Gained(r, h.opts.N, h.opts.Self)
	parts := make([]int, 0, len(gained))
	for p := range gained {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	start := time.Now()
	var objects int
	for _, p := range parts {
		n, err := h.copyPartition(ctx, r.Q(), p, gained[p])
		objects += n
		if err != nil {
			h.log.Warn("handoff of a partition failed; retrying", "partition", p, "err", err)
			return true
		}
	}
	if len(parts) > 0 {
		h.log.Info("handoff done", "epoch", r.Epoch, "partitions", len(parts), "objects", objects, "took", time.Since(start).Round(time.Millisecond))
	}
	h.opts.Ring.SetReady(r.Epoch)
	return false
}

// copyPartition merges partition p from every source that is up. At least
// one source must deliver the whole partition.
func (h *Handoff) copyPartition(ctx context.Context, q, p int, sources []string) (int, error) {
	from, to := replica.PartitionRange(p, q)
	total, complete := 0, false
	var lastErr error
	for _, src := range sources {
		if src == h.opts.Self || !h.opts.Ring.Up(src) {
			continue
		}
		addr, ok := h.opts.Ring.PeerAddr(src)
		if !ok {
			continue
		}
		n, err := h.copyFrom(ctx, addr, from, to)
		total += n
		if err != nil {
			lastErr = fmt.Errorf("from %s: %w", src, err)
			continue
		}
		complete = true
	}
	if !complete {
		if lastErr == nil {
			lastErr = fmt.Errorf("no replica of partition %d is up", p)
		}
		return total, lastErr
	}
	return total, nil
}

func (h *Handoff) copyFrom(ctx context.Context, addr string, from, to uint64) (int, error) {
	var after []byte
	n := 0
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		batch, err := h.opts.Peers.Range(rctx, addr, from, to, after, h.opts.Batch)
		cancel()
		if err != nil {
			return n, err
		}
		for _, ko := range batch {
			if _, err := h.opts.Store.Merge(ko.Key, ko.Object); err != nil {
				return n, err
			}
			n++
		}
		if len(batch) < h.opts.Batch {
			return n, nil
		}
		after = batch[len(batch)-1].Key
	}
}

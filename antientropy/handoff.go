package antientropy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// Ring is what the handoff needs of membership.
type Ring interface {
	Ring() (gossip.Ring, bool)
	Changed() <-chan struct{}
	SetReady(epoch uint64)
	SetHandoffError(msg string)
	SetTransfer(t gossip.Transfer)
	PeerAddr(node string) (string, bool)
	Up(node string) bool
}

// Source is a replica to copy a partition from.
type Source interface {
	Range(ctx context.Context, addr string, from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
}

// Sink is the local replica the copied objects are merged into, and where
// the progress of a transfer is kept.
type Sink interface {
	Merge(key []byte, o replica.Object) (bool, error)
	Range(from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
	DropRange(from, to uint64) error
	GetMeta(name string) ([]byte, error)
	PutMeta(name string, value []byte) error
}

// Exchanger runs a Merkle exchange of one partition with a peer.
type Exchanger interface {
	ExchangeWith(ctx context.Context, addr string, p int) (ExchangeResult, error)
}

// HandoffOptions configure a Handoff.
type HandoffOptions struct {
	Self  string
	N     int
	Ring  Ring
	Peers Source
	Store Sink
	// Exchanger compares a copied partition with its other replicas.
	Exchanger Exchanger
	// Counter, when set, estimates how much a transfer has to copy.
	Counter Counter
	// Rate bounds the objects copied per second.
	Rate int
	// DropAfter is how long a ring must stay unchanged before this node
	// drops the partitions it no longer replicates.
	DropAfter time.Duration
	// Batch is how many objects one range request carries.
	Batch  int
	Logger *slog.Logger
}

// Handoff brings this node's data in line with ownership changes (joins,
// leaves, forgets). When a ring change makes it a replica of partitions it
// did not replicate, it copies each of them whole from one current replica
// and then runs a Merkle exchange with each other current replica that is
// up, so that a write one of them missed still arrives at the cost of the
// difference only; then it reports itself ready, which lets the claimant
// complete the change. Writes made meanwhile reach it too: the
// coordinator sends writes to the joining replicas as well.
//
// Transfers are throttled, resumable (each finished partition is recorded,
// so a restart continues with the rest), and visible: Pending counts what
// is left, and an error that stops a transfer is advertised rather than
// waited on. Once a ring has been stable for DropAfter, the node drops the
// partitions it no longer replicates.
type Handoff struct {
	opts     HandoffOptions
	log      *slog.Logger
	loop     loop
	pending  atomic.Int64
	progress transfer
}

// retryInterval is how long a failed transfer waits before trying again.
const retryInterval = time.Second

// StartHandoff starts the handoff loop.
func StartHandoff(opts HandoffOptions) *Handoff {
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.Rate <= 0 {
		opts.Rate = 20000
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

// Pending is the number of partitions this node still has to take in for
// the ring change in progress.
func (h *Handoff) Pending() int64 { return h.pending.Load() }

func (h *Handoff) run(ctx context.Context) {
	var stableSince time.Time
	var stableEpoch uint64
	for {
		changed := h.opts.Ring.Changed()
		retry := h.step(ctx)
		var wait <-chan time.Time
		if retry {
			wait = time.After(retryInterval)
		}
		// Drop what this node no longer replicates once the ring has
		// stayed the same for DropAfter; never while the ring is a legacy
		// ring, whose keys may still have to be moved from here.
		var drop <-chan time.Time
		if r, ok := h.opts.Ring.Ring(); ok && r.Stable() && !r.Legacy {
			if r.Epoch != stableEpoch {
				stableEpoch, stableSince = r.Epoch, time.Now()
			}
			if left := h.opts.DropAfter - time.Since(stableSince); left > 0 {
				drop = time.After(left)
			} else {
				h.dropForeign(r)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-wait:
		case <-drop:
		}
	}
}

// progress is a transfer's record of finished partitions, kept in the
// store so that a restart resumes.
type progress struct {
	Epoch uint64 `json:"epoch"`
	Done  []int  `json:"done"`
}

const progressKey = replica.MetaHandoff

func (h *Handoff) loadProgress(epoch uint64) progress {
	b, err := h.opts.Store.GetMeta(progressKey)
	var p progress
	if err == nil && b != nil && json.Unmarshal(b, &p) == nil && p.Epoch == epoch {
		return p
	}
	return progress{Epoch: epoch}
}

func (h *Handoff) saveProgress(p progress) {
	b, _ := json.Marshal(p)
	if err := h.opts.Store.PutMeta(progressKey, b); err != nil {
		h.log.Warn("recording handoff progress", "err", err)
	}
}

// step copies the partitions the change in progress gives this node. It
// reports whether something failed and should be retried.
func (h *Handoff) step(ctx context.Context) bool {
	r, ok := h.opts.Ring.Ring()
	if !ok || r.Stable() {
		h.pending.Store(0)
		if _, busy := h.Progress(); busy {
			h.progress.end()
			h.opts.Ring.SetTransfer(gossip.Transfer{})
		}
		return false
	}
	gained := gossip.Gained(r, h.opts.N, h.opts.Self)
	prog := h.loadProgress(r.Epoch)
	var parts []int
	for p := range gained {
		if !slices.Contains(prog.Done, p) {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	h.pending.Store(int64(len(parts)))
	switch {
	case len(parts) < len(gained) && len(parts) > 0:
		h.log.Info("resuming handoff", "epoch", r.Epoch, "done", len(prog.Done), "left", len(parts))
	case len(parts) > 0:
		h.log.Info("handoff started", "epoch", r.Epoch, "partitions", len(parts))
	}
	if len(parts) > 0 {
		h.progress.begin(r.Epoch, len(gained), len(gained)-len(parts), h.estimate(ctx, r.Q(), parts, gained))
	}
	start := time.Now()
	var objects int
	throttle := rateLimiter(h.opts.Rate)
	for _, p := range parts {
		n, err := h.copyPartition(ctx, r.Q(), p, gained[p], throttle)
		objects += n
		h.publish(0, err == nil)
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			msg := fmt.Sprintf("partition %d of epoch %d: %v", p, r.Epoch, err)
			h.log.Warn("handoff of a partition failed; retrying", "partition", p, "err", err)
			h.opts.Ring.SetHandoffError(msg)
			return true
		}
		prog.Done = append(prog.Done, p)
		h.saveProgress(prog)
		h.pending.Add(-1)
	}
	h.opts.Ring.SetHandoffError("")
	if len(parts) > 0 {
		h.log.Info("handoff done", "epoch", r.Epoch, "partitions", len(parts), "objects", objects,
			"took", time.Since(start).Round(time.Millisecond))
	}
	h.opts.Ring.SetReady(r.Epoch)
	return false
}

// publish counts n objects copied (and a partition finished when done)
// and advertises the progress when it is time to.
func (h *Handoff) publish(n int, done bool) {
	if t, ok := h.progress.copied(n, done); ok {
		h.opts.Ring.SetTransfer(t)
	}
}

// rateLimiter returns a function that sleeps as needed to keep n objects
// at a time to rate per second.
func rateLimiter(rate int) func(n int) {
	var next time.Time
	return func(n int) {
		now := time.Now()
		if next.Before(now) {
			next = now
		}
		wait := next.Sub(now)
		next = next.Add(time.Duration(n) * time.Second / time.Duration(rate))
		if wait > 0 {
			time.Sleep(wait)
		}
	}
}

// copyPartition copies partition p whole from the first current replica
// that is up, then exchanges it with the others that are up.
func (h *Handoff) copyPartition(ctx context.Context, q, p int, sources []string, throttle func(int)) (int, error) {
	from, to := replica.PartitionRange(p, q)
	total, copied := 0, false
	var lastErr error
	for _, src := range sources {
		if src == h.opts.Self || !h.opts.Ring.Up(src) {
			continue
		}
		addr, ok := h.opts.Ring.PeerAddr(src)
		if !ok {
			continue
		}
		if copied && h.opts.Exchanger != nil {
			res, err := h.opts.Exchanger.ExchangeWith(ctx, addr, p)
			if err == nil {
				total += res.Pulled
				continue
			}
			if !errors.Is(err, ErrNotReady) {
				lastErr = fmt.Errorf("exchange with %s: %w", src, err)
				continue
			}
		}
		n, err := h.copyFrom(ctx, addr, from, to, throttle)
		total += n
		if err != nil {
			lastErr = fmt.Errorf("from %s: %w", src, err)
			continue
		}
		copied = true
	}
	if !copied {
		if lastErr == nil {
			lastErr = fmt.Errorf("no current replica of partition %d is up", p)
		}
		return total, lastErr
	}
	return total, nil
}

func (h *Handoff) copyFrom(ctx context.Context, addr string, from, to uint64, throttle func(int)) (int, error) {
	var after []byte
	n := 0
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		batch, err := h.opts.Peers.Range(rctx, addr, from, to, after, h.opts.Batch)
		cancel()
		if err != nil {
			return n, err
		}
		throttle(len(batch))
		for _, ko := range batch {
			if _, err := h.opts.Store.Merge(ko.Key, ko.Object); err != nil {
				return n, err
			}
			n++
		}
		h.publish(len(batch), false)
		if len(batch) < h.opts.Batch {
			return n, nil
		}
		after = batch[len(batch)-1].Key
	}
}

// dropForeign drops the partitions of r this node does not replicate but
// still holds data of.
func (h *Handoff) dropForeign(r gossip.Ring) {
	dropped := 0
	for p := range r.Q() {
		if slices.Contains(r.Primaries(p, h.opts.N), h.opts.Self) {
			continue
		}
		from, to := replica.PartitionRange(p, r.Q())
		if kos, err := h.opts.Store.Range(from, to, nil, 1); err != nil || len(kos) == 0 {
			continue
		}
		if err := h.opts.Store.DropRange(from, to); err != nil {
			h.log.Warn("dropping a partition this node no longer replicates", "partition", p, "err", err)
			continue
		}
		dropped++
	}
	if dropped > 0 {
		h.log.Info("dropped partitions this node no longer replicates", "epoch", r.Epoch, "partitions", dropped)
	}
}

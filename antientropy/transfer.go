package antientropy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/gossip"
)

// Counter counts the keys a replica holds per partition: a transfer asks
// its sources first, to say about how much it has to copy.
type Counter interface {
	Count(ctx context.Context, addr string, q int, parts []int) (keys, expiring []int64, err error)
}

// transfer is the progress of the handoff in progress: written by the
// handoff loop, read by Progress and advertised to the cluster at most
// once a second.
type transfer struct {
	copiedTotal atomic.Int64 // objects copied in since start, every change

	mu        sync.Mutex
	cur       gossip.Transfer
	started   time.Time
	published time.Time
}

// advertiseEvery bounds how often a transfer's progress is advertised.
const advertiseEvery = time.Second

// begin starts the progress of a transfer of parts partitions, done of
// them already, with about expected objects to copy (0: unknown).
func (t *transfer) begin(epoch uint64, parts, done int, expected int64) {
	t.mu.Lock()
	t.cur = gossip.Transfer{Epoch: epoch, Partitions: parts, Done: done, Expected: expected}
	t.started, t.published = time.Now(), time.Time{}
	t.mu.Unlock()
}

// copied counts n objects copied and a partition finished when done; it
// returns what to advertise, or false when the last advertisement is
// recent.
func (t *transfer) copied(n int, done bool) (gossip.Transfer, bool) {
	t.copiedTotal.Add(int64(n))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur.Copied += int64(n)
	if done {
		t.cur.Done++
	}
	t.cur.Elapsed = time.Since(t.started).Milliseconds()
	if time.Since(t.published) < advertiseEvery && t.cur.Done < t.cur.Partitions {
		return gossip.Transfer{}, false
	}
	t.published = time.Now()
	return t.cur, true
}

// end clears the progress: the transfer is over.
func (t *transfer) end() {
	t.mu.Lock()
	t.cur = gossip.Transfer{}
	t.mu.Unlock()
}

// Progress returns this node's part of the ring change in progress: the
// partitions it copies in and how far it is; false when it copies none.
func (h *Handoff) Progress() (gossip.Transfer, bool) {
	h.progress.mu.Lock()
	defer h.progress.mu.Unlock()
	return h.progress.cur, h.progress.cur.Partitions > 0
}

// Copied returns the objects this node has copied in for ring changes
// since it started.
func (h *Handoff) Copied() int64 { return h.progress.copiedTotal.Load() }

// estimate asks, for each partition of parts, its first current replica
// that is up how many keys it holds, and returns the sum: about what the
// transfer will copy (0 when it cannot tell).
func (h *Handoff) estimate(ctx context.Context, q int, parts []int, sources map[int][]string) int64 {
	if h.opts.Counter == nil {
		return 0
	}
	bySource := map[string][]int{}
	for _, p := range parts {
		for _, src := range sources[p] {
			if src != h.opts.Self && h.opts.Ring.Up(src) {
				bySource[src] = append(bySource[src], p)
				break
			}
		}
	}
	var total int64
	for src, ps := range bySource {
		addr, ok := h.opts.Ring.PeerAddr(src)
		if !ok {
			return 0
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		keys, _, err := h.opts.Counter.Count(cctx, addr, q, ps)
		cancel()
		if err != nil {
			h.log.Debug("estimating a transfer", "source", src, "err", err)
			return 0
		}
		for _, k := range keys {
			total += k
		}
	}
	return total
}

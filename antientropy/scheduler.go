package antientropy

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// Store is the local replica as anti-entropy uses it.
type Store interface {
	Replica
	TreeStore
	Range(from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
	Purge(key []byte, clock replica.Clock) (bool, error)
	// ContainerClock joins the dots of the element versions of a
	// container written before a time: what its expiry removed.
	ContainerClock(key []byte, before int64) (replica.Clock, error)
	Update(ctx context.Context, key []byte, m replica.Mutation) (replica.Object, error)
	Mint() (replica.Dot, error)
	SetObserver(o replica.Observer)
}

// Membership is what anti-entropy needs of the ring and membership.
type Membership interface {
	Ring() (gossip.Ring, bool)
	Changed() <-chan struct{}
	Up(node string) bool
	PeerAddr(node string) (string, bool)
}

// Options configure anti-entropy.
type Options struct {
	Self string
	N    int
	// Interval is how often every partition is compared with each of its
	// other replicas.
	Interval time.Duration
	// RepairRate bounds the keys repaired per second.
	RepairRate int
	// Grace is how old a tombstone must be before it is purged (and it
	// must also be held by every primary replica).
	Grace time.Duration
	Nodes Membership
	Store Store
	// Remote returns the exchange remote of a peer address.
	Remote func(addr string) Remote
	Logger *slog.Logger
}

// AntiEntropy keeps a node's replicas converged: it maintains the Merkle
// trees, runs exchanges with the other replicas of every partition it
// holds, and reaps tombstones every replica is known to hold. One goroutine
// runs the rounds; exchanges are one at a time.
type AntiEntropy struct {
	opts  Options
	log   *slog.Logger
	trees atomic.Pointer[Trees]

	exchanges, repaired, reaped atomic.Int64
	expired                     atomic.Int64          // expired values turned into tombstones
	failures                    atomic.Int64          // exchanges that failed
	last                        atomic.Pointer[Round] // the last round finished
	trigger                     chan struct{}
	loop                        loop

	// agreed[p][peer] is when the last successful exchange of partition p
	// with peer started: every tombstone held then is held by both since.
	// Owned by the loop goroutine.
	agreed map[int]map[string]time.Time
}

// Start registers anti-entropy as the store's observer and starts it: the
// trees are built once the ring (and so Q) is known, then rounds run every
// interval.
func Start(opts Options) *AntiEntropy {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RepairRate <= 0 {
		opts.RepairRate = 5000
	}
	a := &AntiEntropy{opts: opts, log: opts.Logger, trigger: make(chan struct{}, 1),
		agreed: map[int]map[string]time.Time{}}
	opts.Store.SetObserver(observer{a})
	a.loop.start(a.run)
	return a
}

// observer forwards the store's changes to the trees once they exist.
type observer struct{ a *AntiEntropy }

func (o observer) Changed(pos uint64, key []byte, old, next replica.Object) {
	if t := o.a.trees.Load(); t != nil {
		t.Changed(pos, key, old, next)
	}
}

// Dropped forwards a dropped range of the store to the trees.
func (o observer) Dropped(from, to uint64) {
	if t := o.a.trees.Load(); t != nil {
		t.Dropped(from, to)
	}
}

// Reset forwards a flush of the store to the trees.
func (o observer) Reset() {
	if t := o.a.trees.Load(); t != nil {
		t.Reset()
	}
}

// Trees returns the trees, or ErrNotReady while they are being built.
func (a *AntiEntropy) Trees() (*Trees, error) {
	t := a.trees.Load()
	if t == nil || !t.Ready() {
		return nil, ErrNotReady
	}
	return t, nil
}

// ExchangeWith runs an exchange of partition p with the node at addr now,
// outside the rounds: the handoff uses it to catch a copied partition up
// with the partition's other replicas.
func (a *AntiEntropy) ExchangeWith(ctx context.Context, addr string, p int) (ExchangeResult, error) {
	trees, err := a.Trees()
	if err != nil {
		return ExchangeResult{}, err
	}
	res, err := Exchange(ctx, trees, a.opts.Store, a.opts.Remote(addr), p, ExchangeOptions{Grace: a.opts.Grace})
	if err == nil {
		a.exchanges.Add(1)
		a.repaired.Add(int64(res.Repaired()))
	}
	return res, err
}

// Repair starts a round now: every partition this node holds, with every
// other replica.
func (a *AntiEntropy) Repair() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// Stats returns the exchanges run, the keys they repaired and the
// tombstones reaped since start.
func (a *AntiEntropy) Stats() (exchanges, repaired, reaped int64) {
	return a.exchanges.Load(), a.repaired.Load(), a.reaped.Load()
}

// Expired counts the expired values this node turned into tombstones
// since it started: Redis's expired_keys, per replica.
func (a *AntiEntropy) Expired() int64 { return a.expired.Load() }

// Failures counts the exchanges that failed since the node started: a
// peer unreachable or erring in the middle of one.
func (a *AntiEntropy) Failures() int64 { return a.failures.Load() }

// Round is what one anti-entropy round did, for operators: when it
// ended, how long it took, the exchanges it made and failed, and the keys
// it repaired.
type Round struct {
	Ended             time.Time
	Took              time.Duration
	Exchanges, Failed int
	Repaired          int
}

// LastRound returns the last round this node finished, and false before
// its first.
func (a *AntiEntropy) LastRound() (Round, bool) {
	if r := a.last.Load(); r != nil {
		return *r, true
	}
	return Round{}, false
}

// Close stops the rounds and waits for them.
func (a *AntiEntropy) Close() { a.loop.close() }

func (a *AntiEntropy) run(ctx context.Context) {
	if !a.buildTrees(ctx) {
		return
	}
	t := time.NewTicker(a.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.trigger:
		}
		a.round(ctx)
	}
}

// buildTrees waits for the ring, then builds the trees for its Q.
func (a *AntiEntropy) buildTrees(ctx context.Context) bool {
	for {
		changed := a.opts.Nodes.Changed()
		if r, ok := a.opts.Nodes.Ring(); ok {
			t := NewTrees(r.Q(), a.opts.Store, a.log)
			a.trees.Store(t)
			if err := t.Build(ctx); err != nil {
				if !errors.Is(err, context.Canceled) {
					a.log.Error("building anti-entropy trees", "err", err)
				}
				return false
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// round exchanges every partition this node replicates with each other
// replica that is up, then reaps what the agreements allow.
func (a *AntiEntropy) round(ctx context.Context) {
	trees, err := a.Trees()
	r, ok := a.opts.Nodes.Ring()
	if err != nil || !ok || r.Q() != len(trees.parts) {
		return
	}
	start := time.Now()
	var exchanged, repaired, failed int
	throttle := rateLimiter(a.opts.RepairRate)
	for p := range r.Q() {
		primaries := r.Primaries(p, a.opts.N)
		if !slices.Contains(primaries, a.opts.Self) {
			continue
		}
		for _, peer := range primaries {
			if peer == a.opts.Self || !a.opts.Nodes.Up(peer) {
				continue
			}
			addr, ok := a.opts.Nodes.PeerAddr(peer)
			if !ok {
				continue
			}
			began := time.Now()
			res, err := Exchange(ctx, trees, a.opts.Store, a.opts.Remote(addr), p, ExchangeOptions{Throttle: throttle, Grace: a.opts.Grace})
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				failed++
				a.failures.Add(1)
				a.log.Warn("anti-entropy exchange failed", "peer", peer, "partition", p, "err", err)
				continue
			}
			a.exchanges.Add(1)
			a.repaired.Add(int64(res.Repaired()))
			exchanged++
			repaired += res.Repaired()
			if a.agreed[p] == nil {
				a.agreed[p] = map[string]time.Time{}
			}
			a.agreed[p][peer] = began
			if res.Repaired() > 0 {
				a.log.Info("anti-entropy repaired", "peer", peer, "partition", p, "leaves", res.Leaves,
					"pulled", res.Pulled, "pushed", res.Pushed, "took", time.Since(began).Round(time.Millisecond))
			}
		}
		a.reap(ctx, trees, r, p, primaries)
	}
	took := time.Since(start)
	a.last.Store(&Round{Ended: time.Now(), Took: took, Exchanges: exchanged, Failed: failed, Repaired: repaired})
	a.log.Info("anti-entropy round", "exchanges", exchanged, "failed", failed, "repaired", repaired, "took", took.Round(time.Millisecond))
}

// eachInPartition calls fn for every object of partition p of a ring of q
// partitions, reading the store in batches.
func (a *AntiEntropy) eachInPartition(ctx context.Context, q, p int, fn func(replica.KeyObject)) error {
	from, to := replica.PartitionRange(p, q)
	var after []byte
	for ctx.Err() == nil {
		batch, err := a.opts.Store.Range(from, to, after, 512)
		if err != nil {
			return err
		}
		for _, ko := range batch {
			fn(ko)
		}
		if len(batch) < 512 {
			return nil
		}
		after = batch[len(batch)-1].Key
	}
	return ctx.Err()
}

package antientropy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// A cluster founded before positions carried the Redis Cluster slot keeps
// its ring's partition owners, but each key's partition changed with its
// position: after every node has converted its store (replica), a key
// still sits on the replicas of its legacy position. While the ring says
// so (gossip.Ring.Legacy) reads ask those too, and the Migration moves the
// keys: each node pushes every object of the partitions it does not
// replicate to the partition's primaries, merged there with sync, then
// tells the claimant, which ends legacy placement once every member has.
// The objects stay where they were until then, and are dropped as any
// partition a node no longer replicates is (Handoff).

// MigrationRing is what the migration needs of the ring and membership.
type MigrationRing interface {
	Ring() (gossip.Ring, bool)
	Changed() <-chan struct{}
	SetMigrated(epoch uint64)
	Up(node string) bool
	PeerAddr(node string) (string, bool)
}

// MigrationStore is the local store as the migration reads and hints it.
type MigrationStore interface {
	Range(from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
	Hint(target string, key []byte, o replica.Object) error
}

// MigrationOptions configure a Migration.
type MigrationOptions struct {
	Self  string
	N     int
	Ring  MigrationRing
	Peers HintSender
	Store MigrationStore
	// Rate bounds the objects pushed per second.
	Rate int
	// Batch is how many objects are read at a time.
	Batch  int
	Logger *slog.Logger
}

// Migration moves the keys of a legacy ring to their replicas (see above).
// It runs one goroutine, stopped by Close.
type Migration struct {
	opts    MigrationOptions
	log     *slog.Logger
	loop    loop
	pending atomic.Int64
}

// StartMigration starts the migration loop.
func StartMigration(opts MigrationOptions) *Migration {
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.Rate <= 0 {
		opts.Rate = 20000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Migration{opts: opts, log: opts.Logger}
	m.loop.start(m.run)
	return m
}

// Close stops the migration and waits for it.
func (m *Migration) Close() { m.loop.close() }

// Pending is the number of partitions this node still has to push to
// their replicas (0 once it has, or with no legacy ring).
func (m *Migration) Pending() int64 { return m.pending.Load() }

func (m *Migration) run(ctx context.Context) {
	var done uint64 // the legacy epoch whose pass completed here
	for {
		changed := m.opts.Ring.Changed()
		var wait <-chan time.Time
		if r, ok := m.opts.Ring.Ring(); ok && r.Legacy && r.Stable() && done != r.Epoch {
			if err := m.pass(ctx, r); err != nil {
				if ctx.Err() != nil {
					return
				}
				m.log.Warn("moving keys to their slot positions; retrying", "err", err)
				wait = time.After(retryInterval)
			} else {
				done = r.Epoch
				m.opts.Ring.SetMigrated(r.Epoch)
			}
		} else if !ok || !r.Legacy {
			m.pending.Store(0)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-wait:
		}
	}
}

// pass pushes every object of every partition of r this node does not
// replicate to that partition's primaries: merged into those that are up,
// kept here as a hint for those that are not. It fails, to be run again,
// when an object could not be placed on every primary.
func (m *Migration) pass(ctx context.Context, r gossip.Ring) error {
	q := r.Q()
	var foreign []int
	for p := range q {
		if !slices.Contains(r.Primaries(p, m.opts.N), m.opts.Self) {
			foreign = append(foreign, p)
		}
	}
	m.pending.Store(int64(len(foreign)))
	start := time.Now()
	throttle := rateLimiter(m.opts.Rate)
	pushed := 0
	for _, p := range foreign {
		n, err := m.push(ctx, r, p, throttle)
		pushed += n
		if err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		m.pending.Add(-1)
	}
	m.log.Info("keys moved to their slot positions", "epoch", r.Epoch, "objects", pushed,
		"partitions", len(foreign), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// push sends the objects this node holds of partition p to its primaries.
func (m *Migration) push(ctx context.Context, r gossip.Ring, p int, throttle func(int)) (int, error) {
	primaries := r.Primaries(p, m.opts.N)
	from, to := replica.PartitionRange(p, r.Q())
	var after []byte
	n := 0
	for ctx.Err() == nil {
		batch, err := m.opts.Store.Range(from, to, after, m.opts.Batch)
		if err != nil {
			return n, err
		}
		throttle(len(batch))
		for _, ko := range batch {
			for _, id := range primaries {
				if err := m.place(ctx, id, ko); err != nil {
					return n, err
				}
			}
			n++
		}
		if len(batch) < m.opts.Batch {
			return n, nil
		}
		after = batch[len(batch)-1].Key
	}
	return n, ctx.Err()
}

// place gives one object to one of its replicas: merged there when it is
// up, else kept here as a hint for it.
func (m *Migration) place(ctx context.Context, id string, ko replica.KeyObject) error {
	if m.opts.Ring.Up(id) {
		if addr, ok := m.opts.Ring.PeerAddr(id); ok {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := m.opts.Peers.Merge(sctx, addr, ko.Key, ko.Object)
			cancel()
			if err == nil {
				return nil
			}
		}
	}
	if err := m.opts.Store.Hint(id, ko.Key, ko.Object); err != nil {
		return fmt.Errorf("%q for %s: %w", ko.Key, id, err)
	}
	return nil
}

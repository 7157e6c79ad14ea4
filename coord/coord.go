package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/peer"
	"github.com/dynakv/dynakv/replica"
)

// Errors the coordinator returns; resp maps them to RESP error prefixes.
var (
	// ErrUnavailable means fewer replicas than the quorum answered in time.
	ErrUnavailable = errors.New("coord: quorum not met")
	// ErrTooManySiblings refuses a write that would leave an object with
	// more than replica.MaxSiblings siblings.
	ErrTooManySiblings = errors.New("coord: too many siblings")
	// ErrWrongType refuses a command of one type against a key holding
	// another (a string command on a hash, HSET on a set), as Redis does.
	ErrWrongType = errors.New("coord: Operation against a key holding the wrong kind of value")
	// ErrBadQuorum is an R or W outside 1..N.
	ErrBadQuorum = errors.New("coord: quorum out of range")
	// ErrUnreachable means a peer could not be asked at all (refused,
	// timed out, unknown address): the next replica may be tried instead.
	// It is the peer protocol's own sentinel, so that its failures need
	// no mapping here.
	ErrUnreachable = peer.ErrUnreachable
	// ErrNoRing means this node has not joined a ring yet.
	ErrNoRing = errors.New("coord: this node is not in a ring yet")
	// ErrNotSent marks, beside ErrUnreachable, a request that provably
	// never reached the peer (refused, never written). Only such a
	// forwarded write is tried on another coordinator: one that may have
	// arrived may also run, and running it elsewhere too would count an
	// INCR twice.
	ErrNotSent = peer.ErrNotSent
)

// Local is this node's replica, as the coordinator uses it.
type Local interface {
	// Read returns what the node holds for key: its replica's object and
	// any hints it keeps for others (a fallback answers reads so).
	// Both take the key's ring position, replica.Position(key), which the
	// coordinator has computed already.
	ReadAt(pos uint64, key []byte) (replica.Object, error)
	// UpdateAt runs a write this node coordinates as a primary; the
	// mutation mints its dot with Mint. UpdateDeferred is UpdateAt with
	// the wait for durability left to p.
	UpdateAt(ctx context.Context, pos uint64, key []byte, m replica.Mutation) (replica.Object, error)
	UpdateDeferred(p *replica.Pending, pos uint64, key []byte, m replica.Mutation) (replica.Object, error)
	// StandIn runs a write this node coordinates as a fallback, under the
	// key's stand-in actor and record (replica/standin.go).
	StandIn(pos uint64, key []byte, m replica.StandInMutation) (replica.Object, error)
	Merge(key []byte, o replica.Object) (bool, error)
	// MergeAll merges objs and stores them in one batch (replica.Store).
	MergeAll(p *replica.Pending, objs []replica.KeyObject) error
	// Hint keeps o for target, which missed it; HintAll keeps the objects
	// of one write, in one batch.
	Hint(target string, key []byte, o replica.Object) error
	HintAll(target string, objs []replica.KeyObject) error
	// Mint returns a dot never issued before, under this node's
	// incarnation.
	Mint() (replica.Dot, error)
	// Vouches reports whether a client's context claims nothing of this
	// node's actors beyond what it has issued.
	Vouches(c replica.Clock) bool
	// Range reads objects of a range of ring positions, for SCAN.
	Range(from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
	// Elements and ContainerClock read a container's elements (replica.Store).
	Elements(prefix, after []byte, limit int) ([]replica.KeyObject, error)
	ContainerClock(key []byte, before int64) (replica.Clock, error)
	ContainerTally(key []byte, typ byte) (replica.Tally, error)
	// PartitionCounts counts live keys per partition, for DBSIZE.
	PartitionCounts(q int, parts []int) (keys, expiring []int64)
	// Flush applies a FLUSHALL made at t (ms).
	Flush(t int64) error
}

// Placement is what the coordinator needs of the ring and membership.
type Placement interface {
	// Preference returns the replicas of the ring position pos: the
	// primaries in preference order (N of them, or every node of a smaller
	// cluster), the fallbacks that stand in for primaries that are down,
	// and the nodes that also receive writes while an ownership change
	// moves the key to them. No primaries means no ring yet.
	Preference(pos uint64) (primaries, fallbacks, joining []string)
	// Up reports whether membership believes node is alive.
	Up(node string) bool
	// Partitions is the ring's Q; 0 without a ring.
	Partitions() int
	// Nodes lists the ring's members.
	Nodes() []string
	// Sole returns the node that holds every key, when the ring has one
	// member and no ownership change under way; "" otherwise. It lets a
	// single node skip placing each key.
	Sole() string
	// ContextKey is the key clients' contexts are sealed with; nil until
	// this node knows it.
	ContextKey() []byte
	// Legacy reports whether keys may still sit on the replicas of their
	// legacy positions (a cluster converting to slot positions): reads
	// then ask those too.
	Legacy() bool
	// Zone returns node's zone ("" for none).
	Zone(node string) string
	// SpreadAcks reports whether a write's W acknowledgements must come
	// from W distinct zones: while the ring has N zones and N are up, so
	// that the loss of a zone never takes every acknowledged copy.
	SpreadAcks() bool
}

// Transport carries the coordinator's requests to other nodes.
type Transport interface {
	// Read asks node what it holds for key; done is called once with the
	// answer, as for Merge.
	Read(ctx context.Context, node string, key []byte, done func(replica.Object, error))
	// Merge has node merge the object enc (replica.AppendObject's
	// encoding, made once for all replicas) into its object for key and
	// store it durably. It does not wait: done is called once with the
	// outcome, on any goroutine, perhaps before Merge returns. A write fans
	// out to its replicas this way without a goroutine per replica.
	Merge(ctx context.Context, node string, key, enc []byte, done func(error))
	// Hint has node keep the object enc as a hint for target; done as for
	// Merge.
	Hint(ctx context.Context, node, target string, key, enc []byte, done func(error))
	// MergeAll has node merge the objects of a write of several keys and
	// store them in one batch; HintAll has node keep them as hints for
	// target, together. done as for Merge.
	MergeAll(ctx context.Context, node string, objs []replica.KeyObject, done func(error))
	HintAll(ctx context.Context, node, target string, objs []replica.KeyObject, done func(error))
	// Forward has node coordinate op on key.
	Forward(ctx context.Context, node string, key []byte, op Op) (Result, error)
	// Range reads objects of a range of ring positions from node.
	Range(ctx context.Context, node string, from, to uint64, limit int) ([]replica.KeyObject, error)
	// Elements reads up to limit element objects of the container whose
	// names begin with prefix, after the name after, from node.
	Elements(ctx context.Context, node string, prefix, after []byte, limit int) ([]replica.KeyObject, error)
	// ContainerClock reads the join of node's element clocks of key
	// (before > 0: of the element versions written before it).
	ContainerClock(ctx context.Context, node string, key []byte, before int64) (replica.Clock, error)
	// Tally reads node's tally of a container's elements of one type.
	Tally(ctx context.Context, node string, key []byte, typ byte) (replica.Tally, error)
	// Count has node count its live keys in each partition.
	Count(ctx context.Context, node string, q int, parts []int) (keys, expiring []int64, err error)
	// Flush has node apply a FLUSHALL made at t.
	Flush(ctx context.Context, node string, t int64) error
	// Ping reports whether node answers at all.
	Ping(ctx context.Context, node string) error
}

// Options configure a Coordinator.
type Options struct {
	// Self is this node's id.
	Self string
	// N, R and W are the configured replication factor and quorums.
	N, R, W int
	// Timeout bounds a request's wait for its quorum.
	Timeout time.Duration
	// Now returns the wall clock in ms; nil means time.Now.
	Now func() int64
	// ReadSiblings, when set, learns how many versions (siblings and
	// tombstones) each successful Get merged: the metric that shows
	// concurrent writers piling up on keys.
	ReadSiblings func(n int)
	Logger       *slog.Logger
}

// Coordinator runs requests for keys: it finds the replicas, fans a request
// out, waits for its quorum and merges what comes back.
//
// It uses a sloppy quorum: a request goes to the first N healthy nodes of
// the key's preference list, a fallback standing in for each primary that
// is down (a write leaves a hint for the primary there), and a node that
// fails during the request is replaced by the next fallback at once. A node
// that failed a request is remembered for a short while and tried last.
type Coordinator struct {
	local Local
	net   Transport
	place Placement
	opts  Options
	log   *slog.Logger

	readRepairs  atomic.Int64
	lateForwards atomic.Int64
	sealer       atomic.Pointer[replica.Sealer] // under the last context key seen
	failed       struct {
		sync.Mutex
		at      map[string]time.Time // peers that failed, and when last
		probing map[string]bool      // failed peers being probed now
	}
	// background tracks the work a request leaves behind (the replicas
	// still being written or repaired after the quorum answered).
	background sync.WaitGroup
	// decided, when a test sets it, learns each write as it is decided:
	// the object it was decided against and its result. The model test
	// checks with it which versions a write really superseded.
	decided func(base replica.Object, res Result)
}

// New returns a coordinator for this node's replica local, reaching the
// other nodes through net and finding replicas with place.
func New(local Local, net Transport, place Placement, opts Options) *Coordinator {
	if opts.Now == nil {
		opts.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Coordinator{local: local, net: net, place: place, opts: opts, log: opts.Logger}
}

// Now is the coordinator's clock in ms.
func (c *Coordinator) Now() int64 { return c.opts.Now() }

// ReadRepairs counts the stale replicas that reads have repaired.
func (c *Coordinator) ReadRepairs() int64 { return c.readRepairs.Load() }

// Wait blocks until the background work of past requests has finished or
// ctx ends. Each piece of it is bounded by the request timeout.
func (c *Coordinator) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.background.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// quorum resolves a per-request override (0: the configured q), checks it
// against N and caps it at the replicas there are.
func (c *Coordinator) quorum(override, q, replicas int, name string) (int, error) {
	if override != 0 {
		if override < 1 || override > c.opts.N {
			return 0, fmt.Errorf("%w: %s must be between 1 and %d", ErrBadQuorum, name, c.opts.N)
		}
		q = override
	}
	return min(q, replicas), nil
}

// prefs is where a key's replicas are.
type prefs struct {
	pos                           uint64 // the key's ring position
	primaries, fallbacks, joining []string
	noRepair                      bool // the nodes are not the key's replicas: read them, repair nothing
}

func (c *Coordinator) replicas(key []byte) (prefs, error) {
	p := prefs{pos: replica.Position(key)}
	p.primaries, p.fallbacks, p.joining = c.place.Preference(p.pos)
	if len(p.primaries) == 0 {
		return p, ErrNoRing
	}
	return p, nil
}

// Local reports whether this node is key's only replica, with no node
// joining its replicas: a request for key then involves no other node and
// never waits on the network, so the front end may run it in line.
func (c *Coordinator) Local(key []byte) bool {
	if sole := c.place.Sole(); sole != "" {
		return sole == c.opts.Self
	}
	p, err := c.replicas(key)
	return err == nil && len(p.joining) == 0 && len(p.primaries) == 1 && p.primaries[0] == c.opts.Self
}

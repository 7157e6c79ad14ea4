package coord

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// Errors the coordinator returns; resp maps them to RESP error prefixes.
var (
	// ErrUnavailable means fewer replicas than the quorum answered in time.
	ErrUnavailable = errors.New("coord: quorum not met")
	// ErrTooManySiblings refuses a write that would leave an object with
	// more than replica.MaxSiblings siblings.
	ErrTooManySiblings = errors.New("coord: too many siblings")
	// ErrBadQuorum is an R or W outside 1..N.
	ErrBadQuorum = errors.New("coord: quorum out of range")
)

// Local is this node's replica, as the coordinator uses it.
type Local interface {
	Get(key []byte) (replica.Object, error)
	Update(key []byte, m replica.Mutation) (replica.Object, error)
	Actor() string
	KeyCount() (keys, expiring int64)
}

// Options configure a Coordinator.
type Options struct {
	// N, R and W are the configured replication factor and quorums.
	N, R, W int
	// Timeout bounds a request's wait for its quorum.
	Timeout time.Duration
	// Now returns the wall clock in ms; nil means time.Now.
	Now func() int64
}

// Coordinator runs requests for keys: it finds the replicas, fans a request
// out, waits for its quorum and merges what comes back.
type Coordinator struct {
	local Local
	opts  Options
}

// New returns a coordinator over the local replica.
func New(local Local, opts Options) *Coordinator {
	if opts.Now == nil {
		opts.Now = func() int64 { return time.Now().UnixMilli() }
	}
	return &Coordinator{local: local, opts: opts}
}

// Now is the coordinator's clock in ms.
func (c *Coordinator) Now() int64 { return c.opts.Now() }

// quorum resolves a per-request override (0: the configured q) and checks
// it against N.
func (c *Coordinator) quorum(override, q int, name string) (int, error) {
	if override == 0 {
		return q, nil
	}
	if override < 1 || override > c.opts.N {
		return 0, fmt.Errorf("%w: %s must be between 1 and %d", ErrBadQuorum, name, c.opts.N)
	}
	return override, nil
}

// Get reads key from r replicas (0: the configured R) and returns their
// objects merged.
func (c *Coordinator) Get(ctx context.Context, key []byte, r int) (replica.Object, error) {
	if _, err := c.quorum(r, c.opts.R, "R"); err != nil {
		return replica.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return replica.Object{}, err
	}
	return c.local.Get(key)
}

// Write applies op to key on its replicas and waits for the write quorum.
func (c *Coordinator) Write(ctx context.Context, key []byte, op Op) (Result, error) {
	if _, err := c.quorum(op.W, c.opts.W, "W"); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	var res Result
	_, err := c.local.Update(key, func(cur replica.Object) (replica.Object, bool, error) {
		next, r, ok, err := op.apply(cur, c.local.Actor(), c.Now())
		res = r
		return next, ok, err
	})
	return res, err
}

// DBSize counts the live keys and those of them with an expiry.
func (c *Coordinator) DBSize(ctx context.Context) (keys, expiring int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	keys, expiring = c.local.KeyCount()
	return keys, expiring, nil
}

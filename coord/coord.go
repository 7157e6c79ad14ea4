package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
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
	// ErrUnreachable means a peer could not be asked at all (refused,
	// timed out, unknown address): the next replica may be tried instead.
	ErrUnreachable = errors.New("coord: peer unreachable")
	// ErrNoRing means this node has not joined a ring yet.
	ErrNoRing = errors.New("coord: this node is not in a ring yet")
)

// Local is this node's replica, as the coordinator uses it.
type Local interface {
	Get(key []byte) (replica.Object, error)
	Update(key []byte, m replica.Mutation) (replica.Object, error)
	Merge(key []byte, o replica.Object) (bool, error)
	Actor() string
	KeyCount() (keys, expiring int64)
}

// Placement is what the coordinator needs of the ring and membership.
type Placement interface {
	// Preference returns the replicas of the ring position pos: the
	// primaries in preference order (N of them, or every node of a smaller
	// cluster), and the nodes that also receive writes while an ownership
	// change moves the key to them. No primaries means no ring yet.
	Preference(pos uint64) (primaries, joining []string)
	// Up reports whether membership believes node is alive.
	Up(node string) bool
}

// Transport carries the coordinator's requests to other nodes.
type Transport interface {
	// Read returns node's object for key.
	Read(ctx context.Context, node string, key []byte) (replica.Object, error)
	// Merge has node merge o into its object for key and store it durably.
	Merge(ctx context.Context, node string, key []byte, o replica.Object) error
	// Forward has node coordinate op on key.
	Forward(ctx context.Context, node string, key []byte, op Op) (Result, error)
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
	Now    func() int64
	Logger *slog.Logger
}

// Coordinator runs requests for keys: it finds the replicas, fans a request
// out, waits for its quorum and merges what comes back.
type Coordinator struct {
	local Local
	net   Transport
	place Placement
	opts  Options
	log   *slog.Logger

	readRepairs atomic.Int64
	failed      struct {
		sync.Mutex
		at map[string]time.Time // peers that failed lately
	}
	// background tracks the work a request leaves behind (the replicas
	// still being written or repaired after the quorum answered).
	background sync.WaitGroup
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

func (c *Coordinator) replicas(key []byte) (primaries, joining []string, err error) {
	primaries, joining = c.place.Preference(replica.Position(key))
	if len(primaries) == 0 {
		return nil, nil, ErrNoRing
	}
	return primaries, joining, nil
}

// reply is one replica's answer to a read.
type reply struct {
	node string
	obj  replica.Object
	err  error
}

// Get reads key from r replicas (0: the configured R) and returns their
// objects merged. The replicas that answer later, or stale, are repaired
// in the background.
func (c *Coordinator) Get(ctx context.Context, key []byte, r int) (replica.Object, error) {
	primaries, _, err := c.replicas(key)
	if err != nil {
		return replica.Object{}, err
	}
	need, err := c.quorum(r, c.opts.R, len(primaries), "R")
	if err != nil {
		return replica.Object{}, err
	}
	replies := make(chan reply, len(primaries))
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	for _, node := range primaries {
		if node == c.opts.Self {
			o, err := c.local.Get(key)
			replies <- reply{node, o, err}
			continue
		}
		go func() {
			o, err := c.net.Read(rctx, node, key)
			replies <- reply{node, o, err}
		}()
	}
	var merged replica.Object
	var got []reply
	ok, failed := 0, 0
	for ok < need && failed <= len(primaries)-need {
		select {
		case rp := <-replies:
			got = append(got, rp)
			if rp.err != nil {
				failed++
				continue
			}
			ok++
			merged = replica.Sync(merged, rp.obj)
		case <-ctx.Done():
			cancel()
			return replica.Object{}, ctx.Err()
		case <-rctx.Done():
			cancel()
			return replica.Object{}, fmt.Errorf("%w: %d of %d replicas answered the read within %s", ErrUnavailable, ok, need, c.opts.Timeout)
		}
	}
	if ok < need {
		cancel()
		return replica.Object{}, fmt.Errorf("%w: %d of %d replicas answered the read (%v)", ErrUnavailable, ok, need, firstErr(got))
	}
	c.background.Add(1)
	go func() {
		defer c.background.Done()
		defer cancel()
		c.repair(rctx, key, got, replies, len(primaries))
	}()
	return merged, nil
}

func firstErr(rs []reply) error {
	for _, r := range rs {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// repair collects the rest of a read's replies and sends the merged object
// to every replica whose answer was stale.
func (c *Coordinator) repair(ctx context.Context, key []byte, got []reply, replies <-chan reply, total int) {
	for len(got) < total {
		select {
		case rp := <-replies:
			got = append(got, rp)
		case <-ctx.Done():
			total = len(got)
		}
	}
	var final replica.Object
	for _, rp := range got {
		if rp.err == nil {
			final = replica.Sync(final, rp.obj)
		}
	}
	for _, rp := range got {
		if rp.err != nil || rp.obj.Equal(final) {
			continue
		}
		var err error
		if rp.node == c.opts.Self {
			_, err = c.local.Merge(key, final)
		} else {
			err = c.net.Merge(ctx, rp.node, key, final)
		}
		if err != nil {
			c.log.Debug("read repair failed", "node", rp.node, "key", string(key), "err", err)
			continue
		}
		c.readRepairs.Add(1)
	}
}

// Write applies op to key: on this node if it is one of the key's
// primaries, else on the first primary that can be reached.
func (c *Coordinator) Write(ctx context.Context, key []byte, op Op) (Result, error) {
	primaries, _, err := c.replicas(key)
	if err != nil {
		return Result{}, err
	}
	if _, err := c.quorum(op.W, c.opts.W, len(primaries), "W"); err != nil {
		return Result{}, err
	}
	if slices.Contains(primaries, c.opts.Self) {
		return c.Coordinate(ctx, key, op)
	}
	deadline := time.Now().Add(c.opts.Timeout)
	candidates := c.orderByHealth(primaries)
	var lastErr error
	for i, node := range candidates {
		// Each attempt gets its share of the time left, so that a peer that
		// hangs cannot use up the request: the next one is tried in time.
		share := time.Until(deadline) / time.Duration(len(candidates)-i)
		actx, cancel := context.WithTimeout(ctx, share)
		res, err := c.net.Forward(actx, node, key, op)
		cancel()
		if !errors.Is(err, ErrUnreachable) {
			return res, err
		}
		c.markFailed(node)
		lastErr = err
	}
	return Result{}, fmt.Errorf("%w: no replica of the key could coordinate the write (%v)", ErrUnavailable, lastErr)
}

// failMemory is how long the coordinator remembers that a peer refused or
// timed out, and tries it last.
const failMemory = 2 * time.Second

func (c *Coordinator) markFailed(node string) {
	c.failed.Lock()
	defer c.failed.Unlock()
	if c.failed.at == nil {
		c.failed.at = map[string]time.Time{}
	}
	c.failed.at[node] = time.Now()
}

// healthy reports whether node is believed up by membership and has not
// failed a request of this coordinator lately.
func (c *Coordinator) healthy(node string) bool {
	if !c.place.Up(node) {
		return false
	}
	c.failed.Lock()
	defer c.failed.Unlock()
	at, ok := c.failed.at[node]
	if ok && time.Since(at) > failMemory {
		delete(c.failed.at, node)
		ok = false
	}
	return !ok
}

// orderByHealth puts the healthy nodes first, keeping the order otherwise.
func (c *Coordinator) orderByHealth(nodes []string) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if c.healthy(n) {
			out = append(out, n)
		}
	}
	for _, n := range nodes {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Coordinate runs op on key with this node as the coordinator: it decides
// op against its own object (after a quorum read when op depends on the
// current value), stores the result, sends it to the other replicas and
// waits for the write quorum. Forwarded writes arrive here.
func (c *Coordinator) Coordinate(ctx context.Context, key []byte, op Op) (Result, error) {
	primaries, joining, err := c.replicas(key)
	if err != nil {
		return Result{}, err
	}
	need, err := c.quorum(op.W, c.opts.W, len(primaries), "W")
	if err != nil {
		return Result{}, err
	}
	var seen replica.Object
	if op.needsRead() {
		if seen, err = c.Get(ctx, key, 0); err != nil {
			return Result{}, err
		}
	}
	var res Result
	next, err := c.local.Update(key, func(cur replica.Object) (replica.Object, bool, error) {
		base := replica.Sync(cur, seen)
		next, r, ok, err := op.apply(base, c.local.Actor(), c.Now())
		res = r
		if !ok {
			return base, !base.Equal(cur), err
		}
		return next, true, err
	})
	if err != nil || !res.Written {
		return res, err
	}
	return res, c.replicate(ctx, key, next, primaries, joining, need)
}

// replicate sends o to every replica of key but this node and waits until
// need primaries (this one included) have stored it.
func (c *Coordinator) replicate(ctx context.Context, key []byte, o replica.Object, primaries, joining []string, need int) error {
	acks := 0
	if slices.Contains(primaries, c.opts.Self) {
		acks = 1
	}
	targets := make([]string, 0, len(primaries)+len(joining))
	for _, n := range append(slices.Clone(primaries), joining...) {
		if n != c.opts.Self {
			targets = append(targets, n)
		}
	}
	if acks >= need && len(targets) == 0 {
		return nil
	}
	type ack struct {
		node string
		err  error
	}
	acked := make(chan ack, len(targets))
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	for _, node := range targets {
		go func() { acked <- ack{node, c.net.Merge(wctx, node, key, o)} }()
	}
	// The remaining acknowledgements are collected in the background so
	// that the fan-out's context lives until every send has finished.
	result := make(chan error, 1)
	c.background.Add(1)
	go func() {
		defer c.background.Done()
		defer cancel()
		failed, pending := 0, len(targets)
		possible := acks + countIn(targets, primaries)
		reported := false
		report := func(err error) {
			if !reported {
				reported = true
				result <- err
			}
		}
		if acks >= need {
			report(nil)
		}
		for pending > 0 {
			a := <-acked
			pending--
			if !slices.Contains(primaries, a.node) {
				continue
			}
			if a.err != nil {
				failed++
				c.log.Debug("replica write failed", "node", a.node, "key", string(key), "err", a.err)
			} else {
				acks++
			}
			switch {
			case acks >= need:
				report(nil)
			case possible-failed < need:
				report(fmt.Errorf("%w: %d of %d replicas acknowledged the write (%v)", ErrUnavailable, acks, need, a.err))
			}
		}
		report(fmt.Errorf("%w: %d of %d replicas acknowledged the write within %s", ErrUnavailable, acks, need, c.opts.Timeout))
	}()
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func countIn(nodes, set []string) int {
	n := 0
	for _, x := range nodes {
		if slices.Contains(set, x) {
			n++
		}
	}
	return n
}

// DBSize counts the live keys this node holds, and those of them with an
// expiry.
func (c *Coordinator) DBSize(ctx context.Context) (keys, expiring int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	keys, expiring = c.local.KeyCount()
	return keys, expiring, nil
}

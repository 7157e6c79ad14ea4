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
	// ErrNotSent marks, beside ErrUnreachable, a request that provably
	// never reached the peer (refused, never written). Only such a
	// forwarded write is tried on another coordinator: one that may have
	// arrived may also run, and running it elsewhere too would count an
	// INCR twice.
	ErrNotSent = errors.New("coord: request not sent")
)

// Local is this node's replica, as the coordinator uses it.
type Local interface {
	// Read returns what the node holds for key: its replica's object and
	// any hints it keeps for others (a fallback answers reads so).
	// Both take the key's ring position, replica.Position(key), which the
	// coordinator has computed already.
	ReadAt(pos uint64, key []byte) (replica.Object, error)
	// UpdateAt runs a write this node coordinates as a primary; the
	// mutation mints its dot with Mint.
	UpdateAt(ctx context.Context, pos uint64, key []byte, m replica.Mutation) (replica.Object, error)
	// StandIn runs a write this node coordinates as a fallback, under the
	// key's stand-in actor and record (replica/standin.go).
	StandIn(pos uint64, key []byte, m replica.StandInMutation) (replica.Object, error)
	Merge(key []byte, o replica.Object) (bool, error)
	// Hint keeps o for target, which missed it.
	Hint(target string, key []byte, o replica.Object) error
	// Mint returns a dot never issued before, under this node's
	// incarnation.
	Mint() (replica.Dot, error)
	// Vouches reports whether a client's context claims nothing of this
	// node's actors beyond what it has issued.
	Vouches(c replica.Clock) bool
	// Range reads objects of a range of ring positions, for SCAN.
	Range(from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
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
	// Forward has node coordinate op on key.
	Forward(ctx context.Context, node string, key []byte, op Op) (Result, error)
	// Range reads objects of a range of ring positions from node.
	Range(ctx context.Context, node string, from, to uint64, limit int) ([]replica.KeyObject, error)
	// Count has node count its live keys in each partition.
	Count(ctx context.Context, node string, q int, parts []int) (keys, expiring []int64, err error)
	// Flush has node apply a FLUSHALL made at t.
	Flush(ctx context.Context, node string, t int64) error
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
		at map[string]time.Time // peers that failed lately
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
}

func (c *Coordinator) replicas(key []byte) (prefs, error) {
	p := prefs{pos: replica.Position(key)}
	p.primaries, p.fallbacks, p.joining = c.place.Preference(p.pos)
	if len(p.primaries) == 0 {
		return p, ErrNoRing
	}
	return p, nil
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

// healthy reports whether node is this one, or believed up by membership
// and has not failed a request of this coordinator lately.
func (c *Coordinator) healthy(node string) bool {
	if node == c.opts.Self {
		return true
	}
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

// standIns hands out a key's fallbacks, healthy ones first, each once.
type standIns struct {
	c    *Coordinator
	list []string
	used map[string]bool
}

func (c *Coordinator) standIns(p prefs) standIns {
	return standIns{c: c, list: p.fallbacks}
}

// next returns an unused fallback, or false when none is left. (The
// fallbacks never include a primary.)
func (s *standIns) next() (string, bool) {
	for _, healthyOnly := range []bool{true, false} {
		for _, f := range s.list {
			if !s.used[f] && (!healthyOnly || s.c.healthy(f)) {
				if s.used == nil {
					s.used = map[string]bool{}
				}
				s.used[f] = true
				return f, true
			}
		}
	}
	return "", false
}

// reply is one replica's answer to a read.
type reply struct {
	node    string
	primary bool
	obj     replica.Object
	err     error
}

// Get reads key from r replicas (0: the configured R) and returns their
// objects merged. The replicas that answer later, or stale, are repaired
// in the background.
func (c *Coordinator) Get(ctx context.Context, key []byte, r int) (replica.Object, error) {
	if rd := prefetched(ctx); rd != nil && r == 0 && !rd.taken && string(rd.key) == string(key) {
		rd.taken = true
		o, err := rd.wait(ctx)
		c.countSiblings(o, err)
		return o, err
	}
	if q := deferred(ctx); q != nil {
		return replica.Object{}, q.block()
	}
	p, err := c.replicas(key)
	if err != nil {
		return replica.Object{}, err
	}
	return c.read(ctx, key, p, r)
}

// read is Get of a key placed already.
func (c *Coordinator) read(ctx context.Context, key []byte, p prefs, r int) (replica.Object, error) {
	o, err := c.get(ctx, key, p, r)
	c.countSiblings(o, err)
	return o, err
}

// countSiblings tells the metrics how many siblings a read answered.
func (c *Coordinator) countSiblings(o replica.Object, err error) {
	if err == nil && c.opts.ReadSiblings != nil {
		c.opts.ReadSiblings(len(o.Siblings))
	}
}

// ask is one read request of a gather: to a primary or a fallback.
type ask struct {
	node    string
	primary bool
	// slot is the primary's place in the read: the primary's own ask, or
	// a fallback's asked beside it when it was slow (a hedge). Nil for a
	// fallback asked in place of a primary known to be down or failed,
	// whose answer counts as it comes.
	slot *readSlot
}

// readSlot is a healthy primary's place in a read. A fallback hedging a
// slow primary holds the key only if it was handed a hint for it, so its
// answer counts toward R only once the primary has failed or the read has
// run out of time: a hedge speeds a read past a primary that is gone, but
// does not answer for one that is merely slow. (Were it to, a read at R=N
// could miss a primary's siblings, and a write under its context would
// leave them standing.)
type readSlot struct {
	answered bool // the primary answered
	failed   bool // the primary could not be asked
	hedgeOK  bool // a fallback beside it answered; counted once the primary fails
}

// gather is one read on its way to the key's replicas, driven like a
// fanout by the answers' callbacks and one timer (the hedge, then the
// timeout): the caller waits for R answers only, and the callback of the
// last answer checks for stale replicas. Only a read that finds one
// starts a goroutine, to repair it.
type gather struct {
	c      *Coordinator
	key    []byte
	pos    uint64          // key's ring position
	ctx    context.Context // the asks': the timeout, not the caller's cancellation
	cancel context.CancelFunc
	need   int
	spare  standIns
	result chan error // nil once R answered, sent once
	timer  *time.Timer

	mu       sync.Mutex
	got      []reply
	asked    int
	slots    []readSlot // the primaries asked; allocated once, never grown
	ok       int
	merged   replica.Object // of the answers up to the quorum, what the caller gets
	hedged   bool
	reported bool
	closed   bool
}

func (c *Coordinator) get(ctx context.Context, key []byte, p prefs, r int) (replica.Object, error) {
	g, o, err := c.startGet(ctx, key, p, r)
	if g == nil {
		return o, err
	}
	return g.wait(ctx)
}

// startGet asks key's replicas and returns the gather to wait on, or,
// when the read needs no other node or cannot start, its outcome.
func (c *Coordinator) startGet(ctx context.Context, key []byte, p prefs, r int) (*gather, replica.Object, error) {
	need, err := c.quorum(r, c.opts.R, len(p.primaries), "R")
	if err != nil {
		return nil, replica.Object{}, err
	}
	if len(p.primaries) == 1 && p.primaries[0] == c.opts.Self {
		o, err := c.local.ReadAt(p.pos, key) // the only replica: nothing to ask or repair
		return nil, o, err
	}
	g := &gather{c: c, key: key, pos: p.pos, need: need, spare: c.standIns(p), result: make(chan error, 1),
		slots: make([]readSlot, 0, len(p.primaries))}
	g.ctx, g.cancel = context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	c.background.Add(1)
	var first []ask
	g.mu.Lock()
	for _, node := range p.primaries {
		if !c.healthy(node) {
			if f, ok := g.spare.next(); ok {
				first = g.queue(first, f, false, nil)
				continue
			}
		}
		g.slots = append(g.slots, readSlot{})
		first = g.queue(first, node, true, &g.slots[len(g.slots)-1])
	}
	g.timer = time.AfterFunc(c.hedgeAfter(), g.onTimer)
	g.mu.Unlock()
	g.issue(first)
	return g, replica.Object{}, nil
}

// wait returns the read's merged answer once R replicas gave theirs, or
// the failure, or ctx's error if it ends first.
func (g *gather) wait(ctx context.Context) (replica.Object, error) {
	select {
	case err := <-g.result:
		if err != nil {
			return replica.Object{}, err
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.merged, nil
	case <-ctx.Done():
		return replica.Object{}, ctx.Err()
	}
}

// queue adds an ask of node to asks; g.mu is held.
func (g *gather) queue(asks []ask, node string, primary bool, slot *readSlot) []ask {
	g.asked++
	return append(asks, ask{node, primary, slot})
}

// count takes one answer toward R; g.mu is held.
func (g *gather) count() {
	g.ok++
	if g.ok >= g.need {
		g.report(nil)
	}
}

// report gives the waiting caller its answer, once; g.mu is held.
func (g *gather) report(err error) {
	if !g.reported {
		g.reported = true
		g.result <- err
	}
}

// issue sends asks queued under g.mu, after it is released: this node
// answers at once, on this goroutine.
func (g *gather) issue(asks []ask) {
	for _, a := range asks {
		if a.node == g.c.opts.Self {
			o, err := g.c.local.ReadAt(g.pos, g.key)
			g.done(a, reply{a.node, a.primary, o, err})
			continue
		}
		g.c.net.Read(g.ctx, a.node, g.key, func(o replica.Object, err error) {
			g.done(a, reply{a.node, a.primary, o, err})
		})
	}
}

// done takes one answer of a: toward R (see readSlot), or a failure
// that asks the next fallback while R is not met.
func (g *gather) done(a ask, rp reply) {
	var more []ask
	g.mu.Lock()
	g.got = append(g.got, rp)
	s := a.slot
	if rp.err != nil {
		g.c.noteFailure(rp.node, rp.err)
		if a.primary {
			s.failed = true
			if s.hedgeOK && !g.reported {
				g.count()
			}
			s = nil // a fallback asked in its place counts as it answers
		}
		if !g.reported {
			if f, ok := g.spare.next(); ok {
				more = g.queue(more, f, false, s)
			}
		}
	} else if !g.reported {
		g.merged = replica.Sync(g.merged, rp.obj)
		switch {
		case a.primary:
			s.answered = true
			g.count()
		case s == nil || s.failed:
			g.count()
		case !s.answered:
			s.hedgeOK = true
		}
	}
	if len(g.got) == g.asked && !g.reported {
		g.report(fmt.Errorf("%w: %d of %d replicas answered the read (%v)", ErrUnavailable, g.ok, g.need, firstErr(g.got)))
	}
	last := len(g.got) == g.asked
	if last {
		g.closed = true
		g.timer.Stop()
	}
	g.mu.Unlock()
	g.issue(more)
	if last {
		g.finish()
	}
}

// onTimer first hedges: each primary that has not answered gets a
// fallback asked beside it. Then, at the timeout, it fails a read that has
// not met R.
func (g *gather) onTimer() {
	var more []ask
	g.mu.Lock()
	switch {
	case g.closed || g.reported:
	case !g.hedged:
		g.hedged = true
		for i := range g.slots {
			if s := &g.slots[i]; !s.answered && !s.failed {
				if f, ok := g.spare.next(); ok {
					more = g.queue(more, f, false, s)
				}
			}
		}
		g.timer.Reset(g.c.opts.Timeout - g.c.hedgeAfter())
	default:
		// Out of time: a primary that has not answered counts as failed,
		// and the fallback that answered beside it stands in.
		for i := range g.slots {
			if s := &g.slots[i]; !s.answered && !s.failed && s.hedgeOK && !g.reported {
				s.failed = true
				g.count()
			}
		}
		g.report(fmt.Errorf("%w: %d of %d replicas answered the read within %s", ErrUnavailable, g.ok, g.need, g.c.opts.Timeout))
	}
	g.mu.Unlock()
	g.issue(more)
}

// finish runs once every answer is in: a primary whose answer was stale
// gets the merged object, on a goroutine of its own as repairs write.
func (g *gather) finish() {
	var final replica.Object
	for _, rp := range g.got {
		if rp.err == nil {
			final = replica.Sync(final, rp.obj)
		}
	}
	var stale []string
	for _, rp := range g.got {
		if rp.err == nil && rp.primary && !rp.obj.Equal(final) {
			stale = append(stale, rp.node)
		}
	}
	if len(stale) == 0 {
		g.cancel()
		g.c.background.Done()
		return
	}
	go func() {
		defer g.c.background.Done()
		defer g.cancel()
		g.c.repair(g.ctx, g.key, final, stale)
	}()
}

// noteFailure remembers a peer that could not be asked.
func (c *Coordinator) noteFailure(node string, err error) {
	if node != c.opts.Self && errors.Is(err, ErrUnreachable) {
		c.markFailed(node)
	}
}

func firstErr(rs []reply) error {
	for _, r := range rs {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// repair sends the merged object final to the replicas whose answer to a
// read was stale.
func (c *Coordinator) repair(ctx context.Context, key []byte, final replica.Object, stale []string) {
	var enc []byte
	for _, node := range stale {
		var err error
		if node == c.opts.Self {
			_, err = c.local.Merge(key, final)
		} else {
			if enc == nil {
				enc = replica.AppendObject(nil, final)
			}
			ch := make(chan error, 1)
			c.net.Merge(ctx, node, key, enc, func(err error) { ch <- err })
			err = <-ch
		}
		if err != nil {
			c.log.Debug("read repair failed", "node", node, "key", string(key), "err", err)
			continue
		}
		c.readRepairs.Add(1)
	}
}

// Write applies op to key: on this node if it is one of the key's
// primaries, else on the first healthy primary; when none is healthy,
// this node coordinates it as a fallback. A write that decides on the
// current value (Op.decides) goes to the key's first healthy primary even
// from another primary.
//
// A forwarded write is never run twice. It goes to the next primary only
// when it provably was not delivered (ErrNotSent; a primary believed down
// is not sent it at all); when it may have arrived, the client gets
// ErrUnavailable and the write may still land once. The primary that did
// not answer counts as failed for a while, so the next write goes on to
// the next one, or to a fallback.
func (c *Coordinator) Write(ctx context.Context, key []byte, op Op) (Result, error) {
	p, err := c.replicas(key)
	if err != nil {
		return Result{}, err
	}
	if _, err := c.quorum(op.W, c.opts.W, len(p.primaries), "W"); err != nil {
		return Result{}, err
	}
	if !op.decides() && slices.Contains(p.primaries, c.opts.Self) {
		return c.coordinate(ctx, key, op, p, false)
	}
	deadline := time.Now().Add(c.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	op.Deadline = deadline.UnixMilli()
	var lastErr error
	for _, node := range p.primaries {
		if !c.healthy(node) {
			continue
		}
		if node == c.opts.Self {
			return c.coordinate(ctx, key, op, p, false)
		}
		if q := deferred(ctx); q != nil {
			return Result{}, q.block()
		}
		fctx, cancel := context.WithDeadline(ctx, deadline)
		res, err := c.net.Forward(fctx, node, key, op)
		cancel()
		if errors.Is(err, ErrUnreachable) {
			c.markFailed(node)
		}
		if !errors.Is(err, ErrNotSent) {
			if errors.Is(err, ErrUnreachable) {
				return res, fmt.Errorf("%w: forwarded to %s, which did not answer; the write may still land once (%v)", ErrUnavailable, node, err)
			}
			return res, err
		}
		lastErr = err
	}
	if q := deferred(ctx); q != nil {
		return Result{}, q.block()
	}
	c.log.Debug("no primary reachable; coordinating as a fallback", "key", string(key), "err", lastErr)
	return c.coordinate(ctx, key, op, p, true)
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
	p, err := c.replicas(key)
	if err != nil {
		return Result{}, err
	}
	return c.coordinate(ctx, key, op, p, !slices.Contains(p.primaries, c.opts.Self))
}

// ServeForwarded runs a write another node forwarded here, unless it
// arrives after its sender gave up (Op.Deadline): a node that was paused,
// or a request that queued behind one, must not run it late, when its
// sender may have told the client it failed.
func (c *Coordinator) ServeForwarded(ctx context.Context, key []byte, op Op) (Result, error) {
	if op.Deadline != 0 {
		if late := time.Now().UnixMilli() - op.Deadline; late > 0 {
			c.lateForwards.Add(1)
			return Result{}, fmt.Errorf("%w: the forwarded write arrived %d ms after its sender gave up; not run", ErrUnavailable, late)
		}
	}
	return c.Coordinate(ctx, key, op)
}

// LateForwards counts the forwarded writes dropped because they arrived
// after their sender had given up.
func (c *Coordinator) LateForwards() int64 { return c.lateForwards.Load() }

// coordinate runs op as a primary of the key, or, with asFallback, on a
// node that does not replicate the key: that one decides op against a
// quorum read, mints the version under the key's stand-in actor (it has no
// replica of the key holding its own earlier versions; see
// replica.Store.StandIn) and leaves the result as hints for the primaries.
func (c *Coordinator) coordinate(ctx context.Context, key []byte, op Op, p prefs, asFallback bool) (Result, error) {
	need, err := c.quorum(op.W, c.opts.W, len(p.primaries), "W")
	if err != nil {
		return Result{}, err
	}
	if op.HasContext && !c.local.Vouches(op.Context) {
		return Result{}, fmt.Errorf("%w: it claims writes of %s that were never made", replica.ErrBadContext, c.opts.Self)
	}
	q := deferred(ctx)
	if q != nil && (op.needsRead() || asFallback) {
		return Result{}, q.block()
	}
	var seen replica.Object
	if op.needsRead() || asFallback {
		seen, err = c.read(ctx, key, p, 0)
		if err != nil && (op.readRequired() || !errors.Is(err, ErrUnavailable)) {
			return Result{}, err
		}
	}
	d := decisions.Get().(*decision)
	d.c, d.op, d.seen = c, op, seen
	var next replica.Object
	if asFallback {
		next, err = c.local.StandIn(p.pos, key, d.standIn)
	} else {
		next, err = c.local.UpdateAt(ctx, p.pos, key, d.mutation)
	}
	res := d.res
	d.c, d.op, d.seen, d.res = nil, Op{}, replica.Object{}, Result{} // hold on to nothing of this write
	decisions.Put(d)
	if err != nil || !res.Written {
		return res, err
	}
	if q != nil {
		if f := c.fanOut(ctx, key, next, p, need); f != nil {
			q.add(f)
		}
		return res, nil
	}
	return res, c.replicate(ctx, key, next, p, need)
}

// decision is a write decided against this node's object under the
// store's lock: the mutation and its result together. The store calls the
// mutation only before Update returns, so a decision is reused from write
// to write (it is larger than the object it decides).
type decision struct {
	c    *Coordinator
	op   Op
	seen replica.Object // what a quorum read found, when op needed one
	res  Result
	// mutation and standIn are d.mutate and d.decide, made once: a
	// method value made per write would be an allocation of its own.
	mutation replica.Mutation
	standIn  replica.StandInMutation
}

var decisions = sync.Pool{New: func() any {
	d := new(decision)
	d.mutation = d.mutate
	d.standIn = d.decide
	return d
}}

// mutate is the replica.Mutation of a primary's write: a dot minted under
// this node's incarnation, then decide.
func (d *decision) mutate(cur replica.Object) (replica.Object, bool, error) {
	dot, err := d.c.local.Mint()
	if err != nil {
		return cur, false, err
	}
	return d.decide(cur, dot)
}

// decide applies op with dot to the current object merged with what the
// read found.
func (d *decision) decide(cur replica.Object, dot replica.Dot) (replica.Object, bool, error) {
	base := cur
	if !d.seen.Empty() {
		base = replica.Sync(cur, d.seen)
	}
	next, r, ok, err := d.op.apply(base, dot, d.c.Now())
	d.res = r
	if ok && d.c.decided != nil {
		d.c.decided(base, r)
	}
	if !ok {
		return base, !base.Equal(cur), err
	}
	return next, true, err
}

// hedgeAfter is the share of the timeout after which a replica that has
// not answered gets a fallback standing in beside it.
func (c *Coordinator) hedgeAfter() time.Duration { return c.opts.Timeout / 3 }

// slot is one replica a write must reach: a primary (it counts toward W)
// or a node joining the key's replicas. It is filled when the replica
// stores the write, or when a fallback keeps a hint for it.
type slot struct {
	target  string
	counts  bool
	done    bool
	hedged  bool
	pending int // sends in flight
}

// send is one delivery of the write: to the slot's replica itself, or as a
// hint to holder standing in for it.
type send struct {
	slot   *slot
	holder string
}

// fanout is one write on its way to the key's replicas. It is driven by
// the sends' completions and a hedge timer rather than by goroutines of
// its own: the write's caller waits only for the quorum, and whatever
// finishes after that is handled by the callback that brings it.
type fanout struct {
	c     *Coordinator
	key   []byte
	o     replica.Object
	enc   []byte  // o encoded once for every replica
	ctx   sendCtx // the sends': the timeout, not the caller's cancellation
	need  int
	spare standIns
	slots []slot        // allocated once, never grown: sends point into it
	ready chan struct{} // closed once err holds the quorum's outcome
	err   error
	hedge *time.Timer
	// slotBuf backs slots when they fit, one allocation with the fanout.
	slotBuf [3]slot

	mu       sync.Mutex
	acks     int // replicas that have the write, this node included
	failed   int // primaries that neither the write nor a fallback reached
	possible int // primaries that could still acknowledge
	inflight int // sends and local hints under way
	lastErr  error
	reported bool
	closed   bool
}

// replicate sends o to every replica of key but this node and waits until
// need primaries (this one included, when it is one) have it, directly or
// as a hint. The rest is finished in the background: a replica that fails
// after the quorum was met still gets a hint, so it misses nothing.
func (c *Coordinator) replicate(ctx context.Context, key []byte, o replica.Object, p prefs, need int) error {
	if f := c.fanOut(ctx, key, o, p, need); f != nil {
		return f.wait(ctx)
	}
	return nil
}

// fanOut starts replicate's sends and returns the fanout to wait on, or
// nil when the quorum needs no other node.
func (c *Coordinator) fanOut(ctx context.Context, key []byte, o replica.Object, p prefs, need int) *fanout {
	if len(p.joining) == 0 && len(p.primaries) == 1 && p.primaries[0] == c.opts.Self {
		return nil // the only replica, and it has the write
	}
	f := &fanout{c: c, key: key, o: o, need: need, spare: c.standIns(p)}
	if n := len(p.primaries) + len(p.joining); n <= len(f.slotBuf) {
		f.slots = f.slotBuf[:0]
	} else {
		f.slots = make([]slot, 0, n)
	}
	for _, target := range p.primaries {
		if target == c.opts.Self {
			f.acks++
			continue
		}
		f.slots = append(f.slots, slot{target: target, counts: true})
	}
	for _, target := range p.joining {
		if target != c.opts.Self {
			f.slots = append(f.slots, slot{target: target})
		}
	}
	if f.acks >= need && len(f.slots) == 0 {
		return nil
	}
	f.possible = f.acks
	for _, s := range f.slots {
		if s.counts {
			f.possible++
		}
	}
	f.enc = replica.AppendObject(nil, o)
	f.ctx = sendCtx{values: ctx, deadline: time.Now().Add(c.opts.Timeout)}
	f.ready = make(chan struct{})
	c.background.Add(1)
	var buf [4]send
	first := buf[:0]
	f.mu.Lock()
	for i := range f.slots {
		s := &f.slots[i]
		ok := false
		if !c.healthy(s.target) {
			first, ok = f.standIn(first, s)
		}
		if !ok {
			first = f.queue(first, s, s.target)
		}
	}
	if f.acks >= need {
		f.report(nil)
	}
	f.hedge = time.AfterFunc(c.hedgeAfter(), f.onHedge)
	f.mu.Unlock()
	f.issue(first)
	return f
}

// wait returns the quorum's outcome, or ctx's error if it ends first; the
// sends go on either way.
func (f *fanout) wait(ctx context.Context) error {
	select {
	case <-f.ready:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queue adds a send of s to holder to sends; f.mu is held.
func (f *fanout) queue(sends []send, s *slot, holder string) []send {
	s.pending++
	f.inflight++
	return append(sends, send{s, holder})
}

// standIn queues a send of s to the next fallback, as a hint; false if
// none is left. f.mu is held.
func (f *fanout) standIn(sends []send, s *slot) ([]send, bool) {
	h, ok := f.spare.next()
	if !ok {
		return sends, false
	}
	return f.queue(sends, s, h), true
}

// report gives the waiting caller its answer, once; f.mu is held.
func (f *fanout) report(err error) {
	if !f.reported {
		f.reported = true
		f.err = err
		close(f.ready)
	}
}

// issue starts sends queued under f.mu, after it is released: a send may
// complete at once, on this goroutine.
func (f *fanout) issue(sends []send) {
	c := f.c
	for _, x := range sends {
		done := func(err error) { f.done(x, err) }
		if x.holder == c.opts.Self {
			done(c.local.Hint(x.slot.target, f.key, f.o))
			continue
		}
		if x.holder == x.slot.target {
			c.net.Merge(&f.ctx, x.holder, f.key, f.enc, done)
		} else {
			c.net.Hint(&f.ctx, x.holder, x.slot.target, f.key, f.enc, done)
		}
	}
}

// done takes a send's outcome: an acknowledgement toward the quorum, or a
// failure that sends the write to the next fallback, and when none is left,
// has this node keep the hint.
func (f *fanout) done(x send, err error) {
	s := x.slot
	var more []send
	missed := false
	f.mu.Lock()
	s.pending--
	if !s.done {
		if err == nil {
			s.done = true
			if s.counts {
				f.acks++
			}
		} else {
			f.lastErr = err
			f.c.noteFailure(x.holder, err)
			if s.pending == 0 {
				ok := false
				if f.ctx.Err() == nil {
					more, ok = f.standIn(more, s)
				}
				if !ok {
					missed = true
					f.inflight++ // the local hint below
					if s.counts {
						f.failed++
					}
				}
			}
		}
		switch {
		case f.acks >= f.need:
			f.report(nil)
		case f.possible-f.failed < f.need:
			f.report(fmt.Errorf("%w: %d of %d replicas acknowledged the write (%v)", ErrUnavailable, f.acks, f.need, err))
		}
	}
	f.mu.Unlock()
	if missed {
		f.c.missed(s, f.key, f.o, err)
		f.release()
	}
	f.issue(more)
	f.release()
}

// release ends one send or local hint; the last one closes the fanout.
func (f *fanout) release() {
	f.mu.Lock()
	f.inflight--
	last := f.inflight == 0
	if last {
		f.closed = true
		f.hedge.Stop()
		if !f.reported {
			f.report(fmt.Errorf("%w: %d of %d replicas acknowledged the write within %s (%v)", ErrUnavailable, f.acks, f.need, f.c.opts.Timeout, f.lastErr))
		}
	}
	f.mu.Unlock()
	if last {
		f.ctx.stop()
		f.c.background.Done()
	}
}

// onHedge runs when replicas are slow to answer: each slot still open
// gets a fallback standing in beside its replica. Merges and hints are
// idempotent, so both may land.
func (f *fanout) onHedge() {
	var more []send
	f.mu.Lock()
	if !f.closed && f.ctx.Err() == nil {
		for i := range f.slots {
			if s := &f.slots[i]; !s.done && !s.hedged {
				s.hedged = true
				more, _ = f.standIn(more, s)
			}
		}
	}
	f.mu.Unlock()
	f.issue(more)
}

// missed handles a replica that neither the write nor any fallback reached:
// this node keeps the hint itself. It does not count toward W (this node
// already does), but the replica gets the write when it is back.
func (c *Coordinator) missed(s *slot, key []byte, o replica.Object, err error) {
	if s.target != c.opts.Self && c.local.Hint(s.target, key, o) == nil {
		c.log.Debug("kept the hint locally", "target", s.target, "key", string(key))
		return
	}
	c.log.Warn("write missed a replica", "target", s.target, "key", string(key), "err", err)
}

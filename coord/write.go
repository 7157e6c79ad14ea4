package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dynakv/dynakv/replica"
)

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
	return c.WriteIn(ctx, nil, key, op)
}

// WriteIn is Write for a request a pipeline runs in line (see
// Pipelined): its local write's durability, and its quorum, may be left to
// the pipeline to wait for.
func (c *Coordinator) WriteIn(ctx context.Context, pl *Pipelined, key []byte, op Op) (Result, error) {
	p, err := c.replicas(key)
	if err != nil {
		return Result{}, err
	}
	if _, err := c.quorum(op.W, c.opts.W, len(p.primaries), "W"); err != nil {
		return Result{}, err
	}
	if g := pl.group(); g.holds(p) {
		return c.coordinate(ctx, pl, key, op, p, g.fallback)
	}
	if !op.decides() && slices.Contains(p.primaries, c.opts.Self) {
		return c.coordinate(ctx, pl, key, op, p, false)
	}
	deadline := time.Now().Add(c.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	op.Deadline = deadline.UnixMilli()
	// A primary that forwards a write (one that decides on the value goes
	// to the first healthy primary) takes back what it stored: a client's
	// next blind write through this node must supersede it, not become
	// its sibling.
	op.ReturnObject = slices.Contains(p.primaries, c.opts.Self)
	var lastErr error
	for _, node := range p.primaries {
		if !c.healthy(node) {
			continue
		}
		if node == c.opts.Self {
			return c.coordinate(ctx, pl, key, op, p, false)
		}
		if q := pl.quorums(); q != nil {
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
			if op.ReturnObject && res.Written && !res.Object.Empty() {
				if _, merr := c.local.Merge(key, res.Object); merr != nil {
					c.log.Warn("keeping a forwarded write's object", "key", string(key), "err", merr)
				}
			}
			return res, err
		}
		lastErr = err
	}
	if q := pl.quorums(); q != nil {
		return Result{}, q.block()
	}
	c.log.Debug("no primary reachable; coordinating as a fallback", "key", string(key), "err", lastErr)
	return c.coordinate(ctx, pl, key, op, p, true)
}

// Leader returns the node that decides writes on key: its first healthy
// primary, "" when that is this node or when no primary is healthy (this
// node then stands in, as for a write). Transactions on a slot run there,
// so that they take turns.
func (c *Coordinator) Leader(key []byte) (string, error) {
	p, err := c.replicas(key)
	if err != nil {
		return "", err
	}
	for _, node := range p.primaries {
		if c.healthy(node) {
			if node == c.opts.Self {
				return "", nil
			}
			return node, nil
		}
	}
	return "", nil
}

// Holders counts the key's primaries that hold the write dot (their
// object's clock covers it; a hint held for a primary counts for it):
// WAIT answers one fewer, the copies beyond the one written first.
func (c *Coordinator) Holders(ctx context.Context, key []byte, dot replica.Dot) (int, error) {
	p, err := c.replicas(key)
	if err != nil {
		return 0, err
	}
	type answer struct {
		o   replica.Object
		err error
	}
	answers := make(chan answer, len(p.primaries))
	for _, node := range p.primaries {
		if node == c.opts.Self {
			o, err := c.local.ReadAt(p.pos, key)
			answers <- answer{o, err}
			continue
		}
		c.net.Read(ctx, node, key, func(o replica.Object, err error) { answers <- answer{o, err} })
	}
	n := 0
	for range p.primaries {
		if a := <-answers; a.err == nil && a.o.Clock.Covers(dot) {
			n++
		}
	}
	return n, nil
}

// Unresponsive notes that node did not answer a request in time (a
// forwarded transaction): like a primary that did not answer a forwarded
// write, it counts as failed for a while, and Leader passes it over.
func (c *Coordinator) Unresponsive(node string) { c.markFailed(node) }

// Coordinate runs op on key with this node as the coordinator: it decides
// op against its own object (after a quorum read when op depends on the
// current value), stores the result, sends it to the other replicas and
// waits for the write quorum. Forwarded writes arrive here.
func (c *Coordinator) Coordinate(ctx context.Context, key []byte, op Op) (Result, error) {
	p, err := c.replicas(key)
	if err != nil {
		return Result{}, err
	}
	return c.coordinate(ctx, nil, key, op, p, !slices.Contains(p.primaries, c.opts.Self))
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
	res, err := c.Coordinate(ctx, key, op)
	if !op.ReturnObject {
		res.Object = replica.Object{} // not sent back
	}
	return res, err
}

// LateForwards counts the forwarded writes dropped because they arrived
// after their sender had given up.
func (c *Coordinator) LateForwards() int64 { return c.lateForwards.Load() }

// coordinate runs op as a primary of the key, or, with asFallback, on a
// node that does not replicate the key: that one decides op against a
// quorum read, mints the version under the key's stand-in actor (it has no
// replica of the key holding its own earlier versions; see
// replica.Store.StandIn) and leaves the result as hints for the primaries.
func (c *Coordinator) coordinate(ctx context.Context, pl *Pipelined, key []byte, op Op, p prefs, asFallback bool) (Result, error) {
	need, err := c.quorum(op.W, c.opts.W, len(p.primaries), "W")
	if err != nil {
		return Result{}, err
	}
	if op.HasContext && !c.local.Vouches(op.Context) {
		return Result{}, fmt.Errorf("%w: it claims writes of %s that were never made", replica.ErrBadContext, c.opts.Self)
	}
	q := pl.quorums()
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
	if op.Removed, err = c.removal(ctx, key, op, p, seen); err != nil {
		return Result{}, err
	}
	var next replica.Object
	var res Result
	for {
		d := decisions.Get().(*decision)
		d.c, d.op, d.seen = c, op, seen
		switch {
		case asFallback:
			next, err = c.local.StandIn(p.pos, key, d.standIn)
		case pl.pending() != nil:
			next, err = c.local.UpdateDeferred(pl.pending(), p.pos, key, d.mutation)
		default:
			next, err = c.local.UpdateAt(ctx, p.pos, key, d.mutation)
		}
		res = d.res
		base := d.base
		d.c, d.op, d.seen, d.res, d.base = nil, Op{}, replica.Object{}, Result{}, replica.Object{} // hold on to nothing of this write
		decisions.Put(d)
		if !errors.Is(err, errRemovalNeeded) {
			break
		}
		// The local replica holds a container the write replaces: run it
		// again with the container's removal clock.
		if op.Removed, err = c.removal(ctx, key, op, p, base); err != nil {
			return Result{}, err
		}
	}
	if err != nil || !res.Written {
		return res, err
	}
	if g := pl.group(); g.holds(p) {
		g.add(key, next, need)
		return res, nil
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
	// base is what the write found when it stopped with errRemovalNeeded.
	base replica.Object
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
	if d.needsRemoval(cur) {
		return cur, false, errRemovalNeeded // before a dot is minted for nothing
	}
	dot, err := d.c.local.Mint()
	if err != nil {
		return cur, false, err
	}
	return d.decide(cur, dot)
}

// decide applies op with dot to the current object merged with what the
// read found.
func (d *decision) decide(cur replica.Object, dot replica.Dot) (replica.Object, bool, error) {
	if d.needsRemoval(cur) {
		return cur, false, errRemovalNeeded
	}
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

// errRemovalNeeded stops a write that replaces a container the local
// replica holds but whose removal clock the write does not carry yet;
// coordinate computes it and runs the write again.
var errRemovalNeeded = errors.New("coord: the write removes a container: its removal clock first")

// needsRemoval reports whether the write would replace a container found
// in cur without a removal clock (see removal), and keeps cur for it.
func (d *decision) needsRemoval(cur replica.Object) bool {
	if len(d.op.Removed) > 0 {
		return false
	}
	if removes, _ := d.op.removes(cur, d.c.Now()); !removes {
		return false
	}
	d.base = cur
	return true
}

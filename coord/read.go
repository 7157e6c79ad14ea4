package coord

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dynakv/dynakv/replica"
)

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
	return c.GetIn(ctx, nil, key, r)
}

// GetIn is Get for a request a pipeline runs in line (see Pipelined): it
// takes the answer of a read started ahead for key, or refuses with
// ErrWouldBlock when the pipeline defers quorums.
func (c *Coordinator) GetIn(ctx context.Context, pl *Pipelined, key []byte, r int) (replica.Object, error) {
	if pl != nil {
		if rd := pl.Read; rd != nil && r == 0 && !rd.taken && string(rd.key) == string(key) && !c.place.Legacy() {
			rd.taken = true
			o, err := rd.wait(ctx)
			c.countSiblings(o, err)
			return o, err
		}
		if q := pl.quorums(); q != nil {
			return replica.Object{}, q.block()
		}
	}
	p, err := c.replicas(key)
	if err != nil {
		return replica.Object{}, err
	}
	return c.read(ctx, key, p, r)
}

// Observe reads key at quorum and returns once W of its replicas hold
// what the read found (it writes the merged object back where it was
// missing): any read made after it, through any node, then sees at least
// that version. WATCH observes what it watches: a write still on its way
// to the replicas, seen on one of them by WATCH's read, would otherwise
// be missing from the next read of two others (a client's GET), and the
// client would compute from a value older than the version EXEC checks.
func (c *Coordinator) Observe(ctx context.Context, key []byte) (replica.Object, error) {
	p, err := c.replicas(key)
	if err != nil {
		return replica.Object{}, err
	}
	need, err := c.quorum(0, c.opts.W, len(p.primaries), "W")
	if err != nil {
		return replica.Object{}, err
	}
	o, err := c.read(ctx, key, p, 0)
	if err != nil || o.Empty() {
		return o, err
	}
	if slices.Contains(p.primaries, c.opts.Self) {
		if _, err := c.local.Merge(key, o); err != nil {
			return replica.Object{}, err
		}
	}
	return o, c.replicate(ctx, key, o, p, need)
}

// read is Get of a key placed already.
func (c *Coordinator) read(ctx context.Context, key []byte, p prefs, r int) (replica.Object, error) {
	o, err := c.get(ctx, key, p, r)
	if err == nil && c.place.Legacy() {
		o, err = c.readLegacy(ctx, key, p, r, o)
	}
	c.countSiblings(o, err)
	return o, err
}

// readLegacy completes a read while keys may still sit on the replicas of
// their legacy positions (Placement.Legacy): it reads those at the same
// quorum and merges their answer into o, and repairs the key's replicas
// with what only the legacy ones held. Nothing is lost to a read during
// the move; it costs a second quorum read.
func (c *Coordinator) readLegacy(ctx context.Context, key []byte, p prefs, r int, o replica.Object) (replica.Object, error) {
	primaries, _, _ := c.place.Preference(replica.LegacyPosition(key))
	if slices.Equal(primaries, p.primaries) {
		return o, nil
	}
	// The stores keep the key at its position whatever placement found it:
	// pos stays, only the nodes asked change. No fallbacks and no repair:
	// the legacy replicas are not the key's.
	old, err := c.get(ctx, key, prefs{pos: p.pos, primaries: primaries, noRepair: true}, r)
	if err != nil {
		return replica.Object{}, err
	}
	merged := replica.Sync(o, old)
	if !merged.Equal(o) {
		c.background.Add(1)
		go func() {
			defer c.background.Done()
			rctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
			defer cancel()
			c.repair(rctx, key, merged, p.primaries)
		}()
	}
	return merged, nil
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
	need   int // R
	spare  standIns
	// noRepair leaves stale answers as they are: the nodes asked are not
	// the key's replicas (legacy placement).
	noRepair bool
	result   chan error // nil once R answered, sent once
	timer    *time.Timer

	mu       sync.Mutex
	got      []reply
	asked    int
	slots    []readSlot     // the primaries asked; allocated once, never grown
	ok       int            // answers counted toward R
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
	g := &gather{c: c, key: key, pos: p.pos, need: need, spare: c.standIns(p), noRepair: p.noRepair, result: make(chan error, 1),
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
	// This replica answers first, so that its answer is always among the
	// R merged: it holds what this node wrote, which a group (a
	// transaction's writes) has sent nowhere yet.
	if i := slices.IndexFunc(first, func(a ask) bool { return a.node == c.opts.Self }); i > 0 {
		first[0], first[i] = first[i], first[0]
	}
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
	if g.votes().result() == voteWon {
		g.report(nil)
	}
}

// votes is the read's tally toward R; g.mu is held. Open are the asks
// still out, each of which may yet count (or, failing, have a fallback
// asked that may), and the fallbacks that answered beside a primary still
// out, which count if it fails.
func (g *gather) votes() tally {
	open := g.asked - len(g.got)
	for i := range g.slots {
		if s := &g.slots[i]; s.hedgeOK && !s.answered && !s.failed {
			open++
		}
	}
	return tally{need: g.need, acks: g.ok, open: open}
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
	if !g.reported && g.votes().result() == voteLost {
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
	if len(stale) == 0 || g.noRepair {
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

func firstErr(rs []reply) error {
	for _, r := range rs {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

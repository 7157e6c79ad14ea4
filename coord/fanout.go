package coord

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dynakv/dynakv/replica"
)

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
	c   *Coordinator
	key []byte
	o   replica.Object
	// objs, when set, are the objects of a write of several keys (a
	// Group's), sent in one request and kept as hints together; key is
	// then the first of them, o unused.
	objs  []replica.KeyObject
	enc   []byte  // o encoded once for every replica
	ctx   sendCtx // the sends': the timeout, not the caller's cancellation
	spare standIns
	slots []slot        // allocated once, never grown: sends point into it
	ready chan struct{} // closed once err holds the quorum's outcome
	err   error
	hedge *time.Timer
	// slotBuf backs slots when they fit, one allocation with the fanout.
	slotBuf [3]slot

	mu sync.Mutex
	// votes counts toward W: acknowledgements are the primaries that have
	// the write (this node included) and the fallbacks keeping a hint for
	// one; open are the primaries not yet reached, nor given up on. With
	// spread set, acknowledgements count once per zone holding a copy.
	votes    tally
	spread   bool
	ackZones map[string]bool
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
	return c.fanOutAll(ctx, key, o, nil, p, need)
}

// fanOutAll is fanOut of o, or with objs of every object of objs (key
// the first one's) as one write.
func (c *Coordinator) fanOutAll(ctx context.Context, key []byte, o replica.Object, objs []replica.KeyObject, p prefs, need int) *fanout {
	if len(p.joining) == 0 && len(p.primaries) == 1 && p.primaries[0] == c.opts.Self {
		return nil // the only replica, and it has the write
	}
	f := &fanout{c: c, key: key, o: o, objs: objs, votes: tally{need: need}, spare: c.standIns(p), spread: c.place.SpreadAcks()}
	if n := len(p.primaries) + len(p.joining); n <= len(f.slotBuf) {
		f.slots = f.slotBuf[:0]
	} else {
		f.slots = make([]slot, 0, n)
	}
	for _, target := range p.primaries {
		if target == c.opts.Self {
			f.ack(target)
			continue
		}
		f.slots = append(f.slots, slot{target: target, counts: true})
		f.votes.open++
	}
	for _, target := range p.joining {
		if target != c.opts.Self {
			f.slots = append(f.slots, slot{target: target})
		}
	}
	if f.votes.result() == voteWon && len(f.slots) == 0 {
		return nil
	}
	if objs == nil {
		f.enc = replica.AppendObject(nil, o)
	}
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
	if f.votes.result() == voteWon {
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

// ack counts node's copy of the write toward W: once per node, or, when
// acknowledgements must spread, once per zone. f.mu is held (or the
// fanout is not yet shared).
func (f *fanout) ack(node string) {
	if !f.spread {
		f.votes.acks++
		return
	}
	z := f.c.place.Zone(node)
	if f.ackZones == nil {
		f.ackZones = map[string]bool{}
	}
	if !f.ackZones[z] {
		f.ackZones[z] = true
		f.votes.acks++
	}
}

// standIn queues a send of s to the next fallback, as a hint; false if
// none is left. A fallback of the slot's zone goes first when copies
// must spread across zones. f.mu is held.
func (f *fanout) standIn(sends []send, s *slot) ([]send, bool) {
	zone := ""
	if f.spread {
		zone = f.c.place.Zone(s.target)
	}
	h, ok := f.spare.nextIn(zone)
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
		switch {
		case x.holder == c.opts.Self:
			done(f.hintHere(x.slot.target))
		case f.objs != nil && x.holder == x.slot.target:
			c.net.MergeAll(&f.ctx, x.holder, f.objs, done)
		case f.objs != nil:
			c.net.HintAll(&f.ctx, x.holder, x.slot.target, f.objs, done)
		case x.holder == x.slot.target:
			c.net.Merge(&f.ctx, x.holder, f.key, f.enc, done)
		default:
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
				f.ack(x.holder)
				f.votes.open--
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
						f.votes.open--
					}
				}
			}
		}
		switch f.votes.result() {
		case voteWon:
			f.report(nil)
		case voteLost:
			f.report(fmt.Errorf("%w: %d of %d replicas acknowledged the write (%v)", ErrUnavailable, f.votes.acks, f.votes.need, err))
		}
	}
	f.mu.Unlock()
	if missed {
		f.missed(s, err)
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
			f.report(fmt.Errorf("%w: %d of %d replicas acknowledged the write within %s (%v)", ErrUnavailable, f.votes.acks, f.votes.need, f.c.opts.Timeout, f.lastErr))
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

// hintHere keeps the write as a hint for target on this node.
func (f *fanout) hintHere(target string) error {
	if f.objs != nil {
		return f.c.local.HintAll(target, f.objs)
	}
	return f.c.local.Hint(target, f.key, f.o)
}

// missed handles a replica that neither the write nor any fallback reached:
// this node keeps the hint itself. It does not count toward W (this node
// already does), but the replica gets the write when it is back.
func (f *fanout) missed(s *slot, err error) {
	c := f.c
	if s.target != c.opts.Self && f.hintHere(s.target) == nil {
		c.log.Debug("kept the hint locally", "target", s.target, "key", string(f.key))
		return
	}
	c.log.Warn("write missed a replica", "target", s.target, "key", string(f.key), "err", err)
}

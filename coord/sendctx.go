package coord

import (
	"context"
	"sync"
	"time"
)

// sendCtx is the context a write's sends to its replicas run under: the
// write's values, none of its caller's cancellation (a send outlives the
// caller, who waits only for the quorum), and the write's deadline. It is
// context.WithTimeout(context.WithoutCancel(ctx), timeout) without the
// three allocations and the timer those make for every write: it lives in
// the fanout, Err reads the clock, and the Done channel, which a send asks
// for only while a peer's queue is full, is made with its timer on demand.
type sendCtx struct {
	values   context.Context
	deadline time.Time

	mu    sync.Mutex
	done  chan struct{}
	timer *time.Timer
}

// Deadline implements context.Context.
func (c *sendCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context: closed at the deadline.
func (c *sendCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		done := make(chan struct{})
		c.done = done
		c.timer = time.AfterFunc(time.Until(c.deadline), func() { close(done) })
	}
	return c.done
}

// Err implements context.Context. Once Done is closed it is
// context.DeadlineExceeded; it may say so a moment before the timer has
// closed Done, never after.
func (c *sendCtx) Err() error {
	if time.Now().Before(c.deadline) {
		return nil
	}
	return context.DeadlineExceeded
}

// Value implements context.Context with the write's values.
func (c *sendCtx) Value(key any) any { return c.values.Value(key) }

// stop releases the timer of a Done channel, if one was asked for, once
// no send is left.
func (c *sendCtx) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
}

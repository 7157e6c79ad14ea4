package coord

import (
	"context"
	"errors"
	"sync"

	"github.com/dynakv/dynakv/replica"
)

// ErrWouldBlock is what the coordinator answers, for a request with
// Pipelined.Quorums set, when it cannot start the request without waiting
// on another node: a read, a write that decides on a quorum read, a write
// it must forward. Nothing has been done; the caller runs the request
// again without deferring its quorum.
var ErrWouldBlock = errors.New("coord: the request would wait on other nodes")

// Pipelined is what a client's pipeline lends a request it runs in line,
// on its own goroutine, instead of one request at a time: GetIn and
// WriteIn take it as a parameter (nil: a plain request). Its zero value
// defers nothing.
type Pipelined struct {
	// Pending, when set, takes the wait for the durability of the
	// request's local write: the pipeline waits once, for all of them.
	Pending *replica.Pending
	// Quorums, when set, takes the wait for a write's quorum, and makes a
	// request that would wait on another node before it is applied fail
	// with ErrWouldBlock instead.
	Quorums *Quorums
	// Read is a read of the request's key started ahead (Prefetch): a Get
	// of that key at the configured R takes its answer, once.
	Read *Read
	// Group, when set, collects the request's writes to its slot, to be
	// sent to the other replicas together (see Group); the writes are
	// coordinated here.
	Group *Group
}

// group returns pl's Group; nil for a plain request.
func (pl *Pipelined) group() *Group {
	if pl == nil {
		return nil
	}
	return pl.Group
}

// quorums returns pl's Quorums; nil for a plain request.
func (pl *Pipelined) quorums() *Quorums {
	if pl == nil {
		return nil
	}
	return pl.Quorums
}

// Block is for a request that is about to wait on other nodes: with
// Quorums set it answers ErrWouldBlock, which Blocked then reports, and
// the request is to be run again without deferring; otherwise nil.
func (pl *Pipelined) Block() error {
	if q := pl.quorums(); q != nil {
		return q.block()
	}
	return nil
}

// pending returns pl's Pending; nil for a plain request.
func (pl *Pipelined) pending() *replica.Pending {
	if pl == nil {
		return nil
	}
	return pl.Pending
}

// Quorums holds the writes of a client's pipeline whose quorum is still to
// be waited for. With Pipelined.Quorums set, a write that this node
// coordinates without reading first (SET, DPUT) is decided and applied in
// line, its replicas are sent it, and instead of waiting for W the write
// is added here: the pipeline runs such writes one after another on its
// own goroutine, each fanning out at once, and waits for all their quorums
// together before it answers. That spares a goroutine, a wake-up and a
// park per write, and the peers get the writes in larger batches.
//
// A Quorums belongs to one pipeline at a time; its zero value is ready.
type Quorums struct {
	mu      sync.Mutex
	waits   []*fanout
	errs    []error
	blocked bool
}

// block notes that a request refused to wait, for Blocked.
func (q *Quorums) block() error {
	q.mu.Lock()
	q.blocked = true
	q.mu.Unlock()
	return ErrWouldBlock
}

// Blocked reports whether a request returned ErrWouldBlock since the last
// call, and forgets it. A caller that does not look at the request's error
// itself (the front end runs command handlers, which only render it)
// learns so that the request is to be run again.
func (q *Quorums) Blocked() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.blocked
	q.blocked = false
	return b
}

func (q *Quorums) add(f *fanout) {
	q.mu.Lock()
	q.waits = append(q.waits, f)
	q.mu.Unlock()
}

// Len is how many writes are waiting for their quorum; the write added
// next gets this index in what Wait returns.
func (q *Quorums) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waits)
}

// Wait waits for every write added so far to meet its quorum, or fail, or
// for ctx to end, and returns their outcomes in the order they were added.
// q is empty afterwards; the slice is valid until the next Wait.
func (q *Quorums) Wait(ctx context.Context) []error {
	q.mu.Lock()
	waits := q.waits
	q.waits = nil
	q.mu.Unlock()
	q.errs = q.errs[:0]
	for i, f := range waits {
		q.errs = append(q.errs, f.wait(ctx))
		waits[i] = nil
	}
	q.mu.Lock()
	if q.waits == nil {
		q.waits = waits[:0] // reuse the array unless a write came in meanwhile
	}
	q.mu.Unlock()
	return q.errs
}

// Read is a read started ahead of the command that takes its answer: a
// pipeline starts the reads of its commands as it comes to them, and runs
// the commands afterwards, each then finding its answer arrived or on its
// way, instead of each waiting on a goroutine of its own.
type Read struct {
	key   []byte
	g     *gather // nil: answered when started (o, err)
	o     replica.Object
	err   error
	taken bool
}

// Prefetch starts reading key at the configured R. A GetIn of key at R 0
// with rd as its Pipelined.Read takes rd's answer instead of reading
// again.
func (c *Coordinator) Prefetch(ctx context.Context, key []byte) *Read {
	rd := &Read{key: key}
	p, err := c.replicas(key)
	if err != nil {
		rd.err = err
		return rd
	}
	rd.g, rd.o, rd.err = c.startGet(ctx, key, p, 0)
	return rd
}

func (rd *Read) wait(ctx context.Context) (replica.Object, error) {
	if rd.g == nil {
		return rd.o, rd.err
	}
	return rd.g.wait(ctx)
}

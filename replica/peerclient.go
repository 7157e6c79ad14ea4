package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of the peer client.
var (
	// ErrPeerClosed is returned by a closed Peers.
	ErrPeerClosed = errors.New("replica: peer client closed")
	// ErrUnexpectedReply is a peer reply of the wrong shape.
	ErrUnexpectedReply = errors.New("replica: unexpected peer reply")
	// ErrNotSent wraps the failure of a request that provably never left
	// this node: no connection could be made, the client was closed, or
	// the request's time ran out while it was still queued. Only such a
	// request may be tried on another node; one that may have been
	// written may also have been run.
	ErrNotSent = errors.New("replica: request not sent")
)

// notSent marks err as a failure before the request was written.
func notSent(err error) error { return fmt.Errorf("%w: %w", ErrNotSent, err) }

// sendFailure classifies the error of a pipeline: a failure to dial means
// nothing was written.
func sendFailure(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return notSent(err)
	}
	return err
}

// Peer client tuning.
const (
	// peerWorkers is how many pipelines are in flight per peer. Fewer
	// means bigger pipelines: requests queue while one is out, and go in
	// the next as one write and one read, on this node and on the peer.
	// Two keep one pipeline filling while the other is answered; against
	// four they gave a 3-node cluster about 10% more SETs per second, at
	// -P 1 and -P 16, and a lower p99 (bench/compare.sh's load).
	peerWorkers     = 2
	peerMaxBatch    = 256 // requests per pipeline
	peerPipeTimeout = 10 * time.Second
)

// Peers is the peer-protocol client: a go-redis pool per peer address and a
// batcher that sends whatever requests are queued for a peer as one
// pipeline, so that concurrent requests share round trips.
type Peers struct {
	secret string
	log    *slog.Logger
	source net.IP // the local address connections leave from; nil: the system's choice

	mu struct {
		sync.Mutex
		peers  map[string]*peer
		closed bool
	}
}

type peer struct {
	rdb   *redis.Client
	queue chan *peerCall
	stop  chan struct{}
	wg    sync.WaitGroup
	// gate is held shared while a call is queued and exclusively by close,
	// so that no call is queued after close drained the queue.
	gate   sync.RWMutex
	closed bool
}

// peerCall is one queued request; done (or, for a call whose reply is
// only OK or an error, doneErr) receives its reply once, on the batcher's
// goroutine. The arguments live in the call, one allocation with it: the
// hot calls (GoGet, GoMerge, GoHint) keep theirs in the typed fields and
// put pointers to them in argv, which box into an interface without an
// allocation where a slice or a string would need one each.
type peerCall struct {
	ctx      context.Context
	argv     [4]any
	args     []any
	key, enc bulk
	target   string
	done     func(val any, err error)
	doneErr  func(err error)
}

// bulk is a []byte argument that go-redis writes through MarshalBinary
// (see peerCall).
type bulk []byte

// MarshalBinary implements encoding.BinaryMarshaler.
func (b *bulk) MarshalBinary() ([]byte, error) { return *b, nil }

// finish hands the call its reply.
func (c *peerCall) finish(val any, err error) {
	if c.doneErr != nil {
		c.doneErr(err)
		return
	}
	c.done(val, err)
}

// BindSource makes connections to peers leave from ip, the address this
// node serves on, so that peers and firewalls see the node's own address
// on a multi-homed host. A nil or unspecified ip leaves the choice to the
// system. Call it before the first request.
func (p *Peers) BindSource(ip net.IP) {
	if ip != nil && !ip.IsUnspecified() {
		p.source = ip
	}
}

// NewPeers returns a peer client; secret is sent with AUTH when set.
func NewPeers(secret string, log *slog.Logger) *Peers {
	if log == nil {
		log = slog.Default()
	}
	p := &Peers{secret: secret, log: log}
	p.mu.peers = map[string]*peer{}
	return p
}

func (p *Peers) peer(addr string) (*peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, ErrPeerClosed
	}
	if pr := p.mu.peers[addr]; pr != nil {
		return pr, nil
	}
	opts := &redis.Options{
		Addr: addr, Protocol: 2, DisableIdentity: true, Password: p.secret,
		PoolSize: peerWorkers + 1, MaxRetries: -1,
		DialTimeout: time.Second, ContextTimeoutEnabled: true,
		// One dial per request: go-redis would otherwise dial a refusing
		// peer five times with backoff (0.8 s), most of a request's time,
		// before reporting what a write's forwarder must know at once:
		// that the peer is gone and the request was not sent.
		DialerRetries: 1,
	}
	if p.source != nil {
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: p.source}}
		opts.Dialer = d.DialContext
	}
	pr := &peer{
		rdb:   redis.NewClient(opts),
		queue: make(chan *peerCall, 4*peerMaxBatch),
		stop:  make(chan struct{}),
	}
	for range peerWorkers {
		pr.wg.Add(1)
		go pr.batch()
	}
	p.mu.peers[addr] = pr
	return pr, nil
}

// batch is one of a peer's pipeline workers: it takes the first queued
// call, everything queued behind it, and sends them as one pipeline.
func (pr *peer) batch() {
	defer pr.wg.Done()
	for {
		var first *peerCall
		select {
		case <-pr.stop:
			return
		case first = <-pr.queue:
		}
		calls := []*peerCall{first}
	fill:
		for len(calls) < peerMaxBatch {
			select {
			case c := <-pr.queue:
				calls = append(calls, c)
			default:
				break fill
			}
		}
		pr.send(calls)
	}
}

func (pr *peer) send(calls []*peerCall) {
	deadline := time.Now().Add(peerPipeTimeout)
	live := calls[:0:0]
	for _, c := range calls {
		if err := c.ctx.Err(); err != nil {
			c.finish(nil, notSent(err))
			continue
		}
		if d, ok := c.ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	pipe := pr.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(live))
	for i, c := range live {
		cmds[i] = pipe.Do(ctx, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range live {
		v, err := cmds[i].Result()
		c.finish(v, sendFailure(err))
	}
}

// Go queues one command for the peer at addr and returns; done is called
// once with the reply as go-redis parses it, on another goroutine, or on
// this one when the command cannot be queued. A write that fans out to
// several replicas sends this way rather than with a goroutine per
// replica waiting in Do.
func (p *Peers) Go(ctx context.Context, addr string, done func(val any, err error), args ...any) {
	c := &peerCall{ctx: ctx, done: done}
	if len(args) <= len(c.argv) {
		c.args = append(c.argv[:0], args...)
	} else {
		c.args = slices.Clone(args)
	}
	p.enqueue(addr, c)
}

// enqueue queues c, its arguments set, for the peer at addr, or finishes
// it with the reason it cannot be queued.
func (p *Peers) enqueue(addr string, c *peerCall) {
	pr, err := p.peer(addr)
	if err != nil {
		c.finish(nil, notSent(err))
		return
	}
	pr.gate.RLock()
	if pr.closed {
		pr.gate.RUnlock()
		c.finish(nil, notSent(ErrPeerClosed))
		return
	}
	select {
	case pr.queue <- c: // without asking ctx for its Done channel, which allocates
		pr.gate.RUnlock()
		return
	default:
	}
	select {
	case pr.queue <- c:
		pr.gate.RUnlock()
	case <-c.ctx.Done():
		pr.gate.RUnlock()
		c.finish(nil, notSent(c.ctx.Err()))
	}
}

// close stops the batchers and fails the calls still queued, so that every
// call's done runs.
func (pr *peer) close() error {
	pr.gate.Lock()
	pr.closed = true
	pr.gate.Unlock()
	close(pr.stop)
	pr.wg.Wait()
	for {
		select {
		case c := <-pr.queue:
			c.finish(nil, notSent(ErrPeerClosed))
		default:
			return pr.rdb.Close()
		}
	}
}

// Do sends one command to the peer at addr and returns its reply as go-redis
// parses it. It returns when the reply arrives or ctx ends.
func (p *Peers) Do(ctx context.Context, addr string, args ...any) (any, error) {
	type reply struct {
		val any
		err error
	}
	ch := make(chan reply, 1)
	p.Go(ctx, addr, func(val any, err error) { ch <- reply{val, err} }, args...)
	select {
	case r := <-ch:
		return r.val, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Get reads key's object from the peer at addr.
func (p *Peers) Get(ctx context.Context, addr string, key []byte) (Object, error) {
	v, err := p.Do(ctx, addr, CmdGet, key)
	return getReply(v, err)
}

// GoGet is Get without the wait: done learns the outcome (see Go).
func (p *Peers) GoGet(ctx context.Context, addr string, key []byte, done func(Object, error)) {
	c := &peerCall{ctx: ctx, done: func(v any, err error) { done(getReply(v, err)) }, key: key}
	c.args = append(c.argv[:0], CmdGet, &c.key)
	p.enqueue(addr, c)
}

// getReply decodes a peer's answer to CmdGet.
func getReply(v any, err error) (Object, error) {
	if err != nil {
		return Object{}, err
	}
	s, ok := v.(string)
	if !ok {
		return Object{}, fmt.Errorf("%w to %s: %T", ErrUnexpectedReply, CmdGet, v)
	}
	if s == "" {
		return Object{}, nil
	}
	return DecodeObject([]byte(s))
}

// Merge sends key's object to the peer at addr to be merged and stored; it
// returns once the peer has stored it durably.
func (p *Peers) Merge(ctx context.Context, addr string, key []byte, o Object) error {
	_, err := p.Do(ctx, addr, CmdMerge, key, AppendObject(nil, o))
	return err
}

// GoMerge is Merge of an encoded object (AppendObject's, which a write
// makes once for all its replicas) without the wait: done learns the
// outcome (see Go).
func (p *Peers) GoMerge(ctx context.Context, addr string, key, enc []byte, done func(error)) {
	c := &peerCall{ctx: ctx, doneErr: done, key: key, enc: enc}
	c.args = append(c.argv[:0], CmdMerge, &c.key, &c.enc)
	p.enqueue(addr, c)
}

// Hint has the peer at addr keep o as a hint for target; it returns once
// the hint is stored durably.
func (p *Peers) Hint(ctx context.Context, addr, target string, key []byte, o Object) error {
	_, err := p.Do(ctx, addr, CmdHint, target, key, AppendObject(nil, o))
	return err
}

// GoHint is Hint of an encoded object without the wait, as GoMerge.
func (p *Peers) GoHint(ctx context.Context, addr, target string, key, enc []byte, done func(error)) {
	c := &peerCall{ctx: ctx, doneErr: done, key: key, enc: enc, target: target}
	c.args = append(c.argv[:0], CmdHint, &c.target, &c.key, &c.enc)
	p.enqueue(addr, c)
}

// Count returns the live and expiring keys the peer at addr holds in each
// of parts, partitions of a ring of q.
func (p *Peers) Count(ctx context.Context, addr string, q int, parts []int) (keys, expiring []int64, err error) {
	args := []any{CmdCount, strconv.Itoa(q)}
	for _, part := range parts {
		args = append(args, strconv.Itoa(part))
	}
	v, err := p.Do(ctx, addr, args...)
	if err != nil {
		return nil, nil, err
	}
	s, ok := v.(string)
	if !ok {
		return nil, nil, fmt.Errorf("%w to %s", ErrUnexpectedReply, CmdCount)
	}
	d := NewReader([]byte(s))
	for range parts {
		keys = append(keys, d.Varint())
		expiring = append(expiring, d.Varint())
	}
	if d.Failed() || len(d.Rest()) != 0 {
		return nil, nil, fmt.Errorf("%w to %s", ErrUnexpectedReply, CmdCount)
	}
	return keys, expiring, nil
}

// Flush has the peer at addr apply a FLUSHALL made at t (ms).
func (p *Peers) Flush(ctx context.Context, addr string, t int64) error {
	_, err := p.Do(ctx, addr, CmdFlush, strconv.FormatInt(t, 10))
	return err
}

// Range reads up to limit objects with positions in [from, to) after the
// key after from the peer at addr.
func (p *Peers) Range(ctx context.Context, addr string, from, to uint64, after []byte, limit int) ([]KeyObject, error) {
	var f, t [8]byte
	binary.BigEndian.PutUint64(f[:], from)
	binary.BigEndian.PutUint64(t[:], to)
	if after == nil {
		after = []byte{}
	}
	v, err := p.Do(ctx, addr, CmdRange, f[:], t[:], after, strconv.Itoa(limit))
	if err != nil {
		return nil, err
	}
	items, ok := v.([]any)
	if !ok || len(items)%2 != 0 {
		return nil, fmt.Errorf("%w to %s", ErrUnexpectedReply, CmdRange)
	}
	out := make([]KeyObject, 0, len(items)/2)
	for i := 0; i < len(items); i += 2 {
		k, ok1 := items[i].(string)
		ob, ok2 := items[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w to %s", ErrUnexpectedReply, CmdRange)
		}
		o, err := DecodeObject([]byte(ob))
		if err != nil {
			return nil, err
		}
		out = append(out, KeyObject{[]byte(k), o})
	}
	return out, nil
}

// Close stops every batcher and closes the pools.
func (p *Peers) Close() error {
	p.mu.Lock()
	p.mu.closed = true
	peers := p.mu.peers
	p.mu.peers = nil
	p.mu.Unlock()
	var errs []error
	for _, pr := range peers {
		errs = append(errs, pr.close())
	}
	return errors.Join(errs...)
}

package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dynakv/dynakv/replica"
	"github.com/redis/go-redis/v9"
)

// Client tuning.
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
	// peerLongCalls bounds the long calls (Exec) to one peer at once.
	peerLongCalls = 32
)

// Client is the peer-protocol client: a go-redis pool per peer address and
// a batcher that sends whatever requests are queued for a peer as one
// pipeline, so that concurrent requests share round trips. Every method
// returns its failure classified (see ErrUnreachable and Error).
type Client struct {
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
	rdb *redis.Client
	// long carries the calls that may take seconds (a forwarded
	// transaction or script), each on a connection of its own, so that
	// they never hold up the batched pipelines behind them.
	long  *redis.Client
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
// goroutine, with its error classified. The arguments live in the call, one allocation with it: the
// hot calls (GoGet, GoMerge, GoHint) keep theirs in the typed fields and
// put pointers to them in argv, which box into an interface without an
// allocation where a slice or a string would need one each.
type peerCall struct {
	ctx      context.Context
	argv     [4]any
	args     []any
	key, enc bulk
	target   string
	addr     string
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
	err = classify(c.addr, err)
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
func (p *Client) BindSource(ip net.IP) {
	if ip != nil && !ip.IsUnspecified() {
		p.source = ip
	}
}

// NewClient returns a peer client; secret is sent with AUTH when set.
func NewClient(secret string, log *slog.Logger) *Client {
	if log == nil {
		log = slog.Default()
	}
	p := &Client{secret: secret, log: log}
	p.mu.peers = map[string]*peer{}
	return p
}

func (p *Client) peer(addr string) (*peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, ErrClosed
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
	longOpts := *opts
	longOpts.PoolSize = peerLongCalls
	// A long call's reply may take longer than go-redis's 3 s default:
	// only its context bounds the wait.
	longOpts.ReadTimeout = -1
	pr := &peer{
		rdb:   redis.NewClient(opts),
		long:  redis.NewClient(&longOpts),
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
		c.finish(cmds[i].Result())
	}
}

// goCall queues one command for the peer at addr and returns; done is
// called once with the reply as go-redis parses it, on another goroutine,
// or on this one when the command cannot be queued. A write that fans out
// to several replicas sends this way rather than with a goroutine per
// replica waiting in call.
func (p *Client) goCall(ctx context.Context, addr string, done func(val any, err error), args ...any) {
	c := &peerCall{ctx: ctx, addr: addr, done: done}
	if len(args) <= len(c.argv) {
		c.args = append(c.argv[:0], args...)
	} else {
		c.args = slices.Clone(args)
	}
	p.enqueue(addr, c)
}

// enqueue queues c, its arguments set, for the peer at addr, or finishes
// it with the reason it cannot be queued.
func (p *Client) enqueue(addr string, c *peerCall) {
	pr, err := p.peer(addr)
	if err != nil {
		c.finish(nil, notSent(err))
		return
	}
	pr.gate.RLock()
	if pr.closed {
		pr.gate.RUnlock()
		c.finish(nil, notSent(ErrClosed))
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
			c.finish(nil, notSent(ErrClosed))
		default:
			return errors.Join(pr.long.Close(), pr.rdb.Close())
		}
	}
}

// call sends one command to the peer at addr and returns its reply as
// go-redis parses it. It returns when the reply arrives or ctx ends.
func (p *Client) call(ctx context.Context, addr string, args ...any) (any, error) {
	type reply struct {
		val any
		err error
	}
	ch := make(chan reply, 1)
	p.goCall(ctx, addr, func(val any, err error) { ch <- reply{val, err} }, args...)
	select {
	case r := <-ch:
		return r.val, r.err
	case <-ctx.Done():
		return nil, classify(addr, ctx.Err())
	}
}

// bulk sends one command whose reply is a bulk string, and returns it.
func (p *Client) bulk(ctx context.Context, addr string, args ...any) ([]byte, error) {
	v, err := p.call(ctx, addr, args...)
	if err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%w to %v from %s: %T", ErrBadReply, args[0], addr, v)
	}
	return []byte(s), nil
}

// Get reads key's object from the peer at addr.
func (p *Client) Get(ctx context.Context, addr string, key []byte) (replica.Object, error) {
	v, err := p.call(ctx, addr, CmdGet, key)
	return getReply(v, err)
}

// GoGet is Get without the wait: done learns the outcome (see goCall).
func (p *Client) GoGet(ctx context.Context, addr string, key []byte, done func(replica.Object, error)) {
	c := &peerCall{ctx: ctx, addr: addr, done: func(v any, err error) { done(getReply(v, err)) }, key: key}
	c.args = append(c.argv[:0], CmdGet, &c.key)
	p.enqueue(addr, c)
}

// getReply decodes a peer's answer to CmdGet.
func getReply(v any, err error) (replica.Object, error) {
	if err != nil {
		return replica.Object{}, err
	}
	s, ok := v.(string)
	if !ok {
		return replica.Object{}, fmt.Errorf("%w to %s: %T", ErrBadReply, CmdGet, v)
	}
	return decodeGetReply(s)
}

// Merge sends key's object to the peer at addr to be merged and stored; it
// returns once the peer has stored it durably.
func (p *Client) Merge(ctx context.Context, addr string, key []byte, o replica.Object) error {
	_, err := p.call(ctx, addr, CmdMerge, key, replica.AppendObject(nil, o))
	return err
}

// GoMerge is Merge of an encoded object (AppendObject's, which a write
// makes once for all its replicas) without the wait: done learns the
// outcome (see goCall).
func (p *Client) GoMerge(ctx context.Context, addr string, key, enc []byte, done func(error)) {
	c := &peerCall{ctx: ctx, addr: addr, doneErr: done, key: key, enc: enc}
	c.args = append(c.argv[:0], CmdMerge, &c.key, &c.enc)
	p.enqueue(addr, c)
}

// GoMergeAll has the peer at addr merge every object of objs and store
// them in one batch, durably; done learns the outcome (see goCall). The
// objects of a write of several keys travel so, in one request.
func (p *Client) GoMergeAll(ctx context.Context, addr string, objs []replica.KeyObject, done func(error)) {
	p.goCall(ctx, addr, func(_ any, err error) { done(err) }, appendPairs([]any{CmdMerge}, objs)...)
}

// MergeAll is GoMergeAll that waits for the outcome.
func (p *Client) MergeAll(ctx context.Context, addr string, objs []replica.KeyObject) error {
	_, err := p.call(ctx, addr, appendPairs([]any{CmdMerge}, objs)...)
	return err
}

// GoHintAll has the peer at addr keep every object of objs as hints for
// target, in one batch; done as for GoMergeAll.
func (p *Client) GoHintAll(ctx context.Context, addr, target string, objs []replica.KeyObject, done func(error)) {
	p.goCall(ctx, addr, func(_ any, err error) { done(err) }, appendPairs([]any{CmdHint, target}, objs)...)
}

// appendPairs appends the key and encoded object of each of objs to args.
func appendPairs(args []any, objs []replica.KeyObject) []any {
	for _, ko := range objs {
		args = append(args, ko.Key, replica.AppendObject(nil, ko.Object))
	}
	return args
}

// Hint has the peer at addr keep o as a hint for target; it returns once
// the hint is stored durably.
func (p *Client) Hint(ctx context.Context, addr, target string, key []byte, o replica.Object) error {
	_, err := p.call(ctx, addr, CmdHint, target, key, replica.AppendObject(nil, o))
	return err
}

// GoHint is Hint of an encoded object without the wait, as GoMerge.
func (p *Client) GoHint(ctx context.Context, addr, target string, key, enc []byte, done func(error)) {
	c := &peerCall{ctx: ctx, addr: addr, doneErr: done, key: key, enc: enc, target: target}
	c.args = append(c.argv[:0], CmdHint, &c.target, &c.key, &c.enc)
	p.enqueue(addr, c)
}

// Count returns the live and expiring keys the peer at addr holds in each
// of parts, partitions of a ring of q.
func (p *Client) Count(ctx context.Context, addr string, q int, parts []int) (keys, expiring []int64, err error) {
	b, err := p.bulk(ctx, addr, encodeCount(q, parts)...)
	if err != nil {
		return nil, nil, err
	}
	return decodeCountReply(b, len(parts))
}

// Flush has the peer at addr apply a FLUSHALL made at t (ms).
func (p *Client) Flush(ctx context.Context, addr string, t int64) error {
	_, err := p.call(ctx, addr, CmdFlush, strconv.FormatInt(t, 10))
	return err
}

// Range reads up to limit objects with positions in [from, to) after the
// key after from the peer at addr.
func (p *Client) Range(ctx context.Context, addr string, from, to uint64, after []byte, limit int) ([]replica.KeyObject, error) {
	if after == nil {
		after = []byte{}
	}
	v, err := p.call(ctx, addr, CmdRange, encodePosition(from), encodePosition(to), after, strconv.Itoa(limit))
	if err != nil {
		return nil, err
	}
	return decodeRangeReply(v)
}

// Elements reads up to limit element objects whose names begin with
// prefix, after the name after, from the peer at addr.
func (p *Client) Elements(ctx context.Context, addr string, prefix, after []byte, limit int) ([]replica.KeyObject, error) {
	if after == nil {
		after = []byte{}
	}
	v, err := p.call(ctx, addr, CmdElements, prefix, after, strconv.Itoa(limit))
	if err != nil {
		return nil, err
	}
	return decodeRangeReply(v)
}

// ContainerClock reads the join of the element clocks the peer at addr
// holds for the container key (before > 0: of the element versions
// written before it).
func (p *Client) ContainerClock(ctx context.Context, addr string, key []byte, before int64) (replica.Clock, error) {
	b, err := p.bulk(ctx, addr, CmdContainerClock, key, strconv.FormatInt(before, 10))
	if err != nil {
		return nil, err
	}
	return replica.DecodeClock(b)
}

// Ping reports whether the peer at addr answers (PING).
func (p *Client) Ping(ctx context.Context, addr string) error {
	_, err := p.call(ctx, addr, CmdPing)
	return err
}

// Forward hands a write to the peer at addr to coordinate (CmdWrite) and
// returns its result; op and the result are in coord's encoding.
func (p *Client) Forward(ctx context.Context, addr string, key, op []byte) ([]byte, error) {
	return p.bulk(ctx, addr, CmdWrite, key, op)
}

// Exec hands a transaction to the peer at addr, its slot's leader
// (CmdExec), and returns the RESP reply of its EXEC. It may run for
// seconds (a script), so it goes on a connection of its own, not in a
// pipeline.
func (p *Client) Exec(ctx context.Context, addr string, tx []byte) ([]byte, error) {
	pr, err := p.peer(addr)
	if err != nil {
		return nil, notSent(err)
	}
	b, err := pr.long.Do(ctx, CmdExec, tx).Text()
	if err != nil {
		return nil, classify(addr, err)
	}
	return []byte(b), nil
}

// Publish hands a published message to the peer at addr (CmdPublish) and
// returns how many of its subscribers got it.
func (p *Client) Publish(ctx context.Context, addr string, channel, message []byte, sharded bool) (int64, error) {
	flag := "0"
	if sharded {
		flag = "1"
	}
	b, err := p.bulk(ctx, addr, CmdPublish, channel, message, flag)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w to %s from %s: %q", ErrBadReply, CmdPublish, addr, b)
	}
	return n, nil
}

// ServePublish returns the peer handler of CmdPublish over deliver (the
// front end's Deliver).
func ServePublish(deliver func(channel, message []byte, sharded bool) int64) Handler {
	return func(ctx context.Context, args [][]byte) ([]byte, error) {
		if len(args) != 4 {
			return nil, errArity
		}
		return strconv.AppendInt(nil, deliver(args[1], args[2], string(args[3]) == "1"), 10), nil
	}
}

// Ring reads the ring of the peer at addr (CmdRing), in gossip's encoding.
func (p *Client) Ring(ctx context.Context, addr string) ([]byte, error) {
	return p.bulk(ctx, addr, CmdRing)
}

// Change asks the claimant at addr for a ring change (CmdChange): kind is
// "leave" or "forget".
func (p *Client) Change(ctx context.Context, addr, kind, node string) error {
	_, err := p.call(ctx, addr, CmdChange, kind, node)
	return err
}

// Root asks the peer at addr for partition p's Merkle root (CmdRoot).
func (p *Client) Root(ctx context.Context, addr string, part int) ([]byte, error) {
	return p.bulk(ctx, addr, CmdRoot, strconv.Itoa(part))
}

// Children asks the peer at addr for the children of nodes at level of
// partition p's tree (CmdChildren).
func (p *Client) Children(ctx context.Context, addr string, part, level int, nodes []int) ([]byte, error) {
	return p.bulk(ctx, addr, append([]any{CmdChildren, strconv.Itoa(part), strconv.Itoa(level)}, itoas(nodes)...)...)
}

// Leaves asks the peer at addr for the (key, clock) lists of leaves of
// partition p's tree (CmdLeaves).
func (p *Client) Leaves(ctx context.Context, addr string, part int, leaves []int) ([]byte, error) {
	return p.bulk(ctx, addr, append([]any{CmdLeaves, strconv.Itoa(part)}, itoas(leaves)...)...)
}

func itoas(ns []int) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = strconv.Itoa(n)
	}
	return out
}

// Close stops every batcher and closes the pools.
func (p *Client) Close() error {
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

// Group asks the peer at addr for the elements under an element-name
// prefix of partition p (CmdGroup).
func (p *Client) Group(ctx context.Context, addr string, part int, prefix []byte) ([]byte, error) {
	return p.bulk(ctx, addr, CmdGroup, strconv.Itoa(part), prefix)
}

// Tally reads the peer's tally of the container key's elements of type
// typ (CmdTally).
func (p *Client) Tally(ctx context.Context, addr string, key []byte, typ byte) (replica.Tally, error) {
	b, err := p.bulk(ctx, addr, CmdTally, key, []byte{typ})
	if err != nil {
		return replica.Tally{}, err
	}
	var t replica.Tally
	if n, err := fmt.Sscanf(string(b), "%d %d %d", &t.Live, &t.Total, &t.Digest); err != nil || n != 3 {
		return replica.Tally{}, fmt.Errorf("%w to %s", ErrBadReply, CmdTally)
	}
	return t, nil
}

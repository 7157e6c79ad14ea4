package coord

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/dynakv/dynakv/replica"
	"github.com/redis/go-redis/v9"
)

// CmdWrite is the peer command that hands a write to a replica to
// coordinate: C.WRITE key op -> encoded result.
const CmdWrite = "C.WRITE"

// wireV2 is the forwarded write's format: version 2 added the deadline,
// the write's dot and what it superseded.
const wireV2 = 2

// Op flags on the wire.
const (
	opHasContext = 1 << iota
	opKeepTTL
	opPersist
	opWantOld
)

// Result codes on the wire: the coordinator's own errors travel inside the
// result, so that an error reply means the peer could not be asked.
const (
	resOK byte = iota
	resUnavailable
	resTooManySiblings
	resBadQuorum
	resBadContext
	resOther
)

// errBadWire is a forwarded op or result that does not decode.
var errBadWire = errors.New("coord: malformed forwarded write")

func encodeOp(op Op) []byte {
	b := []byte{wireV2, byte(op.Kind), byte(op.Cond), byte(op.ExpireCond)}
	var flags byte
	if op.HasContext {
		flags |= opHasContext
	}
	if op.KeepTTL {
		flags |= opKeepTTL
	}
	if op.Persist {
		flags |= opPersist
	}
	if op.WantOld {
		flags |= opWantOld
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(op.W))
	b = binary.AppendVarint(b, op.Expiry)
	b = binary.AppendVarint(b, op.Delta)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(op.FloatDelta))
	b = binary.AppendVarint(b, op.Deadline)
	b = replica.AppendBytes(b, replica.AppendClock(nil, op.Context))
	return replica.AppendBytes(b, op.Value)
}

func decodeOp(b []byte) (Op, error) {
	d := replica.NewReader(b)
	if d.Byte() != wireV2 {
		return Op{}, errBadWire
	}
	op := Op{Kind: Kind(d.Byte()), Cond: Cond(d.Byte()), ExpireCond: ExpireCond(d.Byte())}
	flags := d.Byte()
	op.HasContext, op.KeepTTL, op.Persist = flags&opHasContext != 0, flags&opKeepTTL != 0, flags&opPersist != 0
	op.WantOld = flags&opWantOld != 0
	op.W = int(d.Varint())
	op.Expiry = d.Varint()
	op.Delta = d.Varint()
	var fb [8]byte
	for i := range fb {
		fb[i] = d.Byte()
	}
	op.FloatDelta = math.Float64frombits(binary.BigEndian.Uint64(fb[:]))
	op.Deadline = d.Varint()
	ctx := d.Bytes()
	op.Value = d.Bytes()
	if d.Failed() || len(d.Rest()) != 0 || op.Kind >= kindEnd || op.Cond > IfPresent || op.ExpireCond >= expireCondEnd {
		return Op{}, errBadWire
	}
	var err error
	if op.Context, err = replica.DecodeClock(ctx); err != nil {
		return Op{}, fmt.Errorf("%w: %w", errBadWire, err)
	}
	op.Context = op.Context.Clone() // it must not alias the request's buffer
	return op, nil
}

func encodeResult(res Result, err error) []byte {
	code, msg := resOK, ""
	switch {
	case err == nil:
	case errors.Is(err, ErrUnavailable):
		code, msg = resUnavailable, err.Error()
	case errors.Is(err, ErrTooManySiblings):
		code, msg = resTooManySiblings, err.Error()
	case errors.Is(err, ErrBadQuorum):
		code, msg = resBadQuorum, err.Error()
	case errors.Is(err, replica.ErrBadContext):
		code, msg = resBadContext, err.Error()
	default:
		code, msg = resOther, err.Error()
	}
	b := []byte{wireV2, code}
	b = replica.AppendBytes(b, []byte(msg))
	var flags byte
	if res.Written {
		flags |= 1
	}
	if res.HadOld {
		flags |= 2
	}
	b = append(b, flags)
	b = replica.AppendBytes(b, res.Old)
	b = binary.AppendVarint(b, res.Int)
	b = replica.AppendBytes(b, res.New)
	b = replica.AppendBytes(b, replica.AppendClock(nil, res.Context))
	b = replica.AppendBytes(b, []byte(res.Dot.Actor))
	b = binary.AppendUvarint(b, res.Dot.Counter)
	return replica.AppendBytes(b, replica.AppendClock(nil, res.Seen))
}

func decodeResult(b []byte) (Result, error) {
	d := replica.NewReader(b)
	if d.Byte() != wireV2 {
		return Result{}, errBadWire
	}
	code := d.Byte()
	msg := string(d.Bytes())
	flags := d.Byte()
	res := Result{Written: flags&1 != 0, HadOld: flags&2 != 0, Old: d.Bytes()}
	res.Int = d.Varint()
	res.New = d.Bytes()
	ctx := d.Bytes()
	res.Dot = replica.Dot{Actor: string(d.Bytes()), Counter: d.Uvarint()}
	seen := d.Bytes()
	if d.Failed() || len(d.Rest()) != 0 {
		return Result{}, errBadWire
	}
	var err error
	if res.Context, err = replica.DecodeClock(ctx); err != nil {
		return Result{}, fmt.Errorf("%w: %w", errBadWire, err)
	}
	if res.Seen, err = replica.DecodeClock(seen); err != nil {
		return Result{}, fmt.Errorf("%w: %w", errBadWire, err)
	}
	res.Context, res.Seen = res.Context.Clone(), res.Seen.Clone()
	msg = strings.TrimPrefix(msg, "coord: ")
	switch code {
	case resOK:
		return res, nil
	case resUnavailable:
		return res, fmt.Errorf("%w (at the coordinating replica: %s)", ErrUnavailable, msg)
	case resTooManySiblings:
		return res, fmt.Errorf("%w (%s)", ErrTooManySiblings, msg)
	case resBadQuorum:
		return res, fmt.Errorf("%w (%s)", ErrBadQuorum, msg)
	case resBadContext:
		return res, fmt.Errorf("%w (%s)", replica.ErrBadContext, msg)
	}
	return res, errors.New(msg)
}

// ServeForward is the peer handler of CmdWrite: it coordinates a write that
// another node handed over.
func (c *Coordinator) ServeForward(ctx context.Context, args [][]byte) ([]byte, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("%w: want C.WRITE key op", errBadWire)
	}
	op, err := decodeOp(args[2])
	if err != nil {
		return nil, err
	}
	res, err := c.ServeForwarded(ctx, args[1], op)
	return encodeResult(res, err), nil
}

// PeerClient is the peer-protocol client NetTransport sends through.
type PeerClient interface {
	GoGet(ctx context.Context, addr string, key []byte, done func(replica.Object, error))
	GoMerge(ctx context.Context, addr string, key, enc []byte, done func(error))
	GoHint(ctx context.Context, addr, target string, key, enc []byte, done func(error))
	Range(ctx context.Context, addr string, from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
	Count(ctx context.Context, addr string, q int, parts []int) (keys, expiring []int64, err error)
	Flush(ctx context.Context, addr string, t int64) error
	Do(ctx context.Context, addr string, args ...any) (any, error)
}

// NetTransport is the Transport over the peer protocol.
type NetTransport struct {
	peers PeerClient
	// addr returns a node's peer address.
	addr func(node string) (string, bool)
}

var _ Transport = (*NetTransport)(nil)

// NewNetTransport returns a transport that finds nodes' peer addresses with
// addr and talks to them through peers.
func NewNetTransport(peers PeerClient, addr func(node string) (string, bool)) *NetTransport {
	return &NetTransport{peers: peers, addr: addr}
}

func (t *NetTransport) lookup(node string) (string, error) {
	a, ok := t.addr(node)
	if !ok {
		return "", fmt.Errorf("%w: %w: no peer address known for %s", ErrUnreachable, ErrNotSent, node)
	}
	return a, nil
}

// unreachable classifies a peer-client error: an error reply from the peer
// is the peer's answer, except UNAVAILABLE (a node shutting down); anything
// else means it could not be asked, and ErrNotSent too when the request
// provably never left this node.
func unreachable(node string, err error) error {
	if err == nil {
		return nil
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !strings.HasPrefix(rerr.Error(), "UNAVAILABLE") {
		return err
	}
	if errors.Is(err, replica.ErrNotSent) {
		return fmt.Errorf("%w: %w: %s: %v", ErrUnreachable, ErrNotSent, node, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, node, err)
}

// Read implements Transport.
func (t *NetTransport) Read(ctx context.Context, node string, key []byte, done func(replica.Object, error)) {
	a, err := t.lookup(node)
	if err != nil {
		done(replica.Object{}, err)
		return
	}
	t.peers.GoGet(ctx, a, key, func(o replica.Object, err error) { done(o, unreachable(node, err)) })
}

// Merge implements Transport.
func (t *NetTransport) Merge(ctx context.Context, node string, key, enc []byte, done func(error)) {
	a, err := t.lookup(node)
	if err != nil {
		done(err)
		return
	}
	t.peers.GoMerge(ctx, a, key, enc, func(err error) { done(unreachable(node, err)) })
}

// Hint implements Transport.
func (t *NetTransport) Hint(ctx context.Context, node, target string, key, enc []byte, done func(error)) {
	a, err := t.lookup(node)
	if err != nil {
		done(err)
		return
	}
	t.peers.GoHint(ctx, a, target, key, enc, func(err error) { done(unreachable(node, err)) })
}

// Forward implements Transport.
func (t *NetTransport) Forward(ctx context.Context, node string, key []byte, op Op) (Result, error) {
	a, err := t.lookup(node)
	if err != nil {
		return Result{}, err
	}
	v, err := t.peers.Do(ctx, a, CmdWrite, key, encodeOp(op))
	if err != nil {
		return Result{}, unreachable(node, err)
	}
	s, ok := v.(string)
	if !ok {
		return Result{}, fmt.Errorf("%w: %s answered %T", errBadWire, node, v)
	}
	return decodeResult([]byte(s))
}

// Range implements Transport.
func (t *NetTransport) Range(ctx context.Context, node string, from, to uint64, limit int) ([]replica.KeyObject, error) {
	a, err := t.lookup(node)
	if err != nil {
		return nil, err
	}
	kos, err := t.peers.Range(ctx, a, from, to, nil, limit)
	return kos, unreachable(node, err)
}

// Count implements Transport.
func (t *NetTransport) Count(ctx context.Context, node string, q int, parts []int) ([]int64, []int64, error) {
	a, err := t.lookup(node)
	if err != nil {
		return nil, nil, err
	}
	k, e, err := t.peers.Count(ctx, a, q, parts)
	return k, e, unreachable(node, err)
}

// Flush implements Transport.
func (t *NetTransport) Flush(ctx context.Context, node string, ms int64) error {
	a, err := t.lookup(node)
	if err != nil {
		return err
	}
	return unreachable(node, t.peers.Flush(ctx, a, ms))
}

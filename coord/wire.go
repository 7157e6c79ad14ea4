package coord

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/dynakv/dynakv/replica"
)

// wireV2 is the forwarded write's format: version 2 added the deadline,
// the write's dot and what it superseded.
const (
	wireV2 = 2
	// wireV3 ops add the container type and the removal clock.
	wireV3 = 3
)

// Op flags on the wire.
const (
	opHasContext = 1 << iota
	opKeepTTL
	opPersist
	opWantOld
	opReturnObject
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
	resWrongType
)

// errBadWire is a forwarded op or result that does not decode.
var errBadWire = errors.New("coord: malformed forwarded write")

func encodeOp(op Op) []byte {
	b := []byte{wireV3, byte(op.Kind), byte(op.Cond), byte(op.ExpireCond), byte(op.Type)}
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
	if op.ReturnObject {
		flags |= opReturnObject
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(op.W))
	b = binary.AppendVarint(b, op.Expiry)
	b = binary.AppendVarint(b, op.Delta)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(op.FloatDelta))
	b = binary.AppendVarint(b, op.Deadline)
	b = replica.AppendBytes(b, replica.AppendClock(nil, op.Context))
	b = replica.AppendBytes(b, op.Value)
	return replica.AppendBytes(b, replica.AppendClock(nil, op.Removed))
}

func decodeOp(b []byte) (Op, error) {
	d := replica.NewReader(b)
	v := d.Byte()
	if v != wireV2 && v != wireV3 {
		return Op{}, errBadWire
	}
	op := Op{Kind: Kind(d.Byte()), Cond: Cond(d.Byte()), ExpireCond: ExpireCond(d.Byte())}
	if v == wireV3 {
		op.Type = replica.Kind(d.Byte())
	}
	flags := d.Byte()
	op.HasContext, op.KeepTTL, op.Persist = flags&opHasContext != 0, flags&opKeepTTL != 0, flags&opPersist != 0
	op.WantOld, op.ReturnObject = flags&opWantOld != 0, flags&opReturnObject != 0
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
	var removed []byte
	if v == wireV3 {
		removed = d.Bytes()
	}
	if d.Failed() || len(d.Rest()) != 0 || op.Kind >= kindEnd || (op.Kind == Container && !op.Type.Container()) || op.Cond > IfPresent || op.ExpireCond >= expireCondEnd {
		return Op{}, errBadWire
	}
	var err error
	if op.Context, err = replica.DecodeClock(ctx); err != nil {
		return Op{}, fmt.Errorf("%w: %w", errBadWire, err)
	}
	op.Context = op.Context.Clone() // it must not alias the request's buffer
	if removed != nil {
		if op.Removed, err = replica.DecodeClock(removed); err != nil {
			return Op{}, fmt.Errorf("%w: %w", errBadWire, err)
		}
		op.Removed = op.Removed.Clone()
	}
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
	case errors.Is(err, ErrWrongType):
		code, msg = resWrongType, err.Error()
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
	b = replica.AppendBytes(b, replica.AppendClock(nil, res.Seen))
	var obj []byte
	if !res.Object.Empty() {
		obj = replica.AppendObject(nil, res.Object)
	}
	return replica.AppendBytes(b, obj)
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
	obj := d.Bytes()
	if d.Failed() || len(d.Rest()) != 0 {
		return Result{}, errBadWire
	}
	if len(obj) > 0 {
		o, err := replica.DecodeObject(bytes.Clone(obj))
		if err != nil {
			return Result{}, fmt.Errorf("%w: %w", errBadWire, err)
		}
		res.Object = o
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
	case resWrongType:
		return res, ErrWrongType
	}
	return res, errors.New(msg)
}

// ServeForward is the peer handler of a forwarded write (peer.CmdWrite):
// it coordinates a write that another node handed over.
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

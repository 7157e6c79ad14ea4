package coord

import (
	"context"
	"fmt"

	"github.com/dynakv/dynakv/peer"
	"github.com/dynakv/dynakv/replica"
)

// PeerClient is the peer-protocol client NetTransport sends through
// (peer.Client). Its failures come classified: ErrUnreachable, with
// ErrNotSent when provable, or the peer's error reply.
type PeerClient interface {
	GoGet(ctx context.Context, addr string, key []byte, done func(replica.Object, error))
	GoMerge(ctx context.Context, addr string, key, enc []byte, done func(error))
	GoHint(ctx context.Context, addr, target string, key, enc []byte, done func(error))
	GoMergeAll(ctx context.Context, addr string, objs []replica.KeyObject, done func(error))
	GoHintAll(ctx context.Context, addr, target string, objs []replica.KeyObject, done func(error))
	Forward(ctx context.Context, addr string, key, op []byte) ([]byte, error)
	Range(ctx context.Context, addr string, from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
	Elements(ctx context.Context, addr string, prefix, after []byte, limit int) ([]replica.KeyObject, error)
	ContainerClock(ctx context.Context, addr string, key []byte, before int64) (replica.Clock, error)
	Tally(ctx context.Context, addr string, key []byte, typ byte) (replica.Tally, error)
	Count(ctx context.Context, addr string, q int, parts []int) (keys, expiring []int64, err error)
	Flush(ctx context.Context, addr string, t int64) error
	Ping(ctx context.Context, addr string) error
}

var _ PeerClient = (*peer.Client)(nil)

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

// Read implements Transport.
func (t *NetTransport) Read(ctx context.Context, node string, key []byte, done func(replica.Object, error)) {
	a, err := t.lookup(node)
	if err != nil {
		done(replica.Object{}, err)
		return
	}
	t.peers.GoGet(ctx, a, key, done)
}

// Merge implements Transport.
func (t *NetTransport) Merge(ctx context.Context, node string, key, enc []byte, done func(error)) {
	a, err := t.lookup(node)
	if err != nil {
		done(err)
		return
	}
	t.peers.GoMerge(ctx, a, key, enc, done)
}

// Hint implements Transport.
func (t *NetTransport) Hint(ctx context.Context, node, target string, key, enc []byte, done func(error)) {
	a, err := t.lookup(node)
	if err != nil {
		done(err)
		return
	}
	t.peers.GoHint(ctx, a, target, key, enc, done)
}

// MergeAll implements Transport.
func (t *NetTransport) MergeAll(ctx context.Context, node string, objs []replica.KeyObject, done func(error)) {
	a, err := t.lookup(node)
	if err != nil {
		done(err)
		return
	}
	t.peers.GoMergeAll(ctx, a, objs, done)
}

// HintAll implements Transport.
func (t *NetTransport) HintAll(ctx context.Context, node, target string, objs []replica.KeyObject, done func(error)) {
	a, err := t.lookup(node)
	if err != nil {
		done(err)
		return
	}
	t.peers.GoHintAll(ctx, a, target, objs, done)
}

// Forward implements Transport.
func (t *NetTransport) Forward(ctx context.Context, node string, key []byte, op Op) (Result, error) {
	a, err := t.lookup(node)
	if err != nil {
		return Result{}, err
	}
	b, err := t.peers.Forward(ctx, a, key, encodeOp(op))
	if err != nil {
		return Result{}, err
	}
	return decodeResult(b)
}

// Range implements Transport.
func (t *NetTransport) Range(ctx context.Context, node string, from, to uint64, limit int) ([]replica.KeyObject, error) {
	a, err := t.lookup(node)
	if err != nil {
		return nil, err
	}
	return t.peers.Range(ctx, a, from, to, nil, limit)
}

// Count implements Transport.
func (t *NetTransport) Count(ctx context.Context, node string, q int, parts []int) ([]int64, []int64, error) {
	a, err := t.lookup(node)
	if err != nil {
		return nil, nil, err
	}
	return t.peers.Count(ctx, a, q, parts)
}

// Flush implements Transport.
func (t *NetTransport) Flush(ctx context.Context, node string, ms int64) error {
	a, err := t.lookup(node)
	if err != nil {
		return err
	}
	return t.peers.Flush(ctx, a, ms)
}

// Ping implements Transport.
func (t *NetTransport) Ping(ctx context.Context, node string) error {
	a, err := t.lookup(node)
	if err != nil {
		return err
	}
	return t.peers.Ping(ctx, a)
}

// Elements reads a chunk of a container's elements from node.
func (t *NetTransport) Elements(ctx context.Context, node string, prefix, after []byte, limit int) ([]replica.KeyObject, error) {
	a, err := t.lookup(node)
	if err != nil {
		return nil, err
	}
	return t.peers.Elements(ctx, a, prefix, after, limit)
}

// ContainerClock reads node's container clock of key.
func (t *NetTransport) ContainerClock(ctx context.Context, node string, key []byte, before int64) (replica.Clock, error) {
	a, err := t.lookup(node)
	if err != nil {
		return nil, err
	}
	return t.peers.ContainerClock(ctx, a, key, before)
}

// Tally reads node's tally of a container's elements of type typ.
func (t *NetTransport) Tally(ctx context.Context, node string, key []byte, typ byte) (replica.Tally, error) {
	a, err := t.lookup(node)
	if err != nil {
		return replica.Tally{}, err
	}
	return t.peers.Tally(ctx, a, key, typ)
}

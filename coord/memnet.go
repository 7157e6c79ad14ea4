package coord

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// MemNetwork connects coordinators in one process, for tests: no sockets,
// and faults under the test's control. Drops and delays come from a seeded
// generator, so a failing run replays from its seed (as far as goroutine
// scheduling allows).
//
// A cut link behaves like a firewall that drops packets: a request over it
// hangs until its context ends. A dropped request fails at once, like a
// refused connection (ErrNotSent). A delayed request arrives after its
// delay even when its sender has stopped waiting, as one queued behind a
// paused node would. Objects cross the network encoded, as on the wire.
type MemNetwork struct {
	mu struct {
		sync.Mutex
		nodes map[string]memNode
		rng   *rand.Rand
		drop  float64
		delay time.Duration
		slow  map[string]time.Duration
		cut   map[[2]string]bool
	}
}

type memNode struct {
	local Local
	coord *Coordinator
}

// NewMemNetwork returns an empty network whose faults draw on seed.
func NewMemNetwork(seed uint64) *MemNetwork {
	m := &MemNetwork{}
	m.mu.nodes = map[string]memNode{}
	m.mu.rng = rand.New(rand.NewPCG(seed, seed+1))
	m.mu.cut = map[[2]string]bool{}
	m.mu.slow = map[string]time.Duration{}
	return m
}

// Add attaches a node: its replica and its coordinator.
func (m *MemNetwork) Add(id string, local Local, c *Coordinator) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.nodes[id] = memNode{local, c}
}

// Remove takes a node off the network: requests to it fail at once, as
// to a process that is gone (ErrNotSent), until it is added again.
func (m *MemNetwork) Remove(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mu.nodes, id)
}

// SetDrop makes each request fail at once with probability p.
func (m *MemNetwork) SetDrop(p float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.drop = p
}

// SetDelay delays each request by a random time below d.
func (m *MemNetwork) SetDelay(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.delay = d
}

// SetSlow delays every request to node by d on top of any other delay: a
// node that is up but answers late (0: at once again).
func (m *MemNetwork) SetSlow(node string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.slow[node] = d
}

// Partition cuts every link between nodes of different groups; nodes in no
// group keep their links.
func (m *MemNetwork) Partition(groups ...[]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					m.mu.cut[[2]string{a, b}] = true
				}
			}
		}
	}
}

// Heal restores every link.
func (m *MemNetwork) Heal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.cut = map[[2]string]bool{}
}

// Transport returns the transport node from sends through.
func (m *MemNetwork) Transport(from string) Transport { return &memTransport{net: m, from: from} }

type memTransport struct {
	net  *MemNetwork
	from string
}

var _ Transport = (*memTransport)(nil)

// route applies the network's faults to one request from t.from to node:
// the node to deliver it to and the delay, or the failure. A cut link
// waits for ctx to end.
func (t *memTransport) route(ctx context.Context, node string) (memNode, time.Duration, error) {
	m := t.net
	m.mu.Lock()
	n, ok := m.mu.nodes[node]
	cut := m.mu.cut[[2]string{t.from, node}]
	dropped := m.mu.drop > 0 && m.mu.rng.Float64() < m.mu.drop
	var delay time.Duration
	if m.mu.delay > 0 {
		delay = time.Duration(m.mu.rng.Int64N(int64(m.mu.delay)))
	}
	delay += m.mu.slow[node]
	m.mu.Unlock()
	switch {
	case !ok:
		return memNode{}, 0, fmt.Errorf("%w: %w: %s is not on the network", ErrUnreachable, ErrNotSent, node)
	case cut:
		<-ctx.Done()
		return memNode{}, 0, fmt.Errorf("%w: %s: %v", ErrUnreachable, node, ctx.Err())
	case dropped:
		return memNode{}, 0, fmt.Errorf("%w: %w: %s: dropped", ErrUnreachable, ErrNotSent, node)
	}
	return n, delay, nil
}

// reach is route for a request whose sender waits for it: it waits out
// the delay, or fails when ctx ends first.
func (t *memTransport) reach(ctx context.Context, node string) (memNode, error) {
	n, delay, err := t.route(ctx, node)
	if err != nil {
		return n, err
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return memNode{}, fmt.Errorf("%w: %s: %v", ErrUnreachable, node, ctx.Err())
		}
	}
	return n, nil
}

// wire copies an object the way the network would: encoded and decoded.
func wireCopy(o replica.Object) replica.Object {
	c, err := replica.DecodeObject(replica.AppendObject(nil, o))
	if err != nil {
		panic(err)
	}
	return c
}

func (t *memTransport) Read(ctx context.Context, node string, key []byte, done func(replica.Object, error)) {
	go func() {
		n, err := t.reach(ctx, node)
		if err != nil {
			done(replica.Object{}, err)
			return
		}
		o, err := n.local.ReadAt(replica.Position(key), key)
		done(wireCopy(o), err)
	}()
}

func (t *memTransport) Merge(ctx context.Context, node string, key, enc []byte, done func(error)) {
	t.deliver(ctx, node, enc, done, func(n memNode, o replica.Object) error {
		_, err := n.local.Merge(key, o)
		return err
	})
}

func (t *memTransport) Hint(ctx context.Context, node, target string, key, enc []byte, done func(error)) {
	t.deliver(ctx, node, enc, done, func(n memNode, o replica.Object) error {
		return n.local.Hint(target, key, o)
	})
}

func (t *memTransport) MergeAll(ctx context.Context, node string, objs []replica.KeyObject, done func(error)) {
	t.deliverAll(ctx, node, objs, done, func(n memNode, objs []replica.KeyObject) error {
		return n.local.MergeAll(nil, objs)
	})
}

func (t *memTransport) HintAll(ctx context.Context, node, target string, objs []replica.KeyObject, done func(error)) {
	t.deliverAll(ctx, node, objs, done, func(n memNode, objs []replica.KeyObject) error {
		return n.local.HintAll(target, objs)
	})
}

// deliverAll is deliver for the objects of a write of several keys.
func (t *memTransport) deliverAll(ctx context.Context, node string, objs []replica.KeyObject, done func(error), store func(memNode, []replica.KeyObject) error) {
	copies := make([]replica.KeyObject, len(objs))
	for i, ko := range objs {
		copies[i] = replica.KeyObject{Key: append([]byte(nil), ko.Key...), Object: wireCopy(ko.Object)}
	}
	go func() {
		n, err := t.reach(ctx, node)
		if err == nil {
			err = store(n, copies)
		}
		done(err)
	}()
}

// deliver carries the encoded object enc to node, as the network would,
// and has store keep it there; done gets the outcome.
func (t *memTransport) deliver(ctx context.Context, node string, enc []byte, done func(error), store func(memNode, replica.Object) error) {
	go func() {
		n, err := t.reach(ctx, node)
		var o replica.Object
		if err == nil {
			o, err = replica.DecodeObject(enc)
		}
		if err == nil {
			err = store(n, o)
		}
		done(err)
	}()
}

// Forward delivers op to node after the network's delay whether or not
// the sender still waits, as a request written to a paused node's socket
// runs when it resumes; the sender waits until ctx ends.
func (t *memTransport) Forward(ctx context.Context, node string, key []byte, op Op) (Result, error) {
	n, delay, err := t.route(ctx, node)
	if err != nil {
		return Result{}, err
	}
	enc := encodeOp(op)
	key = append([]byte(nil), key...)
	answer := make(chan []byte, 1)
	go func() {
		time.Sleep(delay)
		op, err := decodeOp(enc)
		if err != nil {
			answer <- encodeResult(Result{}, err)
			return
		}
		res, err := n.coord.ServeForwarded(context.Background(), key, op)
		answer <- encodeResult(res, err)
	}()
	select {
	case b := <-answer:
		return decodeResult(b)
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%w: %s: %v", ErrUnreachable, node, ctx.Err())
	}
}

func (t *memTransport) Range(ctx context.Context, node string, from, to uint64, limit int) ([]replica.KeyObject, error) {
	n, err := t.reach(ctx, node)
	if err != nil {
		return nil, err
	}
	kos, err := n.local.Range(from, to, nil, limit)
	for i := range kos {
		kos[i].Object = wireCopy(kos[i].Object)
	}
	return kos, err
}

func (t *memTransport) Count(ctx context.Context, node string, q int, parts []int) ([]int64, []int64, error) {
	n, err := t.reach(ctx, node)
	if err != nil {
		return nil, nil, err
	}
	k, e := n.local.PartitionCounts(q, parts)
	return k, e, nil
}

func (t *memTransport) Flush(ctx context.Context, node string, ms int64) error {
	n, err := t.reach(ctx, node)
	if err != nil {
		return err
	}
	return n.local.Flush(ms)
}

func (t *memTransport) Ping(ctx context.Context, node string) error {
	_, err := t.reach(ctx, node)
	return err
}

func (t *memTransport) Elements(ctx context.Context, node string, prefix, after []byte, limit int) ([]replica.KeyObject, error) {
	n, err := t.reach(ctx, node)
	if err != nil {
		return nil, err
	}
	kos, err := n.local.Elements(prefix, after, limit)
	for i := range kos {
		kos[i].Object = wireCopy(kos[i].Object)
	}
	return kos, err
}

func (t *memTransport) ContainerClock(ctx context.Context, node string, key []byte, before int64) (replica.Clock, error) {
	n, err := t.reach(ctx, node)
	if err != nil {
		return nil, err
	}
	return n.local.ContainerClock(key, before)
}

func (t *memTransport) Tally(ctx context.Context, node string, key []byte, typ byte) (replica.Tally, error) {
	n, err := t.reach(ctx, node)
	if err != nil {
		return replica.Tally{}, err
	}
	return n.local.ContainerTally(key, typ)
}

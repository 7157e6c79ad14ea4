package coord

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/dynakv/dynakv/replica"
)

// A container (hash, set) is a header object, the key's own, plus one
// object per element under an element name (replica.ElementName) at the
// key's ring position: the same replicas hold both. Element writes are
// ordinary writes of their names; this file adds what needs the container
// as a whole: its type check, its removal clock, and range reads.

// Container makes key a container of type typ unless it is one (the header
// write of HSET and SADD), answering ErrWrongType for a key of another
// type. When this node is a replica whose header already says typ, it
// writes nothing and asks no one: the common case of adding to an
// existing hash or set costs the element's write alone.
func (c *Coordinator) Container(ctx context.Context, pl *Pipelined, key []byte, typ replica.Kind) error {
	if c.HasContainer(key, typ) {
		return nil
	}
	_, err := c.WriteIn(ctx, pl, key, Op{Kind: Container, Type: typ})
	return err
}

// HasContainer reports whether this node is one of key's primaries and
// its replica holds key as a container of typ (the latest header says
// so): adding to it then writes elements alone.
func (c *Coordinator) HasContainer(key []byte, typ replica.Kind) bool {
	p, err := c.replicas(key)
	if err != nil || !slices.Contains(p.primaries, c.opts.Self) {
		return false
	}
	h, err := c.local.ReadAt(p.pos, key)
	if err != nil {
		return false
	}
	v, ok := h.Resolve(c.Now())
	return ok && v.Kind == typ
}

// removal returns the removal clock op must carry at the coordinator when
// it removes a container that base holds (DEL, SET over a hash, a new set
// over an expired one): the join of the element clocks of a read quorum of
// key's replicas, so that elements a replica acknowledged before the
// removal are covered even if this node had not received them, and
// elements written concurrently elsewhere are not (add-wins). Otherwise,
// or when the caller gave one, op.Removed unchanged. coordinate calls it
// with what the quorum read saw, and again with the local object when the
// write's decision finds a container there (errRemovalNeeded): a write
// over a string reads nothing more.
func (c *Coordinator) removal(ctx context.Context, key []byte, op Op, p prefs, base replica.Object) (replica.Clock, error) {
	if len(op.Removed) > 0 {
		return op.Removed, nil // the caller observed what it removes
	}
	removes, before := op.removes(base, c.Now())
	if !removes {
		return op.Removed, nil
	}
	rc, err := c.containerClock(ctx, key, p, before)
	if err != nil {
		return nil, err
	}
	return op.Removed.Join(rc), nil
}

// answered is one node's answer to a request fromNodes made.
type answered[T any] struct {
	node string
	v    T
}

// fromQuorum asks key's primaries (fromNodes) and returns R answers.
func fromQuorum[T any](ctx context.Context, c *Coordinator, p prefs, what string, ask func(ctx context.Context, node string) (T, error)) ([]answered[T], error) {
	need, err := c.quorum(0, c.opts.R, len(p.primaries), "R")
	if err != nil {
		return nil, err
	}
	return fromNodes(ctx, c, c.orderByHealth(p.primaries), need, what, ask)
}

// fromNodes asks nodes at once, this node directly and the others over the
// network, and returns the first need answers; ask runs one request (node
// is c.opts.Self for the local replica). what names the request in the
// error when fewer than need answer.
func fromNodes[T any](ctx context.Context, c *Coordinator, nodes []string, need int, what string, ask func(ctx context.Context, node string) (T, error)) ([]answered[T], error) {
	type answer struct {
		answered[T]
		err error
	}
	rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	answers := make(chan answer, len(nodes))
	// This node's answer goes first, so that it is always among the need
	// taken: it holds what this node wrote, which a group (a
	// transaction's writes) has sent nowhere yet.
	if slices.Contains(nodes, c.opts.Self) {
		v, err := ask(rctx, c.opts.Self)
		answers <- answer{answered[T]{c.opts.Self, v}, err}
	}
	for _, node := range nodes {
		if node == c.opts.Self {
			continue
		}
		go func() {
			v, err := ask(rctx, node)
			if err != nil {
				c.noteFailure(node, err)
			}
			answers <- answer{answered[T]{node, v}, err}
		}()
	}
	var got []answered[T]
	var lastErr error
	for range nodes {
		a := <-answers
		if a.err != nil {
			lastErr = a.err
			continue
		}
		if got = append(got, a.answered); len(got) == need {
			return got, nil
		}
	}
	return nil, fmt.Errorf("%w: %d of %d replicas answered %s (%v)", ErrUnavailable, len(got), need, what, lastErr)
}

// containerClock joins the element clocks of key that R primaries hold
// (with before > 0, the dots of element versions written before it).
func (c *Coordinator) containerClock(ctx context.Context, key []byte, p prefs, before int64) (replica.Clock, error) {
	clocks, err := fromQuorum(ctx, c, p, "for the elements to remove", func(ctx context.Context, node string) (replica.Clock, error) {
		if node == c.opts.Self {
			return c.local.ContainerClock(key, before)
		}
		return c.net.ContainerClock(ctx, node, key, before)
	})
	var joined replica.Clock
	for _, cl := range clocks {
		joined = joined.Join(cl.v)
	}
	return joined, err
}

// Count answers the tally of key's container's elements of type typ
// (replica.Store.ContainerTally) that R replicas agree on: the same count
// and digest, so the same header and elements. agreed is false when they
// differ, and the caller reads the elements instead.
func (c *Coordinator) Count(ctx context.Context, key []byte, typ byte) (t replica.Tally, agreed bool, err error) {
	p, err := c.replicas(key)
	if err != nil {
		return t, false, err
	}
	tallies, err := fromQuorum(ctx, c, p, "with a count", func(ctx context.Context, node string) (replica.Tally, error) {
		if node == c.opts.Self {
			return c.local.ContainerTally(key, typ)
		}
		return c.net.Tally(ctx, node, key, typ)
	})
	if err != nil {
		return t, false, err
	}
	for _, other := range tallies[1:] {
		if other.v != tallies[0].v {
			return t, false, nil
		}
	}
	return tallies[0].v, true, nil
}

// ElementChunk bounds the elements one replica sends for one step of a
// range read.
const ElementChunk = 512

// Elements reads the element objects of key's container of element type
// typ whose ids sort after after (nil: from the first), at R, merged
// element by element, tombstones included, until it has want objects or
// the container ends; more says whether elements may follow the last.
// Each step asks every replica of the quorum for a chunk and merges only
// up to the smallest last name a full chunk reached, so no replica's
// element is missed. Replicas that answered stale or lacked an element
// are repaired in the background.
func (c *Coordinator) Elements(ctx context.Context, key []byte, typ byte, after []byte, want int) (elems []replica.KeyObject, more bool, err error) {
	p, err := c.replicas(key)
	if err != nil {
		return nil, false, err
	}
	need, err := c.quorum(0, c.opts.R, len(p.primaries), "R")
	if err != nil {
		return nil, false, err
	}
	prefix := replica.AppendElementPrefix(nil, key, typ)
	var from []byte
	if after != nil {
		from = append(bytes.Clone(prefix), after...)
	}
	nodes := c.orderByHealth(p.primaries)
	rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	for {
		chunks, asked, err := c.elementChunks(rctx, nodes, need, prefix, from)
		if err != nil {
			return nil, false, err
		}
		nodes = asked // later steps ask the replicas that answered the first
		var bound []byte
		for _, ch := range chunks {
			if len(ch) == ElementChunk {
				if last := ch[len(ch)-1].Key; bound == nil || bytes.Compare(last, bound) < 0 {
					bound = last
				}
			}
		}
		merged := c.mergeElements(ctx, asked, chunks, bound)
		elems = slices.Grow(elems, len(merged))
		for _, ko := range merged {
			elems = append(elems, replica.KeyObject{Key: ko.Key[len(prefix):], Object: ko.Object})
		}
		if bound == nil {
			return elems, false, nil
		}
		if len(elems) >= want {
			return elems, true, nil
		}
		from = bound
	}
}

// elementChunks asks nodes for the chunk after from until need of them
// answered; it returns their chunks and who they were.
func (c *Coordinator) elementChunks(ctx context.Context, nodes []string, need int, prefix, from []byte) ([][]replica.KeyObject, []string, error) {
	got, err := fromNodes(ctx, c, nodes, need, "a range read", func(ctx context.Context, node string) ([]replica.KeyObject, error) {
		if node == c.opts.Self {
			return c.local.Elements(prefix, from, ElementChunk)
		}
		return c.net.Elements(ctx, node, prefix, from, ElementChunk)
	})
	if err != nil {
		return nil, nil, err
	}
	chunks, asked := make([][]replica.KeyObject, len(got)), make([]string, len(got))
	for i, a := range got {
		chunks[i], asked[i] = a.v, a.node
	}
	return chunks, asked, nil
}

// mergeElements merges the chunks element by element up to bound (nil:
// all of them), in name order, and repairs the nodes whose chunk lacked an
// element or held a stale one.
func (c *Coordinator) mergeElements(ctx context.Context, nodes []string, chunks [][]replica.KeyObject, bound []byte) []replica.KeyObject {
	if out, ok := agreed(chunks, bound); ok {
		return out // the common case: one replica, or replicas that agree
	}
	type held struct {
		obj   replica.Object
		holds []int // per node: the index in its chunk, -1 when missing
	}
	byName := map[string]*held{}
	var names []string
	for i, ch := range chunks {
		for j, ko := range ch {
			if bound != nil && bytes.Compare(ko.Key, bound) > 0 {
				break
			}
			h := byName[string(ko.Key)]
			if h == nil {
				h = &held{holds: slices.Repeat([]int{-1}, len(chunks))}
				byName[string(ko.Key)] = h
				names = append(names, string(ko.Key))
			}
			h.obj = replica.Sync(h.obj, ko.Object)
			h.holds[i] = j
		}
	}
	slices.Sort(names)
	type repair struct {
		name  []byte
		final replica.Object
		stale []string
	}
	var repairs []repair
	out := make([]replica.KeyObject, 0, len(names))
	for _, name := range names {
		h := byName[name]
		var stale []string
		for i, j := range h.holds {
			if j < 0 || !chunks[i][j].Object.Equal(h.obj) {
				stale = append(stale, nodes[i])
			}
		}
		if len(stale) > 0 {
			repairs = append(repairs, repair{[]byte(name), h.obj, stale})
		}
		out = append(out, replica.KeyObject{Key: []byte(name), Object: h.obj})
	}
	if len(repairs) > 0 {
		c.background.Add(1)
		go func() {
			defer c.background.Done()
			for _, r := range repairs {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
				c.repair(rctx, r.name, r.final, r.stale)
				cancel()
			}
		}()
	}
	return out
}

// agreed returns the chunks' elements up to bound when every chunk holds
// the same ones, the same objects: nothing to merge or repair.
func agreed(chunks [][]replica.KeyObject, bound []byte) ([]replica.KeyObject, bool) {
	upTo := func(ch []replica.KeyObject) []replica.KeyObject {
		if bound == nil {
			return ch
		}
		n, _ := slices.BinarySearchFunc(ch, bound, func(ko replica.KeyObject, b []byte) int { return bytes.Compare(ko.Key, b) })
		if n < len(ch) && bytes.Equal(ch[n].Key, bound) {
			n++
		}
		return ch[:n]
	}
	first := upTo(chunks[0])
	for _, ch := range chunks[1:] {
		ch = upTo(ch)
		if len(ch) != len(first) {
			return nil, false
		}
		for i := range ch {
			if !bytes.Equal(ch[i].Key, first[i].Key) || !ch[i].Object.Equal(first[i].Object) {
				return nil, false
			}
		}
	}
	return first, true
}

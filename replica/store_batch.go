package replica

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// A write that changes several objects at once (a transaction, SMOVE, a
// hash's header with its first field) reaches a replica as one message and
// is stored in one Pebble batch: a replica that crashes holds all of it or
// none. Its objects share a slot, so they sit on the same replicas, and
// the lock stripes of their positions are taken in order, so that two
// batches never wait on each other.

// MergeAll syncs each of objs into the local object of its key, as Merge
// does one, and stores every change in one Pebble batch, durably (or, with
// p, leaving the wait to p as MergeDeferred does). An element is settled
// under its container's removal clock as the batch leaves it: a header and
// the elements it removes, or adds, arrive together. A key may appear more
// than once; its objects are synced together.
func (s *Store) MergeAll(p *Pending, objs []KeyObject) error {
	if len(objs) == 0 {
		return nil
	}
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	unlock := s.lockStripes(objs)
	b := &batchApply{s: s, byKey: make(map[string]*batchChange, len(objs))}
	// Headers first: an element settles under the removal clock its
	// header has after the batch.
	for _, elements := range []bool{false, true} {
		for _, ko := range objs {
			if IsElement(ko.Key) != elements {
				continue
			}
			if err := b.merge(ko.Key, ko.Object); err != nil {
				unlock()
				return err
			}
		}
	}
	return b.commit(p, unlock)
}

// lockStripes locks the stripes of objs' positions in ascending order and
// returns the function that unlocks them.
func (s *Store) lockStripes(objs []KeyObject) func() {
	var buf [8]uint64
	stripes := buf[:0]
	for _, ko := range objs {
		stripes = append(stripes, Stripe(Position(ko.Key)))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, st := range stripes {
		s.locks[st].Lock()
	}
	return func() {
		for _, st := range stripes {
			s.locks[st].Unlock()
		}
	}
}

// batchApply is a MergeAll under way: the changes decided so far, one per
// object key, in the order first touched.
type batchApply struct {
	s       *Store
	changes []*batchChange
	byKey   map[string]*batchChange
}

// batchChange is one object's change in a batch.
type batchChange struct {
	pos       uint64
	key       []byte
	cur, next Object
}

// change returns the batch's change of key, starting it from the stored
// object.
func (b *batchApply) change(pos uint64, key []byte) (*batchChange, error) {
	if ch := b.byKey[string(key)]; ch != nil {
		return ch, nil
	}
	cur, err := b.s.getLocked(pos, key)
	if err != nil {
		return nil, err
	}
	ch := &batchChange{pos: pos, key: bytes.Clone(key), cur: cur, next: cur}
	b.byKey[string(key)] = ch
	b.changes = append(b.changes, ch)
	return ch, nil
}

// removedOf returns the removal clock of the container holding element
// name, as the batch leaves its header.
func (b *batchApply) removedOf(pos uint64, name []byte) (Clock, error) {
	key, _, _, _ := SplitElement(name)
	if ch := b.byKey[string(key)]; ch != nil {
		return ch.next.Removed, nil
	}
	h, err := b.s.getLocked(pos, key)
	return h.Removed, err
}

// merge syncs o into the batch's object of key.
func (b *batchApply) merge(key []byte, o Object) error {
	pos := Position(key)
	ch, err := b.change(pos, key)
	if err != nil {
		return err
	}
	next := b.s.flushed(Sync(ch.next, o))
	if IsElement(key) {
		removed, err := b.removedOf(pos, key)
		if err != nil {
			return err
		}
		next = Settle(removed, next)
	} else if grew(ch.next.Removed, next.Removed) {
		if err := b.settleElements(pos, key, next.Removed); err != nil {
			return err
		}
	}
	if err := next.Check(); err != nil {
		return fmt.Errorf("write %q: %w", key, err)
	}
	ch.next = next
	return nil
}

// settleElements settles every stored element of the container key under
// its header's new removal clock, in the batch.
func (b *batchApply) settleElements(pos uint64, key []byte, removed Clock) error {
	covered, err := b.s.coveredLocked(pos, key, removed)
	if err != nil {
		return err
	}
	for _, e := range covered {
		ch, err := b.change(pos, e.name)
		if err != nil {
			return err
		}
		ch.next = Settle(removed, ch.next)
	}
	return nil
}

// commit stores the batch's changes in one Pebble batch and brings the
// store's memory up to date, then unlocks the stripes and waits for
// durability (or leaves the wait to p), as update does.
func (b *batchApply) commit(p *Pending, unlock func()) error {
	s := b.s
	pb := s.db.NewBatch()
	defer pb.Close()
	encs := make([][]byte, len(b.changes))
	n := 0
	for i, ch := range b.changes {
		if ch.next.Equal(ch.cur) {
			continue
		}
		n++
		if ch.cur.Empty() {
			s.filter.add(ch.pos) // before the write can be seen
		}
		k := objectKey(ch.pos, ch.key)
		if ch.next.Empty() {
			pb.Delete(k, nil)
			continue
		}
		encs[i] = AppendObject(nil, ch.next)
		pb.Set(k, encs[i], nil)
	}
	if n == 0 {
		unlock()
		return nil
	}
	var err error
	if p != nil {
		err = s.db.Apply(pb, pebble.NoSync)
	} else {
		err = s.db.ApplyNoSyncWait(pb, pebble.Sync)
	}
	now := s.now()
	for i, ch := range b.changes {
		switch {
		case ch.next.Equal(ch.cur):
		case err != nil:
			s.cache.del(ch.pos, ch.key)
		default:
			s.changed(ch.pos, ch.key, ch.cur, ch.next, encs[i], now)
		}
	}
	unlock()
	if err == nil {
		s.dirty.Store(true)
		if p != nil {
			p.add(s)
		} else {
			err = pb.SyncWait()
		}
	}
	if err != nil {
		return fmt.Errorf("write a batch of %d objects: %w", n, err)
	}
	return nil
}

// HintAll keeps objs as hints for target, as Hint keeps one, in one Pebble
// batch: a write of several objects that target missed is kept whole, and
// delivered whole (Hints never ends a page inside a slot, and the objects
// of one write share a slot). It returns ErrHintRefused, keeping none,
// past the target's byte cap or time window.
func (s *Store) HintAll(target string, objs []KeyObject) error {
	if len(target) > 255 {
		return fmt.Errorf("hint for %s: target id too long", target)
	}
	if len(objs) == 0 {
		return nil
	}
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	unlock := s.lockStripes(objs)
	type hinted struct {
		hk, enc []byte
		had     bool
		grow    int64
	}
	byKey := make(map[string]int, len(objs))
	var hs []hinted
	var nexts []Object
	var stored []int64
	for _, ko := range objs {
		if i, ok := byKey[string(ko.Key)]; ok {
			nexts[i] = s.flushed(Sync(nexts[i], ko.Object))
			continue
		}
		hk := hintKey(target, Position(ko.Key), ko.Key)
		cur, had, err := s.getRaw(hk)
		if err != nil {
			unlock()
			return err
		}
		next, ts := s.flushed(ko.Object), s.now()
		if had {
			if t, old, err := parseHintValue(cur); err != nil {
				s.skipCorrupt("hint", ko.Key, err) // replaced by this one
			} else {
				ts, next = t, s.flushed(Sync(old, next))
			}
		}
		byKey[string(ko.Key)] = len(hs)
		hs = append(hs, hinted{hk: hk, had: had, grow: -int64(len(cur))})
		nexts = append(nexts, next)
		stored = append(stored, ts)
	}
	for i := range hs {
		if err := nexts[i].Check(); err != nil {
			unlock()
			return fmt.Errorf("hint for %s: %w", target, err)
		}
		hs[i].enc = hintValue(stored[i], nexts[i])
		hs[i].grow += int64(len(hs[i].enc))
		if !hs[i].had {
			hs[i].grow += int64(len(hs[i].hk))
		}
	}
	admitted := 0
	var err error
	for i := range hs {
		if err = s.admitHint(target, hs[i].grow, hs[i].had); err != nil {
			break
		}
		admitted++
	}
	if err == nil {
		pb := s.db.NewBatch()
		for _, h := range hs {
			pb.Set(h.hk, h.enc, nil)
		}
		err = s.db.ApplyNoSyncWait(pb, pebble.Sync)
		unlock()
		if err == nil {
			err = pb.SyncWait()
		}
		pb.Close()
		if err != nil {
			err = fmt.Errorf("hint for %s: %w", target, err)
		}
	} else {
		unlock()
	}
	if err != nil {
		for _, h := range hs[:admitted] {
			s.unadmitHint(target, h.grow, h.had)
		}
		return err
	}
	return nil
}

// hintsPerPage is the most hints one page of Hints reads beyond its limit
// to finish a slot: past it, a slot's backlog is delivered in parts.
const hintsPerPage = 16384

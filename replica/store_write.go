package replica

import (
	"context"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Mutation computes a key's next object from its current one. It returns
// changed=false to leave the stored object as it is.
type Mutation func(cur Object) (next Object, changed bool, err error)

// Update applies m to key's object atomically with respect to every other
// Update of the key, stores the result durably per the fsync policy, and
// returns the object now stored. An error from m stores nothing.
func (s *Store) Update(ctx context.Context, key []byte, m Mutation) (Object, error) {
	return s.update(Position(key), key, m, nil)
}

// UpdateAt is Update for a caller that has placed the key already: pos
// must be Position(key).
func (s *Store) UpdateAt(ctx context.Context, pos uint64, key []byte, m Mutation) (Object, error) {
	return s.update(pos, key, m, nil)
}

// UpdateDeferred is UpdateAt that returns once the write is applied and
// visible, and leaves the wait for its durability to p: a pipeline's
// writes commit without asking for a sync each, and p.Wait asks once.
func (s *Store) UpdateDeferred(p *Pending, pos uint64, key []byte, m Mutation) (Object, error) {
	return s.update(pos, key, m, p)
}

// update is UpdateAt, its durability waited for here when p is nil and
// left to p otherwise.
func (s *Store) update(pos uint64, key []byte, m Mutation, p *Pending) (Object, error) {
	if !s.enter() {
		return Object{}, ErrClosed
	}
	defer s.gate.RUnlock()
	k := objectKey(pos, key)
	mu := &s.locks[Stripe(pos)]
	mu.Lock()
	cur, err := s.getLocked(pos, key)
	if err != nil {
		mu.Unlock()
		return Object{}, err
	}
	next, changed, err := m(cur)
	if err != nil || !changed {
		mu.Unlock()
		return cur, err
	}
	next = s.flushed(next)
	var covered []coveredElement
	if IsElement(key) {
		if next, err = s.uncoveredLocked(pos, key, next); err != nil {
			mu.Unlock()
			return Object{}, err
		}
	} else if grew(cur.Removed, next.Removed) {
		if covered, err = s.coveredLocked(pos, key, next.Removed); err != nil {
			mu.Unlock()
			return Object{}, err
		}
	}
	if err := next.Check(); err != nil {
		mu.Unlock()
		return Object{}, fmt.Errorf("write %q: %w", key, err)
	}
	now := s.now()
	if cur.Empty() {
		s.filter.add(pos) // before the write can be seen
	}
	b := s.db.NewBatch()
	buf := encodeBufs.Get().(*[]byte)
	*buf = AppendObject((*buf)[:0], next)
	if next.Empty() {
		b.Delete(k, nil) // an element its container's removal covers whole
	} else {
		b.Set(k, *buf, nil) // Set copies key and value into the batch; so does the cache
	}
	for _, e := range covered {
		e.write(b)
	}
	// Applied under the key's lock, synced after it: what the sync costs
	// (an fsync, or under everysec and no just the write to the OS, see
	// walFS) is shared by every writer waiting at the same time. A write
	// whose sync is deferred asks for none: its Pending asks once for all.
	deferred := p != nil
	if deferred {
		err = s.db.Apply(b, pebble.NoSync)
	} else {
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	}
	if err == nil {
		enc := *buf
		if next.Empty() {
			enc = nil
		}
		s.changed(pos, key, cur, next, enc, now)
		for _, e := range covered {
			s.changed(pos, e.name, e.old, e.next, nil, now)
		}
	} else {
		s.cache.del(pos, key)
		for _, e := range covered {
			s.cache.del(pos, e.name)
		}
	}
	mu.Unlock()
	encodeBufs.Put(buf)
	if err == nil {
		s.dirty.Store(true)
		if deferred {
			p.add(s)
		} else {
			err = b.SyncWait()
		}
	}
	b.Close()
	if err != nil {
		return Object{}, fmt.Errorf("write %q: %w", key, err)
	}
	return next, nil
}

// changed brings what the store keeps in memory up to date with a
// committed change of key's object from old to next: the cache (enc is
// next's encoding; nil drops the entry), the live counts, the container's
// tally and the observer. The caller holds the key's stripe lock.
func (s *Store) changed(pos uint64, key []byte, old, next Object, enc []byte, now int64) {
	if enc == nil {
		s.cache.del(pos, key)
	} else {
		s.cache.put(pos, key, enc)
	}
	s.countChange(pos, key, old, next, now)
	s.tallyChange(pos, key, old, next)
	if s.observer != nil {
		s.observer.Changed(pos, key, old, next)
	}
}

// Pending holds writes that are applied but whose durability is still to
// be waited for. A pipeline of writes from one client applies them one
// after another with UpdateDeferred and waits once, before it answers: the
// writes are committed without asking for a sync, and Wait asks once, so
// that they share one WAL write, and under fsync always one fsync, instead
// of each waking Pebble's WAL writer for its own.
type Pending struct {
	mu    sync.Mutex
	n     int
	store *Store
}

// add counts a write to s that is applied but not yet synced.
func (p *Pending) add(s *Store) {
	p.mu.Lock()
	p.n++
	p.store = s
	p.mu.Unlock()
}

// Len is how many writes are waiting.
func (p *Pending) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Wait returns when every write added so far is durable per the store's
// fsync policy, or with the failure. p is empty afterwards and may be used
// again.
func (p *Pending) Wait() error {
	p.mu.Lock()
	n, s := p.n, p.store
	p.n = 0
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := s.syncApplied(); err != nil {
		return fmt.Errorf("sync %d deferred writes: %w", n, err)
	}
	return nil
}

// syncApplied makes every write applied so far durable per the fsync
// policy: one synced empty commit, which Pebble makes durable only with
// everything logged before it (Pebble synced each WAL it rotated away
// from as it closed it). A store closed meanwhile has synced them already:
// Close syncs the WAL before it closes Pebble.
func (s *Store) syncApplied() error {
	if !s.enter() {
		return nil
	}
	defer s.gate.RUnlock()
	return s.db.LogData(nil, pebble.Sync)
}

// encodeBufs reuses the buffers objects are encoded into before Pebble
// copies them into a batch.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// Merge syncs a replica's object for key into the local one and stores the
// result durably. It reports whether anything changed. Merges are not
// subject to MaxSiblings: repair must always be able to converge.
func (s *Store) Merge(key []byte, remote Object) (bool, error) {
	return s.MergeDeferred(nil, key, remote)
}

// MergeDeferred is Merge with the wait for durability left to p, as
// UpdateDeferred; a nil p waits here.
func (s *Store) MergeDeferred(p *Pending, key []byte, remote Object) (bool, error) {
	changed := false
	_, err := s.update(Position(key), key, func(cur Object) (Object, bool, error) {
		next := Sync(cur, remote)
		changed = !next.Equal(cur)
		return next, changed, nil
	}, p)
	return changed, err
}

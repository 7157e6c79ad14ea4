package replica

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// TombstoneOnly reports whether every sibling of o is a tombstone: the key
// is deleted everywhere o's writes reached.
func TombstoneOnly(o Object) bool {
	if len(o.Siblings) == 0 {
		return false
	}
	for _, s := range o.Siblings {
		if !s.Tombstone {
			return false
		}
	}
	return true
}

// Purge removes key's object if it is still a tombstone-only object with
// exactly the given clock: reaping a deletion every replica is known to
// hold. It reports whether it removed it.
func (s *Store) Purge(key []byte, clock Clock) (bool, error) {
	if !s.enter() {
		return false, ErrClosed
	}
	defer s.gate.RUnlock()
	pos := Position(key)
	k := objectKey(pos, key)
	mu := &s.locks[Stripe(pos)]
	mu.Lock()
	defer mu.Unlock()
	cur, err := s.getLocked(pos, key)
	if err != nil || !TombstoneOnly(cur) || !cur.Clock.Equal(clock) {
		return false, err
	}
	if err := s.db.Delete(k, pebble.Sync); err != nil {
		return false, fmt.Errorf("purge %q: %w", key, err)
	}
	s.cache.del(pos, key)
	s.countChange(pos, key, cur, Object{}, s.now())
	s.tallyChange(pos, key, cur, Object{})
	if s.observer != nil {
		s.observer.Changed(pos, key, cur, Object{})
	}
	return true, nil
}

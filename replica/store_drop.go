package replica

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// RangeDropper is an Observer that also learns of ranges dropped whole.
type RangeDropper interface {
	Dropped(from, to uint64)
}

// DropRange deletes every object with a position in [from, to) (to == 0:
// the end of the ring): a partition this node no longer replicates. The
// range must be whole count buckets (a partition of a ring of at most
// 65536).
func (s *Store) DropRange(from, to uint64) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	defer s.lockRange(from, to)()
	end := []byte{prefixObject + 1}
	if to != 0 {
		end = objectKey(to, nil)
	}
	if err := s.db.DeleteRange(objectKey(from, nil), end, pebble.Sync); err != nil {
		return fmt.Errorf("drop range: %w", err)
	}
	bEnd := uint64(countBuckets)
	if to != 0 {
		bEnd = to >> 48
	}
	for b := from >> 48; b < bEnd; b++ {
		s.live[b].Store(0)
		s.expiring[b].Store(0)
	}
	s.cache.delRange(from, to)
	s.dropTallies(from, to)
	if d, ok := s.observer.(RangeDropper); ok {
		d.Dropped(from, to)
	}
	return nil
}

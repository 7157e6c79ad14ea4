package replica

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// flushed drops the siblings written before the last FLUSHALL. The clock
// stays: a replica still holding them drops them too when it syncs.
func (s *Store) flushed(o Object) Object {
	t := s.flushBefore.Load()
	if t == 0 {
		return o
	}
	keep := o.Siblings[:0:0]
	for _, sib := range o.Siblings {
		if sib.Time >= t {
			keep = append(keep, sib)
		}
	}
	if len(keep) == len(o.Siblings) {
		return o
	}
	return Object{Clock: o.Clock, Siblings: keep, Removed: o.Removed}
}

func (s *Store) loadFlush() error {
	v, err := s.getMeta(metaFlush)
	if err != nil || len(v) != 8 {
		return err
	}
	s.flushBefore.Store(int64(binary.BigEndian.Uint64(v)))
	return nil
}

// FlushedBefore returns the time (ms) of the last FLUSHALL applied here.
func (s *Store) FlushedBefore() int64 { return s.flushBefore.Load() }

// Flush applies a FLUSHALL made at t (ms): every object and hint goes, and
// from now on a sibling written before t is dropped wherever it arrives. A
// flush at or before the last one changes nothing.
func (s *Store) Flush(t int64) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	for i := range s.locks {
		s.locks[i].Lock()
	}
	defer func() {
		for i := range s.locks {
			s.locks[i].Unlock()
		}
	}()
	if t <= s.flushBefore.Load() {
		return nil
	}
	b := s.db.NewBatch()
	b.Set(metaKey(metaFlush), binary.BigEndian.AppendUint64(nil, uint64(t)), nil)
	b.DeleteRange([]byte{prefixObject}, []byte{prefixObject + 1}, nil)
	b.DeleteRange([]byte{prefixHint}, []byte{prefixHint + 1}, nil)
	b.DeleteRange([]byte{prefixStandIn}, []byte{prefixStandIn + 1}, nil)
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	s.flushBefore.Store(t)
	s.cache.clear()
	s.dropTallies(0, 0)
	for i := range s.live {
		s.live[i].Store(0)
		s.expiring[i].Store(0)
	}
	s.hints.reset()
	if r, ok := s.observer.(interface{ Reset() }); ok {
		r.Reset()
	}
	s.log.Info("flushed all keys", "before", time.UnixMilli(t).UTC().Format(time.RFC3339Nano))
	return nil
}

package replica

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Node metadata lives under 'm' | name, in the same Pebble database as
// the data, so that it is written in the same WAL and survives what the
// data survives. Every name is listed here; the packages that own one use
// the exported constant.
const (
	metaActor  = "actor"  // the incarnation this data directory mints under (dots.go)
	metaLease  = "lease"  // 8 bytes: dot numbers up to this may have been issued (dots.go)
	metaClean  = "clean"  // present only while the store is closed cleanly (dots.go)
	metaFormat = "format" // the data directory's format version (dots.go)
	metaFlush  = "flush"  // 8 bytes: the time of the last FLUSHALL (store_flush.go)

	// MetaRing is the ring this node uses (gossip).
	MetaRing = "ring"
	// MetaMembers are the members known at the last change (gossip), for
	// the next start to rejoin through.
	MetaMembers = "members"
	// MetaHandoff is the progress of the ring change being taken in
	// (antientropy's handoff).
	MetaHandoff = "handoff"
)

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// GetMeta returns node metadata stored under name, or nil.
func (s *Store) GetMeta(name string) ([]byte, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.gate.RUnlock()
	return s.getMeta(name)
}

// PutMeta stores node metadata under name, durably.
func (s *Store) PutMeta(name string, value []byte) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	if err := s.db.Set(metaKey(name), value, pebble.Sync); err != nil {
		return fmt.Errorf("put meta %s: %w", name, err)
	}
	return nil
}

func (s *Store) getMeta(name string) ([]byte, error) {
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get meta %s: %w", name, err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

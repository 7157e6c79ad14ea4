package replica

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Checkpoint writes a consistent copy of the store into dir, which must
// not exist, while the store keeps serving: Pebble hard-links its tables
// and copies the WAL. The copy forgets the node's actor, so that a node
// restored from it mints dots under a new incarnation and never reuses a
// dot its live self went on to mint after the checkpoint.
func (s *Store) Checkpoint(dir string) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("checkpoint to %s: %w", dir, err)
	}
	cp, err := pebble.Open(dir, &pebble.Options{FS: s.fs, FormatMajorVersion: pebble.FormatNewest, Logger: pebbleLogger{s.log}})
	if err != nil {
		return fmt.Errorf("open checkpoint %s: %w", dir, err)
	}
	err = cp.Delete(metaKey(metaActor), pebble.Sync)
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: forget the actor: %w", dir, err)
	}
	return nil
}

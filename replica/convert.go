package replica

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A data directory written before positions carried the Redis Cluster
// slot keeps its objects, hints and stand-in records under md5 positions
// (LegacyPosition). At its first start with this build each of them moves
// to its key's Position, in batches, before anything else reads the
// store. The move is idempotent (a key already at its position stays), so
// a start that is cut short converts the rest the next time.
//
// Only this node's store is converted here: where each key lives in the
// cluster follows the ring, whose Legacy flag (gossip) makes reads ask the
// keys' legacy replicas too until every node has pushed the keys it holds
// to their replicas under the new positions (antientropy's migration).

// convertBatch is how many keys one committed batch of a conversion moves.
const convertBatch = 4096

// convertPositions moves every object, hint and stand-in record not at
// its key's position to it, and reports how many it moved.
func (s *Store) convertPositions() (int, error) {
	start := time.Now()
	moved := 0
	for _, r := range []struct {
		prefix byte
		// split returns the position's offset in a stored key and the
		// key it places; ok false for a stored key of another shape.
		split func(k []byte) (posAt int, key []byte, ok bool)
	}{
		{prefixObject, func(k []byte) (int, []byte, bool) { return 1, k[9:], len(k) >= 9 }},
		{prefixStandIn, func(k []byte) (int, []byte, bool) { return 1, k[9:], len(k) >= 9 }},
		{prefixHint, func(k []byte) (int, []byte, bool) {
			if len(k) < 2 || len(k) < 2+int(k[1])+8 {
				return 0, nil, false
			}
			at := 2 + int(k[1])
			return at, k[at+8:], true
		}},
	} {
		n, err := s.convertRange(r.prefix, r.split)
		moved += n
		if err != nil {
			return moved, err
		}
	}
	if err := s.syncWAL(); err != nil {
		return moved, fmt.Errorf("convert positions: %w", err)
	}
	if moved > 0 {
		s.log.Info("converted the data directory to slot positions", "moved", moved,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return moved, nil
}

// convertRange moves the records of one key range, whose stored keys
// split shows the position and key of.
func (s *Store) convertRange(prefix byte, split func(k []byte) (int, []byte, bool)) (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return 0, fmt.Errorf("convert positions: %w", err)
	}
	defer it.Close()
	b := s.db.NewBatch()
	moved, inBatch := 0, 0
	flush := func() error {
		if inBatch == 0 {
			return nil
		}
		err := s.db.Apply(b, pebble.Sync)
		b.Close()
		b, inBatch = s.db.NewBatch(), 0
		return err
	}
	defer func() { b.Close() }()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		at, key, ok := split(k)
		if !ok {
			continue
		}
		pos := Position(key)
		if binary.BigEndian.Uint64(k[at:at+8]) == pos {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return moved, fmt.Errorf("convert positions: %w", err)
		}
		nk := bytes.Clone(k)
		binary.BigEndian.PutUint64(nk[at:at+8], pos)
		_ = b.Set(nk, v, nil)
		_ = b.Delete(k, nil)
		moved++
		if inBatch++; inBatch == convertBatch {
			if err := flush(); err != nil {
				return moved, fmt.Errorf("convert positions: %w", err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return moved, fmt.Errorf("convert positions: %w", err)
	}
	if err := flush(); err != nil {
		return moved, fmt.Errorf("convert positions: %w", err)
	}
	return moved, nil
}

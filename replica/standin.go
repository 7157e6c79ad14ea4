package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A fallback coordinates a write for a key it does not replicate when no
// primary can be reached. It has no replica of the key to learn its own
// earlier versions from, so it must not mint under its incarnation: a clock
// entry "actor: n" claims every dot of that actor for the key up to n, and
// the fallback would claim dots its incarnation minted for the key as a
// primary, or as a fallback before, without holding them.
//
// It mints instead under a stand-in actor (the incarnation plus "/" and a
// number from the sequence) kept in a stand-in record for the key, with
// every object the stand-in wrote: its next fallback writes to the key
// reuse the actor and build on the record, so a key's clock grows by one
// entry per outage, not one per write, and the record always holds every
// dot its actor minted for the key. A record is reused only by the
// incarnation that made it (a crash may have lost its last version) and
// only for standInLife; after that a new stand-in actor starts.
//
// Records live under 'f' | position | key, valued stored time (8 bytes,
// ms) | length-prefixed actor | encoded object.

const prefixStandIn = 'f'

// defaultStandInLife is how long a stand-in actor is reused when the hint
// window is not set: about as long as one outage.
const defaultStandInLife = time.Hour

func standInKey(pos uint64, key []byte) []byte {
	k := objectKey(pos, key)
	k[0] = prefixStandIn
	return k
}

// StandInMutation computes a fallback's write from the stand-in record's
// object cur (empty for a new stand-in actor) and the dot minted for it.
type StandInMutation func(cur Object, dot Dot) (next Object, changed bool, err error)

// StandIn runs m as a fallback's write of key: under the key's lock it
// mints a dot under the key's stand-in actor, applies m to the record and
// stores the result in it, durably per the fsync policy. It returns the
// object m made, for the fallback to send to the key's replicas.
func (s *Store) StandIn(pos uint64, key []byte, m StandInMutation) (Object, error) {
	if !s.enter() {
		return Object{}, ErrClosed
	}
	defer s.gate.RUnlock()
	k := standInKey(pos, key)
	mu := &s.locks[Stripe(pos)]
	mu.Lock()
	actor, stored, cur, err := s.standInLocked(k, key)
	if err != nil {
		mu.Unlock()
		return Object{}, err
	}
	if actor == "" {
		if actor, err = s.subActor(); err != nil {
			mu.Unlock()
			return Object{}, err
		}
		stored = s.now()
	}
	n, err := s.nextNumber()
	if err != nil {
		mu.Unlock()
		return Object{}, err
	}
	next, changed, err := m(cur, Dot{actor, n})
	if err == nil && changed {
		next = s.flushed(next)
		err = next.Check()
	}
	if err != nil || !changed {
		mu.Unlock()
		return next, err
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(stored))
	v = AppendObject(AppendBytes(v, []byte(actor)), next)
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(k, v, nil)
	err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	mu.Unlock()
	if err == nil {
		s.dirty.Store(true)
		err = b.SyncWait()
	}
	if err != nil {
		return Object{}, fmt.Errorf("stand-in write %q: %w", key, err)
	}
	return next, nil
}

// standInLocked reads key's stand-in record: its actor, when it was made,
// and its object. The actor is "" when there is no record this run may
// reuse. The caller holds the key's lock.
func (s *Store) standInLocked(k, key []byte) (actor string, stored int64, o Object, err error) {
	v, had, err := s.getRaw(k)
	if err != nil || !had {
		return "", 0, Object{}, err
	}
	d := NewReader(v)
	var ts [8]byte
	for i := range ts {
		ts[i] = d.Byte()
	}
	a := string(d.Bytes())
	if d.Failed() {
		s.skipCorrupt("stand-in record", key, ErrCorrupt)
		return "", 0, Object{}, nil
	}
	if o, err = DecodeObject(d.Rest()); err != nil {
		s.skipCorrupt("stand-in record", key, err)
		return "", 0, Object{}, nil
	}
	stored = int64(binary.BigEndian.Uint64(ts[:]))
	if !strings.HasPrefix(a, s.actor+"/") || s.now()-stored > s.standInLife().Milliseconds() {
		return "", 0, Object{}, nil
	}
	return a, stored, o, nil
}

// standInLife is how long a stand-in actor is reused: the hint window,
// the time a target keeps receiving hints after it went away.
func (s *Store) standInLife() time.Duration {
	if w := s.hints.window(); w > 0 {
		return w
	}
	return defaultStandInLife
}

// ReapStandIns deletes the stand-in records that can no longer be reused:
// older than their life, or made by an earlier incarnation. It returns how
// many it deleted.
func (s *Store) ReapStandIns() (int, error) {
	if !s.enter() {
		return 0, ErrClosed
	}
	defer s.gate.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixStandIn}, UpperBound: []byte{prefixStandIn + 1}})
	if err != nil {
		return 0, fmt.Errorf("reap stand-in records: %w", err)
	}
	var stale [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		if _, _, _, err := s.standInAt(k); errors.Is(err, errStale) {
			stale = append(stale, append([]byte(nil), k...))
		}
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("reap stand-in records: %w", err)
	}
	reaped := 0
	for _, k := range stale {
		pos := binary.BigEndian.Uint64(k[1:9])
		mu := &s.locks[Stripe(pos)]
		mu.Lock()
		if _, _, _, err := s.standInAt(k); errors.Is(err, errStale) {
			if err := s.db.Delete(k, pebble.NoSync); err != nil {
				mu.Unlock()
				return reaped, fmt.Errorf("reap stand-in record: %w", err)
			}
			reaped++
		}
		mu.Unlock()
	}
	return reaped, nil
}

// errStale marks a stand-in record that may not be reused.
var errStale = errors.New("replica: stale stand-in record")

// standInAt reads the record at k and returns errStale unless this run
// may reuse it.
func (s *Store) standInAt(k []byte) (string, int64, Object, error) {
	actor, stored, o, err := s.standInLocked(k, k[9:])
	if err == nil && actor == "" {
		err = errStale
	}
	return actor, stored, o, err
}

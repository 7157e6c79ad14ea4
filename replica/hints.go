package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

const prefixHint = 'h' // 'h' | len(target) | target | position | key

// ErrHintRefused is returned when a hint would exceed the bounds for its
// target: past them, anti-entropy is the repair.
var ErrHintRefused = errors.New("replica: hint refused")

// HintLimits bound the hints a node keeps for each unreachable node.
type HintLimits struct {
	// MaxBytes caps the hint bytes held for one target.
	MaxBytes int64
	// Window is how long after its first pending hint a target still gets
	// new ones.
	Window time.Duration
	// TTL is how old a hint may get before it is dropped instead of
	// delivered: the tombstone grace period, so that an old hint cannot
	// bring back a value whose deletion was reaped meanwhile.
	TTL time.Duration
}

// Hint is one hinted write: the key, the object, and when it was first
// stored (ms).
type Hint struct {
	Key    []byte
	Object Object
	Stored int64
}

// A hint's value is the time it was first stored (8 bytes, ms) and the
// encoded object.
func hintValue(stored int64, o Object) []byte {
	return AppendObject(binary.BigEndian.AppendUint64(nil, uint64(stored)), o)
}

func parseHintValue(v []byte) (int64, Object, error) {
	if len(v) < 8 {
		return 0, Object{}, ErrCorrupt
	}
	o, err := DecodeObject(v[8:])
	return int64(binary.BigEndian.Uint64(v[:8])), o, err
}

// HintStats describes the hints held for one target.
type HintStats struct {
	Count, Bytes int64
	// Since is when the oldest pending hint was stored (this run).
	Since time.Time
}

// hints is the store's bookkeeping of its hint range.
type hints struct {
	limits HintLimits
	// pending counts the hints held, so that reads skip the hint range
	// when there are none.
	pending atomic.Int64
	mu      sync.Mutex
	stats   map[string]*HintStats
	// delivered counts the hints handed to their target since start;
	// refused those not kept, past a target's byte cap or time window.
	delivered, refused int64
}

func hintKey(target string, pos uint64, key []byte) []byte {
	k := make([]byte, 0, 2+len(target)+8+len(key))
	k = append(k, prefixHint, byte(len(target)))
	k = append(k, target...)
	k = append(k, objectKey(pos, key)[1:9]...)
	return append(k, key...)
}

func hintPrefix(target string) []byte {
	return append([]byte{prefixHint, byte(len(target))}, target...)
}

// parseHintKey splits a hint key into target and key.
func parseHintKey(k []byte) (target string, key []byte, ok bool) {
	if len(k) < 2 || k[0] != prefixHint || len(k) < 2+int(k[1])+8 {
		return "", nil, false
	}
	n := int(k[1])
	return string(k[2 : 2+n]), k[2+n+8:], true
}

// reset forgets every hint's bookkeeping: the hint range was dropped whole
// (FLUSHALL).
func (h *hints) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats = map[string]*HintStats{}
	h.pending.Store(0)
}

// window is the hint window of the limits set (0: none).
func (h *hints) window() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.limits.Window
}

// SetHintLimits sets the bounds new hints are checked against.
func (s *Store) SetHintLimits(l HintLimits) {
	s.hints.mu.Lock()
	s.hints.limits = l
	s.hints.mu.Unlock()
}

// countHints initializes the hint bookkeeping with one scan at open.
func (s *Store) countHints() error {
	s.hints.stats = map[string]*HintStats{}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixHint}, UpperBound: []byte{prefixHint + 1}})
	if err != nil {
		return fmt.Errorf("count hints: %w", err)
	}
	defer it.Close()
	now := time.Now()
	for ok := it.First(); ok; ok = it.Next() {
		target, _, ok := parseHintKey(it.Key())
		if !ok {
			continue
		}
		st := s.hints.stats[target]
		if st == nil {
			st = &HintStats{Since: now}
			s.hints.stats[target] = st
		}
		st.Count++
		s.hints.pending.Add(1)
		st.Bytes += int64(len(it.Key()) + len(it.Value()))
	}
	return it.Error()
}

// Hint stores o as a hint for target: a write that target missed, to hand
// over when it is back. A hint for a key already hinted is merged into it.
// It returns ErrHintRefused past the target's byte cap or time window.
func (s *Store) Hint(target string, key []byte, o Object) error {
	return s.HintAll(target, []KeyObject{{key, o}})
}

// admitHint checks a hint of grow more bytes for target against the
// limits and counts it.
func (s *Store) admitHint(target string, grow int64, had bool) error {
	h := &s.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.stats[target]
	if st == nil || st.Count == 0 {
		st = &HintStats{Since: time.Now()}
		h.stats[target] = st
	}
	if h.limits.MaxBytes > 0 && st.Bytes+grow > h.limits.MaxBytes {
		h.refused++
		return fmt.Errorf("%w: %d bytes of hints for %s already (limit %d)", ErrHintRefused, st.Bytes, target, h.limits.MaxBytes)
	}
	if h.limits.Window > 0 && time.Since(st.Since) > h.limits.Window {
		h.refused++
		return fmt.Errorf("%w: %s has been unreachable longer than the hint window (%s)", ErrHintRefused, target, h.limits.Window)
	}
	st.Bytes += grow
	if !had {
		st.Count++
		s.hints.pending.Add(1)
	}
	return nil
}

func (s *Store) unadmitHint(target string, grow int64, had bool) {
	h := &s.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.stats[target]; st != nil {
		st.Bytes -= grow
		if !had {
			st.Count--
			s.hints.pending.Add(-1)
		}
	}
}

func (s *Store) getRaw(k []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// HintTargets returns the targets this node holds hints for.
func (s *Store) HintTargets() map[string]HintStats {
	h := &s.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]HintStats, len(h.stats))
	for t, st := range h.stats {
		if st.Count > 0 {
			out[t] = *st
		}
	}
	return out
}

// HintCounts returns the hints pending on this node and those delivered
// since it started.
func (s *Store) HintCounts() (pending, delivered int64) {
	t := s.HintTotals()
	return t.Pending, t.Delivered
}

// HintTotals are a node's hint figures: what it holds for others, against
// the per-target cap, and what it refused to keep.
type HintTotals struct {
	Pending, Bytes, Delivered, Refused int64
	// MaxBytes is the cap per target (0: none).
	MaxBytes int64
}

// HintTotals returns the node's hint figures.
func (s *Store) HintTotals() HintTotals {
	h := &s.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	t := HintTotals{Delivered: h.delivered, Refused: h.refused, MaxBytes: h.limits.MaxBytes}
	for _, st := range h.stats {
		t.Pending += st.Count
		t.Bytes += st.Bytes
	}
	return t
}

// Hints returns limit hints for target after the hint key after (nil:
// from the first), in key order, and more to finish the last one's slot
// (up to hintsPerPage more): the hints of a write of several objects,
// which share a slot, come in one page.
func (s *Store) Hints(target string, after []byte, limit int) ([]Hint, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.gate.RUnlock()
	prefix := hintPrefix(target)
	lower := prefix
	if after != nil {
		lower = append(hintKey(target, Position(after), after), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Hint
	var corrupt [][]byte
	lastSlot := -1
	for ok := it.First(); ok; ok = it.Next() {
		_, key, _ := parseHintKey(it.Key())
		slot := int(Slot(containerKey(key)))
		if len(out) >= limit && (slot != lastSlot || len(out) >= limit+hintsPerPage) {
			break // a page ends between slots, so a batch's hints come whole
		}
		lastSlot = slot
		stored, o, err := parseHintValue(bytes.Clone(it.Value()))
		if err != nil {
			// It can never be delivered; it must not hold up the rest.
			s.skipCorrupt("hint", key, err)
			corrupt = append(corrupt, bytes.Clone(key))
			continue
		}
		out = append(out, Hint{bytes.Clone(key), o, stored})
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	for _, key := range corrupt {
		s.dropRawHint(target, key)
	}
	return out, nil
}

// dropRawHint deletes target's hint for key whatever it holds; the caller
// holds the gate.
func (s *Store) dropRawHint(target string, key []byte) {
	if _, err := s.deleteHint(target, key, func([]byte) bool { return true }, false); err != nil {
		s.log.Warn("deleting an undecodable hint", "target", target, "err", err)
	}
}

// prefixEnd returns the first key after every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// DeliveredHint deletes target's hint for key once the target has stored
// sent, unless the hint grew since it was read (then it stays, to be sent
// again). It reports whether the hint is gone.
func (s *Store) DeliveredHint(target string, key []byte, sent Object) (bool, error) {
	return s.removeHint(target, key, sent, true)
}

// DropHint deletes target's hint for key undelivered (it expired), unless
// it grew since it was read. It reports whether the hint is gone.
func (s *Store) DropHint(target string, key []byte, read Object) (bool, error) {
	return s.removeHint(target, key, read, false)
}

func (s *Store) removeHint(target string, key []byte, sent Object, delivered bool) (bool, error) {
	if !s.enter() {
		return false, ErrClosed
	}
	defer s.gate.RUnlock()
	enc := AppendObject(nil, sent)
	return s.deleteHint(target, key, func(cur []byte) bool { return len(cur) >= 8 && bytes.Equal(cur[8:], enc) }, delivered)
}

// deleteHint deletes target's hint for key if match accepts what it holds,
// and reports whether the hint is gone; the caller holds the gate.
func (s *Store) deleteHint(target string, key []byte, match func(stored []byte) bool, delivered bool) (bool, error) {
	pos := Position(key)
	hk := hintKey(target, pos, key)
	mu := &s.locks[Stripe(pos)]
	mu.Lock()
	defer mu.Unlock()
	cur, had, err := s.getRaw(hk)
	if err != nil || !had {
		return !had, err
	}
	if !match(cur) {
		return false, nil
	}
	if err := s.db.Delete(hk, pebble.Sync); err != nil {
		return false, fmt.Errorf("delete hint for %s: %w", target, err)
	}
	s.forgetHint(target, int64(len(hk)+len(cur)), delivered)
	return true, nil
}

// forgetHint takes a deleted hint of size bytes out of target's counts.
func (s *Store) forgetHint(target string, size int64, delivered bool) {
	h := &s.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.stats[target]; st != nil {
		st.Count--
		s.hints.pending.Add(-1)
		st.Bytes -= size
	}
	if delivered {
		h.delivered++
	}
}

// Read returns what this node holds for key: its replica's object merged
// with any hints it keeps for others. A fallback answers reads this way.
func (s *Store) Read(key []byte) (Object, error) { return s.ReadAt(Position(key), key) }

// ReadAt is Read for a caller that has placed the key already: pos must be
// Position(key).
func (s *Store) ReadAt(pos uint64, key []byte) (Object, error) {
	o, err := s.GetAt(pos, key)
	if err != nil || s.hints.pending.Load() == 0 {
		return o, err
	}
	targets := s.HintTargets()
	if !s.enter() {
		return Object{}, ErrClosed
	}
	defer s.gate.RUnlock()
	for target := range targets {
		raw, had, err := s.getRaw(hintKey(target, pos, key))
		if err != nil {
			return Object{}, err
		}
		if !had {
			continue
		}
		_, h, err := parseHintValue(raw)
		if err != nil {
			s.skipCorrupt("hint", key, err)
			continue
		}
		o = Sync(o, h)
	}
	return o, nil
}

// HintTTL returns how old a hint may get before it is dropped undelivered;
// 0 means no limit.
func (s *Store) HintTTL() time.Duration {
	s.hints.mu.Lock()
	defer s.hints.mu.Unlock()
	return s.hints.limits.TTL
}

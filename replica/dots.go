package replica

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// A dot is never minted twice, and a clock claims only what its minter saw
// (DESIGN.md). Two mechanisms here carry that:
//
//   - One sequence per node, shared by every key: a dot's number is the
//     next value of a node-wide counter, leased durably in blocks, so that
//     a node that forgot a key's clock (a reaped tombstone, a FLUSHALL, a
//     partition dropped and taken back) still never reuses a number.
//   - Incarnations: the node's actor is its id plus a random suffix that
//     changes with a new, restored or converted data directory and at every
//     start that does not follow a clean stop. After a power cut under
//     fsync everysec the node has lost the last writes it minted while a
//     peer may hold them; under a new actor its next write cannot claim to
//     have seen them.
//
// Store.Mint hands out dots; the lease and the marker of a clean stop are
// synced to disk whatever storage.fsync says.

// Data directory formats. Version 2 made dot numbers node-wide (before,
// per-key counters); version 3 put the Redis Cluster slot in positions
// (convert.go). A directory of an earlier format is converted and
// continues under a new incarnation, whose numbers cannot meet the old
// ones.
const (
	formatV2      = 2
	formatV3      = 3
	formatCurrent = formatV3
)

// leaseBlock is how many dot numbers one durable lease covers: a write of
// the lease every 65536 writes.
const leaseBlock = 1 << 16

// ErrLease is a failure to make a new block of dot numbers durable: the
// write that needed one is refused rather than risk a number that a restart
// could issue again.
var ErrLease = errors.New("replica: cannot lease dot numbers")

// sequence is the node-wide dot counter.
type sequence struct {
	last   atomic.Uint64 // the last number issued
	leased atomic.Uint64 // numbers up to this may be issued
	mu     sync.Mutex    // held while a new lease is written
}

// Mint returns a new dot under this node's incarnation. Its number has
// never been issued by this data directory and never will be again, on any
// key; it is greater than every number issued before.
func (s *Store) Mint() (Dot, error) {
	n, err := s.nextNumber()
	return Dot{s.actor, n}, err
}

// nextNumber issues the next number of the sequence, leasing a new block
// first when the current one is used up.
func (s *Store) nextNumber() (uint64, error) {
	seq := &s.seq
	n := seq.last.Add(1)
	if n <= seq.leased.Load() {
		return n, nil
	}
	seq.mu.Lock()
	defer seq.mu.Unlock()
	for n > seq.leased.Load() {
		to := seq.leased.Load() + leaseBlock
		if err := s.setDurable(metaLease, binary.BigEndian.AppendUint64(nil, to)); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrLease, err)
		}
		seq.leased.Store(to)
	}
	return n, nil
}

// Issued returns the last dot number this node has issued.
func (s *Store) Issued() uint64 { return s.seq.last.Load() }

// Vouches reports whether c claims nothing of this node's current actors
// beyond what it has issued: a context that names this incarnation (or a
// stand-in actor of it) above the last number issued was not made here,
// and a write under it would cover dots this node has yet to mint.
func (s *Store) Vouches(c Clock) bool {
	issued := s.Issued()
	for _, e := range c {
		if e.Counter > issued && (e.Actor == s.actor || strings.HasPrefix(e.Actor, s.actor+"/")) {
			return false
		}
	}
	return true
}

// subActor returns a new stand-in actor of this incarnation: a fallback
// mints a key's writes under one while it keeps the key's stand-in record
// (see standin.go). Its suffix comes from the sequence, so it is never
// made twice.
func (s *Store) subActor() (string, error) {
	n, err := s.nextNumber()
	if err != nil {
		return "", err
	}
	return s.actor + "/" + strconv.FormatUint(n, 36), nil
}

// setDurable stores node metadata and makes it durable at once, whatever
// the fsync policy: a real fsync of the WAL, not just Pebble's sync, which
// walFS defers under everysec and no.
func (s *Store) setDurable(name string, value []byte) error {
	if err := s.db.Set(metaKey(name), value, pebble.Sync); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := s.fs.SyncWAL(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// startIncarnation chooses the actor this run mints under and continues
// the sequence past the last lease. It keeps the stored actor only after a
// clean stop of a directory of the current format made for this node id;
// otherwise it makes a new one and says why. The clean-stop marker is
// removed (durably) before the store serves anything, so that any stop
// from now on that is not Close counts as unclean.
func (s *Store) startIncarnation(nodeID string) error {
	var actor, clean, format, lease []byte
	for _, m := range []struct {
		name string
		v    *[]byte
	}{{metaActor, &actor}, {metaClean, &clean}, {metaFormat, &format}, {metaLease, &lease}} {
		var err error
		if *m.v, err = s.getMeta(m.name); err != nil {
			return err
		}
	}
	if len(lease) == 8 {
		n := binary.BigEndian.Uint64(lease)
		s.seq.last.Store(n)
		s.seq.leased.Store(n)
	}
	reason := ""
	id, _, _ := strings.Cut(string(actor), "#")
	switch {
	case actor == nil:
		reason = "new data directory"
	case id != nodeID:
		reason = "node id changed"
	case len(format) != 1 || format[0] != formatCurrent:
		reason = "converted from an earlier format"
	case clean == nil:
		reason = "the last stop was not clean"
	}
	if actor != nil && (len(format) != 1 || format[0] < formatV3) {
		if _, err := s.convertPositions(); err != nil {
			return err
		}
	}
	s.actor = string(actor)
	b := s.db.NewBatch()
	defer b.Close()
	if reason != "" {
		var r [5]byte
		if _, err := rand.Read(r[:]); err != nil {
			return fmt.Errorf("new actor: %w", err)
		}
		s.actor = nodeID + "#" + strings.ToLower(base32.StdEncoding.EncodeToString(r[:]))
		_ = b.Set(metaKey(metaActor), []byte(s.actor), nil)
		_ = b.Set(metaKey(metaFormat), []byte{formatCurrent}, nil)
		s.log.Info("new incarnation", "actor", s.actor, "reason", reason, "sequence", s.seq.last.Load())
	}
	_ = b.Delete(metaKey(metaClean), nil)
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return fmt.Errorf("store actor: %w", err)
	}
	if err := s.fs.SyncWAL(); err != nil {
		return fmt.Errorf("store actor: %w", err)
	}
	return nil
}

// markClean records, durably, that the store is closing cleanly: every
// number it issued is in what it has synced, so the next start may go on
// under the same incarnation.
func (s *Store) markClean() error {
	return s.setDurable(metaClean, []byte{1})
}

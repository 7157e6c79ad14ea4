package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Fsync says when a write is made durable, with Redis's appendfsync meanings.
type Fsync int

// The fsync policies.
const (
	// FsyncEverySec syncs the WAL once a second: a crash of the machine may
	// lose the last second of writes, a crash of the process loses nothing.
	FsyncEverySec Fsync = iota
	// FsyncAlways syncs before a write is acknowledged; concurrent writes
	// share one fsync.
	FsyncAlways
	// FsyncNo leaves syncing to the operating system; a crash of the
	// process still loses nothing.
	FsyncNo
)

// String is the policy's storage.fsync spelling.
func (f Fsync) String() string {
	return [...]string{FsyncEverySec: "everysec", FsyncAlways: "always", FsyncNo: "no"}[f]
}

// ParseFsync parses a storage.fsync setting.
func ParseFsync(s string) (Fsync, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "everysec":
		return FsyncEverySec, nil
	case "no":
		return FsyncNo, nil
	}
	return 0, fmt.Errorf("%q is not one of always, everysec, no", s)
}

// Key prefixes of the Pebble key ranges.
const (
	prefixObject = 'o' // 'o' | position (8 bytes, big-endian) | key
	prefixMeta   = 'm' // 'm' | name
)

// countBuckets are the ranges live keys are counted in: the top 16 bits of
// their position.
const countBuckets = 1 << 16

// Observer learns of every change to the stored objects, under the key's
// lock, in the order the changes happen: anti-entropy keeps its trees so.
// next is the empty object when the key was removed.
type Observer interface {
	Changed(pos uint64, key []byte, old, next Object)
}

// ErrClosed is returned by a store that has been closed.
var ErrClosed = errors.New("replica: store closed")

// Options configure a Store.
type Options struct {
	// NodeID names this node; the store's actor is derived from it.
	NodeID string
	Fsync  Fsync
	// CacheSize is Pebble's block cache in bytes.
	CacheSize int64
	// ObjectCache bounds the cache of recently used objects in bytes; 0:
	// none.
	ObjectCache int64
	Logger      *slog.Logger
	// Now returns the wall clock in ms; nil means time.Now.
	Now func() int64
	// FS is the filesystem Pebble uses; nil means the operating system's.
	// Tests pass a crashable in-memory one to see what a power cut keeps.
	FS vfs.FS
}

// Store is one node's replica: versioned objects in Pebble, keyed by ring
// position so that partitions are contiguous ranges.
//
// Writes to one key are serialized by a striped lock around read, modify and
// write; the fsync of a durable write happens after the lock is released, so
// concurrent writers to different keys share one WAL sync.
type Store struct {
	db    *pebble.DB
	fs    *walFS
	fsync Fsync
	actor string   // the incarnation this run mints under (dots.go)
	seq   sequence // the node-wide dot numbers
	now   func() int64
	log   *slog.Logger

	hints    hints
	cache    *objCache
	filter   *keyFilter // positions that may have an object
	observer Observer
	locks    [Stripes]sync.Mutex        // see Stripe
	tallies  [Stripes]map[string]*tally // per stripe, under its lock: containers' counts (store_tally.go)
	live     []atomic.Int64             // per count bucket: keys with a live sibling
	expiring []atomic.Int64             // per count bucket: live keys whose value has an expiry
	// flushBefore is the time (ms) of the last FLUSHALL: siblings written
	// before it are dropped wherever they arrive.
	flushBefore atomic.Int64
	dirty       atomic.Bool // written since the last everysec sync
	// corrupt counts the stored objects and hints found undecodable and
	// skipped since the store opened.
	corrupt atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
	// gate is held shared by every operation and exclusively by Close, so
	// that Pebble is never used after it is closed.
	gate   sync.RWMutex
	closed bool
}

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 64 << 20
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	base := opts.FS
	if base == nil {
		base = vfs.Default
	}
	fs := newWALFS(base, opts.Fsync, opts.Logger)
	po := &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		Logger:             pebbleLogger{opts.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       64 << 20,
		EventListener:      stallLogger(opts.Logger),
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open pebble in %s: %w", dir, err)
	}
	s := &Store{
		db:       db,
		fs:       fs,
		fsync:    opts.Fsync,
		now:      opts.Now,
		log:      opts.Logger,
		cache:    newObjCache(opts.ObjectCache),
		filter:   newKeyFilter(filterFirstLayer),
		live:     make([]atomic.Int64, countBuckets),
		expiring: make([]atomic.Int64, countBuckets),
		stop:     make(chan struct{}),
	}
	if err := s.startIncarnation(opts.NodeID); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadFlush(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.countLive(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.countHints(); err != nil {
		db.Close()
		return nil, err
	}
	if s.fsync == FsyncEverySec {
		s.wg.Add(1)
		go s.syncEverySecond()
	}
	return s, nil
}

func (s *Store) syncEverySecond() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if s.dirty.Swap(false) {
				start := time.Now()
				if err := s.syncWAL(); err != nil {
					s.log.Error("everysec fsync failed", "err", err)
				}
				slowSync(s.log, "everysec WAL fsync", time.Since(start))
			}
		}
	}
}

// syncWAL makes every write so far durable: a Pebble sync, then a real
// fsync of the WAL whatever the policy.
func (s *Store) syncWAL() error {
	return errors.Join(s.db.LogData(nil, pebble.Sync), s.fs.SyncWAL())
}

// Close syncs and closes the store. Writes that were acknowledged are on
// disk when it returns, whatever the fsync policy.
func (s *Store) Close() error {
	s.gate.Lock()
	defer s.gate.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	s.wg.Wait()
	err := s.syncWAL()
	if err == nil {
		err = s.markClean()
	}
	return errors.Join(err, s.db.Close())
}

// Actor is the incarnation this replica mints dots under.
func (s *Store) Actor() string { return s.actor }

// Now is the store's clock in ms.
func (s *Store) Now() int64 { return s.now() }

func objectKey(pos uint64, key []byte) []byte {
	k := make([]byte, 9+len(key))
	k[0] = prefixObject
	binary.BigEndian.PutUint64(k[1:9], pos)
	copy(k[9:], key)
	return k
}

// enter takes the gate for one operation; it reports false, holding
// nothing, once the store is closed.
func (s *Store) enter() bool {
	s.gate.RLock()
	if s.closed {
		s.gate.RUnlock()
		return false
	}
	return true
}

// SetObserver registers the observer of changes. It must be called before
// the store is used concurrently.
func (s *Store) SetObserver(o Observer) { s.observer = o }

// FlushMemtable writes the memtable out to sstables.
func (s *Store) FlushMemtable() error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	return s.db.Flush()
}

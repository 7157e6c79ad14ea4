package replica

import (
	"bytes"
	"context"
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

const (
	// Writes to a key take the lock of its stripe: the top stripeBits of
	// its ring position, so that a stripe is a contiguous range and a
	// range scan under its stripe's lock sees no write in progress.
	stripeBits   = 12
	lockStripes  = 1 << stripeBits
	countBuckets = 1 << 16 // live keys are counted per top 16 bits of position
)

func stripe(pos uint64) uint64 { return pos >> (64 - stripeBits) }

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
	locks    [lockStripes]sync.Mutex
	live     []atomic.Int64 // per count bucket: keys with a live sibling
	expiring []atomic.Int64 // per count bucket: live keys whose value has an expiry
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

// countLive initializes the live-key counters and the key filter with one
// scan of the objects.
func (s *Store) countLive() error {
	now := s.now()
	return s.scan(0, 0, func(pos uint64, _ []byte, o Object) bool {
		s.filter.add(pos)
		s.countChange(pos, Object{}, o, now)
		return true
	})
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

// Get returns key's object, or the empty object if the key was never
// written.
func (s *Store) Get(key []byte) (Object, error) { return s.GetAt(Position(key), key) }

// GetAt is Get for a caller that has placed the key already: pos must be
// Position(key). Hashing a key costs about as much as a cached read, so a
// request hashes its key once, not at every layer.
func (s *Store) GetAt(pos uint64, key []byte) (Object, error) {
	if !s.enter() {
		return Object{}, ErrClosed
	}
	defer s.gate.RUnlock()
	if o, ok := s.cache.get(pos, key); ok {
		return o, nil
	}
	// A miss fills the cache under the key's lock, so that it cannot put
	// back an object a concurrent write just replaced.
	mu := &s.locks[stripe(pos)]
	mu.Lock()
	defer mu.Unlock()
	return s.getLocked(pos, key)
}

// getLocked reads key's object through the cache; the caller holds the
// key's stripe lock.
func (s *Store) getLocked(pos uint64, key []byte) (Object, error) {
	if o, ok := s.cache.get(pos, key); ok {
		return o, nil
	}
	if !s.filter.mayContain(pos) {
		return Object{}, nil // never written: nothing to cache either
	}
	enc, err := s.get(objectKey(pos, key))
	if err != nil || enc == nil {
		return Object{}, err
	}
	o, err := DecodeObject(enc)
	if err != nil {
		// What cannot be read is treated as never written, so that the
		// next write or repair replaces it instead of failing forever.
		s.skipCorrupt("object", key, err)
		return Object{}, nil
	}
	s.cache.put(pos, key, enc)
	return o, nil
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

// get returns a copy of the encoded object stored at k, nil if none is.
func (s *Store) get(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", k[9:], err)
	}
	enc := bytes.Clone(v)
	closer.Close()
	return enc, nil
}

// Mutation computes a key's next object from its current one. It returns
// changed=false to leave the stored object as it is.
type Mutation func(cur Object) (next Object, changed bool, err error)

// Update applies m to key's object atomically with respect to every other
// Update of the key, stores the result durably per the fsync policy, and
// returns the object now stored. An error from m stores nothing. Under a
// context from DeferSync it returns once the write is applied and visible,
// and leaves the wait for its durability to the Pending.
func (s *Store) Update(ctx context.Context, key []byte, m Mutation) (Object, error) {
	return s.UpdateAt(ctx, Position(key), key, m)
}

// UpdateAt is Update for a caller that has placed the key already: pos
// must be Position(key).
func (s *Store) UpdateAt(ctx context.Context, pos uint64, key []byte, m Mutation) (Object, error) {
	if !s.enter() {
		return Object{}, ErrClosed
	}
	defer s.gate.RUnlock()
	k := objectKey(pos, key)
	mu := &s.locks[stripe(pos)]
	mu.Lock()
	cur, err := s.getLocked(pos, key)
	if err != nil {
		mu.Unlock()
		return Object{}, err
	}
	next, changed, err := m(cur)
	if err != nil || !changed {
		mu.Unlock()
		return cur, err
	}
	next = s.flushed(next)
	if err := next.Check(); err != nil {
		mu.Unlock()
		return Object{}, fmt.Errorf("write %q: %w", key, err)
	}
	now := s.now()
	if cur.Empty() {
		s.filter.add(pos) // before the write can be seen
	}
	b := s.db.NewBatch()
	buf := encodeBufs.Get().(*[]byte)
	*buf = AppendObject((*buf)[:0], next)
	b.Set(k, *buf, nil) // Set copies key and value into the batch; so does the cache
	// Applied under the key's lock, synced after it: what the sync costs
	// (an fsync, or under everysec and no just the write to the OS, see
	// walFS) is shared by every writer waiting at the same time. A write
	// whose sync is deferred asks for none: its Pending asks once for all.
	p, deferred := ctx.Value(pendingKey{}).(*Pending)
	if deferred {
		err = s.db.Apply(b, pebble.NoSync)
	} else {
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	}
	if err == nil {
		s.cache.put(pos, key, *buf)
		s.countChange(pos, cur, next, now)
		if s.observer != nil {
			s.observer.Changed(pos, key, cur, next)
		}
	} else {
		s.cache.del(pos, key)
	}
	mu.Unlock()
	encodeBufs.Put(buf)
	if err == nil {
		s.dirty.Store(true)
		if deferred {
			p.add(s)
		} else {
			err = b.SyncWait()
		}
	}
	b.Close()
	if err != nil {
		return Object{}, fmt.Errorf("write %q: %w", key, err)
	}
	return next, nil
}

// Pending holds writes that are applied but whose durability is still to
// be waited for. A pipeline of writes from one client applies them one
// after another under DeferSync and waits once, before it answers: the
// writes are committed without asking for a sync, and Wait asks once, so
// that they share one WAL write, and under fsync always one fsync, instead
// of each waking Pebble's WAL writer for its own.
type Pending struct {
	mu    sync.Mutex
	n     int
	store *Store
}

type pendingKey struct{}

// DeferSync returns a context under which Store.Update leaves the wait for
// durability to p. Whoever makes it must call p.Wait before it reports any
// of those writes as done.
func DeferSync(ctx context.Context, p *Pending) context.Context {
	return context.WithValue(ctx, pendingKey{}, p)
}

// add counts a write to s that is applied but not yet synced.
func (p *Pending) add(s *Store) {
	p.mu.Lock()
	p.n++
	p.store = s
	p.mu.Unlock()
}

// Len is how many writes are waiting.
func (p *Pending) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Wait returns when every write added so far is durable per the store's
// fsync policy, or with the failure. p is empty afterwards and may be used
// again.
func (p *Pending) Wait() error {
	p.mu.Lock()
	n, s := p.n, p.store
	p.n = 0
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := s.syncApplied(); err != nil {
		return fmt.Errorf("sync %d deferred writes: %w", n, err)
	}
	return nil
}

// syncApplied makes every write applied so far durable per the fsync
// policy: one synced empty commit, which Pebble makes durable only with
// everything logged before it (Pebble synced each WAL it rotated away
// from as it closed it). A store closed meanwhile has synced them already:
// Close syncs the WAL before it closes Pebble.
func (s *Store) syncApplied() error {
	if !s.enter() {
		return nil
	}
	defer s.gate.RUnlock()
	return s.db.LogData(nil, pebble.Sync)
}

// countChange moves the key counters from what old counted to what next
// counts.
func (s *Store) countChange(pos uint64, old, next Object, now int64) {
	wasLive, wasExp := keyState(old, now)
	isLive, isExp := keyState(next, now)
	// Most writes replace a live value with another: nothing to count,
	// and an atomic add of zero would still pull the counter's cache line.
	if d := b2i(isLive) - b2i(wasLive); d != 0 {
		s.live[pos>>48].Add(d)
	}
	if d := b2i(isExp) - b2i(wasExp); d != 0 {
		s.expiring[pos>>48].Add(d)
	}
}

// keyState says whether o reads as a key at now, and whether that key's
// value has an expiry.
func keyState(o Object, now int64) (live, expiring bool) {
	v, live := o.Resolve(now)
	return live, live && v.Expiry != 0
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// KeyCount returns how many keys hold a live sibling, and how many of them
// have an expiry, as of their last write: a key that expired since is
// counted until it is next touched, as Redis counts expired keys it has not
// reclaimed yet.
func (s *Store) KeyCount() (keys, expiring int64) {
	for i := range s.live {
		keys += s.live[i].Load()
		expiring += s.expiring[i].Load()
	}
	return keys, expiring
}

// PartitionCounts returns, for each partition in parts of a ring of q
// partitions, the keys this node holds with a live sibling and how many of
// them have an expiry (counted as KeyCount counts).
func (s *Store) PartitionCounts(q int, parts []int) (keys, expiring []int64) {
	keys, expiring = make([]int64, len(parts)), make([]int64, len(parts))
	for i, p := range parts {
		if p < 0 || p >= q {
			continue
		}
		from, to := PartitionStart(p, q)>>48, uint64(countBuckets)
		if p+1 < q {
			to = PartitionStart(p+1, q) >> 48
		}
		if q > countBuckets { // a partition finer than a bucket: count it whole
			to = from + 1
		}
		for b := from; b < to; b++ {
			keys[i] += s.live[b].Load()
			expiring[i] += s.expiring[b].Load()
		}
	}
	return keys, expiring
}

// encodeBufs reuses the buffers objects are encoded into before Pebble
// copies them into a batch.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// scan calls fn for each object with a position in [from, to), in order;
// to == 0 means the end of the ring. It stops early when fn returns false.
// The key and object passed to fn are only valid during the call.
func (s *Store) scan(from, to uint64, fn func(pos uint64, key []byte, o Object) bool) error {
	lower := objectKey(from, nil)
	upper := []byte{prefixObject + 1}
	if to != 0 {
		upper = objectKey(to, nil)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		o, err := DecodeObject(v)
		if err != nil {
			s.skipCorrupt("object", k[9:], err)
			continue
		}
		if !fn(binary.BigEndian.Uint64(k[1:9]), k[9:], o) {
			break
		}
	}
	return it.Error()
}

// skipCorrupt counts and logs an object or hint that does not decode: the
// store goes on without it rather than refuse to start or to serve the
// rest. The first few are logged, then one in a thousand.
func (s *Store) skipCorrupt(what string, key []byte, err error) {
	if n := s.corrupt.Add(1); n <= 16 || n%1000 == 0 {
		s.log.Error("skipped an undecodable "+what, "key", fmt.Sprintf("%.64q", key), "err", err, "skipped", n)
	}
}

// Corrupt returns how many stored objects and hints were found undecodable
// and skipped since the store opened.
func (s *Store) Corrupt() int64 { return s.corrupt.Load() }

// slowSyncAfter is how long an fsync may take before it is logged: writes
// wait behind a slow one (a WAL being retired is synced on the write path),
// and a node whose log shows seconds of fsync explains its own stalls.
const slowSyncAfter = time.Second

// slowSync logs an fsync of what that took longer than slowSyncAfter.
func slowSync(log *slog.Logger, what string, took time.Duration) {
	if took > slowSyncAfter {
		log.Warn("slow disk: "+what, "took", took.Round(time.Millisecond))
	}
}

// stallLogger logs Pebble's write stalls: while one lasts, every write
// waits for flushes or compactions to catch up.
func stallLogger(log *slog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			log.Warn("writes stalled", "reason", info.Reason)
		},
		WriteStallEnd: func() { log.Info("writes resumed") },
	}
}

// pebbleLogger routes Pebble's log lines through slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error("pebble: fatal: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

// Merge syncs a replica's object for key into the local one and stores the
// result durably. It reports whether anything changed. Merges are not
// subject to MaxSiblings: repair must always be able to converge.
func (s *Store) Merge(key []byte, remote Object) (bool, error) {
	return s.merge(context.Background(), key, remote)
}

// merge is Merge under ctx, which may defer the sync (DeferSync).
func (s *Store) merge(ctx context.Context, key []byte, remote Object) (bool, error) {
	changed := false
	_, err := s.Update(ctx, key, func(cur Object) (Object, bool, error) {
		next := Sync(cur, remote)
		changed = !next.Equal(cur)
		return next, changed, nil
	})
	return changed, err
}

// KeyObject is one key and its object, as a range scan yields them.
type KeyObject struct {
	Key    []byte
	Object Object
}

// Range returns up to limit objects with ring positions in [from, to) (to
// == 0: the end of the ring), starting after the key after (nil: from the
// start). Keys and objects are copies the caller owns.
func (s *Store) Range(from, to uint64, after []byte, limit int) ([]KeyObject, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.gate.RUnlock()
	lower := objectKey(from, nil)
	if after != nil {
		lower = append(objectKey(Position(after), after), 0)
	}
	upper := []byte{prefixObject + 1}
	if to != 0 {
		upper = objectKey(to, nil)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("range: %w", err)
	}
	defer it.Close()
	var out []KeyObject
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("range: %w", err)
		}
		k := bytes.Clone(it.Key()[9:])
		o, err := DecodeObject(bytes.Clone(v))
		if err != nil {
			s.skipCorrupt("object", k, err)
			continue
		}
		out = append(out, KeyObject{k, o})
	}
	return out, it.Error()
}

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

// SetObserver registers the observer of changes. It must be called before
// the store is used concurrently.
func (s *Store) SetObserver(o Observer) { s.observer = o }

// ScanLocked calls fn for every object with a position in [from, to) (to
// == 0: the end of the ring), then then, all while holding the locks of
// the stripes that cover the range, so that no write to it is half done:
// what fn sees and what the observer has been told agree. Keep ranges
// small; writes to them wait.
func (s *Store) ScanLocked(from, to uint64, fn func(pos uint64, key []byte, o Object), then func()) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	defer s.lockRange(from, to)()
	err := s.scan(from, to, func(pos uint64, key []byte, o Object) bool {
		fn(pos, key, o)
		return true
	})
	if err == nil && then != nil {
		then()
	}
	return err
}

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
	mu := &s.locks[stripe(pos)]
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
	s.countChange(pos, cur, Object{}, s.now())
	if s.observer != nil {
		s.observer.Changed(pos, key, cur, Object{})
	}
	return true, nil
}

// FlushMemtable writes the memtable out to sstables.
func (s *Store) FlushMemtable() error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.gate.RUnlock()
	return s.db.Flush()
}

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
	return Object{Clock: o.Clock, Siblings: keep}
}

func (s *Store) loadFlush() error {
	v, err := s.getMeta("flush")
	if err != nil || len(v) != 8 {
		return err
	}
	s.flushBefore.Store(int64(binary.BigEndian.Uint64(v)))
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
	b.Set(metaKey("flush"), binary.BigEndian.AppendUint64(nil, uint64(t)), nil)
	b.DeleteRange([]byte{prefixObject}, []byte{prefixObject + 1}, nil)
	b.DeleteRange([]byte{prefixHint}, []byte{prefixHint + 1}, nil)
	b.DeleteRange([]byte{prefixStandIn}, []byte{prefixStandIn + 1}, nil)
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	s.flushBefore.Store(t)
	s.cache.clear()
	for i := range s.live {
		s.live[i].Store(0)
		s.expiring[i].Store(0)
	}
	s.hints.mu.Lock()
	s.hints.stats = map[string]*HintStats{}
	s.hints.pending.Store(0)
	s.hints.mu.Unlock()
	if r, ok := s.observer.(interface{ Reset() }); ok {
		r.Reset()
	}
	s.log.Info("flushed all keys", "before", time.UnixMilli(t).UTC().Format(time.RFC3339Nano))
	return nil
}

// lockRange locks the stripes covering positions [from, to) (to == 0: the
// end of the ring) in order, and returns what unlocks them.
func (s *Store) lockRange(from, to uint64) (unlock func()) {
	last := uint64(lockStripes - 1)
	if to != 0 {
		last = stripe(to - 1)
	}
	for st := stripe(from); st <= last; st++ {
		s.locks[st].Lock()
	}
	return func() {
		for st := stripe(from); st <= last; st++ {
			s.locks[st].Unlock()
		}
	}
}

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
	if d, ok := s.observer.(RangeDropper); ok {
		d.Dropped(from, to)
	}
	return nil
}

// StorageStats are the figures of Pebble an operator watches: space,
// memory, and whether compaction keeps up with the writes.
type StorageStats struct {
	DiskBytes        uint64 // every file Pebble keeps: tables, WAL, manifest
	WALBytes         uint64 // live WAL files
	MemtableBytes    uint64
	BlockCacheBytes  int64
	BlockCacheHits   int64
	BlockCacheMisses int64
	L0Files          int64 // a growing L0 means compaction is behind
	ReadAmp          int   // tables a read may have to look at
	CompactionDebt   uint64
	Compactions      int64
	Flushes          int64
}

// StorageStats reads Pebble's metrics now; zero once the store is closed.
func (s *Store) StorageStats() StorageStats {
	if !s.enter() {
		return StorageStats{}
	}
	defer s.gate.RUnlock()
	m := s.db.Metrics()
	return StorageStats{
		DiskBytes: m.DiskSpaceUsage(), WALBytes: max(m.WAL.PhysicalSize, m.WAL.Size), MemtableBytes: m.MemTable.Size,
		BlockCacheBytes: m.BlockCache.Size, BlockCacheHits: m.BlockCache.Hits, BlockCacheMisses: m.BlockCache.Misses,
		L0Files: m.Levels[0].TablesCount, ReadAmp: m.ReadAmp(), CompactionDebt: m.Compact.EstimatedDebt,
		Compactions: m.Compact.Count, Flushes: m.Flush.Count,
	}
}

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
	err = cp.Delete(metaKey("actor"), pebble.Sync)
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: forget the actor: %w", dir, err)
	}
	return nil
}

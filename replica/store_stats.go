package replica

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

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

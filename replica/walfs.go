package replica

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walFS gives storage.fsync Redis's meaning. Every commit is made with
// pebble.Sync, so Pebble writes the WAL record to the operating system
// before the write is acknowledged; this file system then decides what the
// WAL's fsync does:
//
//   - always: a real fsync (concurrent commits share it);
//   - everysec: nothing at commit time; SyncWAL, called once a second, does
//     the real fsync of every open WAL file;
//   - no: nothing; the operating system writes the data back.
//
// A process crash therefore loses no acknowledged write under any policy,
// and a machine crash at most the last second under everysec, as with
// Redis's appendfsync. Other files (sstables, the manifest) always sync.
type walFS struct {
	vfs.FS
	policy Fsync
	log    *slog.Logger

	mu   sync.Mutex
	open map[*walFile]bool
}

func newWALFS(base vfs.FS, policy Fsync, log *slog.Logger) *walFS {
	return &walFS{FS: base, policy: policy, log: log, open: map[*walFile]bool{}}
}

func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

func (fs *walFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || fs.policy == FsyncAlways || !isWAL(name) {
		return f, err
	}
	wf := &walFile{File: f, fs: fs}
	fs.mu.Lock()
	fs.open[wf] = true
	fs.mu.Unlock()
	return wf, nil
}

// Create implements vfs.FS.
func (fs *walFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

// ReuseForWrite implements vfs.FS: Pebble recycles old WAL files.
func (fs *walFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

// OpenReadWrite implements vfs.FS.
func (fs *walFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

// Unwrap implements vfs.FS.
func (fs *walFS) Unwrap() vfs.FS { return fs.FS }

// SyncWAL fsyncs every open WAL file for real.
func (fs *walFS) SyncWAL() error {
	fs.mu.Lock()
	files := make([]*walFile, 0, len(fs.open))
	for f := range fs.open {
		files = append(files, f)
	}
	fs.mu.Unlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, f.realSync())
	}
	return errors.Join(errs...)
}

// walFile is a WAL file whose fsync follows the policy.
type walFile struct {
	vfs.File
	fs *walFS
	mu sync.Mutex // serializes the real sync with Close
	// closed is set once the file is closed; a later real sync is skipped.
	closed bool
}

// Sync implements vfs.File: deferred to SyncWAL or the operating system.
func (f *walFile) Sync() error { return nil }

// SyncData implements vfs.File, as Sync.
func (f *walFile) SyncData() error { return nil }

// SyncTo implements vfs.File, as Sync.
func (f *walFile) SyncTo(int64) (bool, error) { return true, nil }

func (f *walFile) realSync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	return f.File.SyncData()
}

// Close implements vfs.File. Under everysec a WAL being retired is synced
// first, since SyncWAL will not see it again.
func (f *walFile) Close() error {
	start := time.Now()
	f.mu.Lock()
	var err error
	if f.fs.policy == FsyncEverySec {
		err = f.File.SyncData()
		slowSync(f.fs.log, "retiring a WAL (writes waited)", time.Since(start))
	}
	f.closed = true
	f.mu.Unlock()
	f.fs.mu.Lock()
	delete(f.fs.open, f)
	f.fs.mu.Unlock()
	return errors.Join(err, f.File.Close())
}

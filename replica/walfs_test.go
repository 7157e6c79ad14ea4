package replica

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// slowFS makes the WAL's fsync take delay, as a disk under load does.
type slowFS struct {
	vfs.FS
	delay time.Duration
}

func (fs slowFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil || !isWAL(name) {
		return f, err
	}
	return slowFile{f, fs.delay}, nil
}

type slowFile struct {
	vfs.File
	delay time.Duration
}

func (f slowFile) SyncData() error {
	time.Sleep(f.delay)
	return f.File.SyncData()
}

// lockedBuffer is a log sink safe for the store's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An everysec fsync slower than slowSyncAfter is logged, so that a node's
// log accounts for the stalls a slow disk causes.
func TestSlowWALSyncIsLogged(t *testing.T) {
	var logs lockedBuffer
	s, err := Open(t.TempDir(), Options{
		NodeID: "n1", Fsync: FsyncEverySec, CacheSize: 8 << 20,
		FS:     slowFS{vfs.Default, slowSyncAfter + 200*time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write(t, s, "k", "v", 0)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "slow disk: everysec WAL fsync") {
		if time.Now().After(deadline) {
			t.Fatalf("no slow fsync logged; the log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

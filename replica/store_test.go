package replica

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func openStore(t *testing.T, dir string, fsync Fsync) *Store {
	t.Helper()
	s, err := Open(dir, Options{NodeID: "n1", Fsync: fsync, CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// write stores v under key as a blind write, the way SET does.
func write(t *testing.T, s *Store, key, v string, expiry int64) {
	t.Helper()
	writeDeferred(t, nil, s, key, v, expiry)
}

// writeDeferred is write with the wait for durability left to p (none
// when p is nil).
func writeDeferred(t *testing.T, p *Pending, s *Store, key, v string, expiry int64) {
	t.Helper()
	_, err := s.UpdateDeferred(p, Position([]byte(key)), []byte(key), func(cur Object) (Object, bool, error) {
		next := Update(cur, cur.Context(), Sibling{Value: []byte(v), Time: s.Now(), Expiry: expiry}, mustMint(s))
		return next, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStorePersistsAndCounts(t *testing.T) {
	for _, fsync := range []Fsync{FsyncAlways, FsyncEverySec, FsyncNo} {
		t.Run(fmt.Sprint(fsync), func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, fsync)
			actor := s.Actor()
			for i := range 50 {
				write(t, s, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i), 0)
			}
			write(t, s, "exp", "v", s.Now()+3_600_000)
			if keys, exp := s.KeyCount(); keys != 51 || exp != 1 {
				t.Fatalf("KeyCount = %d, %d", keys, exp)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir, fsync)
			defer s.Close()
			if s.Actor() != actor {
				t.Fatalf("actor changed across a restart: %s -> %s", actor, s.Actor())
			}
			if keys, exp := s.KeyCount(); keys != 51 || exp != 1 {
				t.Fatalf("KeyCount after reopen = %d, %d", keys, exp)
			}
			// Every key is found again: the key filter was rebuilt from
			// what the store holds.
			for i := range 50 {
				o, err := s.Get(fmt.Appendf(nil, "k%d", i))
				if err != nil {
					t.Fatal(err)
				}
				if v, ok := o.Resolve(s.Now()); !ok || string(v.Bytes) != fmt.Sprintf("v%d", i) {
					t.Fatalf("k%d = %q, %v", i, v.Bytes, ok)
				}
			}
			if _, err := s.Get([]byte("never")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A node whose data directory was lost comes back with a new actor, so its
// new dots cannot collide with the ones its old self minted.
func TestWipedStoreGetsNewActor(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, FsyncNo)
	old := s.Actor()
	s.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, FsyncNo)
	defer s.Close()
	if s.Actor() == old {
		t.Fatalf("wiped store kept actor %s", old)
	}
}

// A checkpoint taken while the store serves holds every write before it
// and none after, and a store restored from it mints under a new actor.
func TestCheckpoint(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncEverySec)
	defer s.Close()
	for i := range 100 {
		write(t, s, fmt.Sprintf("k%d", i), "before", 0)
	}
	cp := filepath.Join(t.TempDir(), "cp")
	if err := s.Checkpoint(cp); err != nil {
		t.Fatal(err)
	}
	write(t, s, "k1", "after", 0)
	write(t, s, "late", "after", 0)
	if err := s.Checkpoint(cp); err == nil {
		t.Fatal("a checkpoint overwrote an existing directory")
	}
	r := openStore(t, cp, FsyncEverySec)
	defer r.Close()
	if r.Actor() == s.Actor() {
		t.Fatalf("the restored store kept actor %s", s.Actor())
	}
	if keys, _ := r.KeyCount(); keys != 100 {
		t.Fatalf("checkpoint holds %d keys, want 100", keys)
	}
	o, err := r.Get([]byte("k1"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := o.Resolve(r.Now()); !ok || string(v.Bytes) != "before" {
		t.Fatalf("k1 in the checkpoint = %q, %v", v.Bytes, ok)
	}
}

// Concurrent read-modify-writes of one key through the store never lose an
// update: each leaves a sibling.
func TestStoreConcurrentUpdates(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncAlways)
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Update(context.Background(), []byte("hot"), func(cur Object) (Object, bool, error) {
				next := Update(cur, nil, Sibling{Value: fmt.Appendf(nil, "w%d", i), Time: 1}, mustMint(s))
				return next, true, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	o, _ := s.Get([]byte("hot"))
	if n := len(o.Live(0)); n != 20 {
		t.Fatalf("%d siblings, want 20", n)
	}
}

func TestStoreClosed(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	s.Close()
	if _, err := s.Get([]byte("k")); err != ErrClosed {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestDeferredSync writes with UpdateDeferred with fsync always: the writes
// are visible at once, owed to the Pending until it is waited for, and
// survive a power cut right after Wait.
func TestDeferredSync(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s, err := Open("/db", Options{NodeID: "n1", Fsync: FsyncAlways, CacheSize: 8 << 20, FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	var p Pending
	const n = 50
	for i := range n {
		writeDeferred(t, &p, s, fmt.Sprintf("k%d", i), fmt.Sprint(i), 0)
		if o, err := s.Get([]byte(fmt.Sprintf("k%d", i))); err != nil || o.Empty() {
			t.Fatalf("k%d before Wait = %v, %v: a deferred write must be visible at once", i, o, err)
		}
	}
	if p.Len() != n {
		t.Fatalf("Pending holds %d writes, want %d", p.Len(), n)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if p.Len() != 0 {
		t.Fatalf("Pending holds %d writes after Wait", p.Len())
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	s.Close()
	r, err := Open("/db", Options{NodeID: "n1", Fsync: FsyncAlways, CacheSize: 8 << 20, FS: crashed})
	if err != nil {
		t.Fatalf("reopening after the power cut: %v", err)
	}
	defer r.Close()
	for i := range n {
		o, err := r.Get([]byte(fmt.Sprintf("k%d", i)))
		if v, ok := o.Resolve(r.Now()); err != nil || !ok || string(v.Bytes) != fmt.Sprint(i) {
			t.Fatalf("k%d after the power cut = %q, %v, %v: a write waited for was lost", i, v.Bytes, ok, err)
		}
	}
}

// TestPowerCut cuts the power under a store being written to: a crash
// clone of an in-memory filesystem keeps only what was fsynced. With
// fsync always every acknowledged write survives; with everysec only
// writes acknowledged within about the last second may be lost.
func TestPowerCut(t *testing.T) {
	for _, fsync := range []Fsync{FsyncAlways, FsyncEverySec} {
		t.Run(fmt.Sprint(fsync), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			s, err := Open("/db", Options{NodeID: "n1", Fsync: fsync, CacheSize: 8 << 20, FS: mem})
			if err != nil {
				t.Fatal(err)
			}
			var acked []time.Time
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					write(t, s, fmt.Sprintf("k%d", i), "v", 0)
					acked = append(acked, time.Now())
				}
			}()
			time.Sleep(3 * time.Second)
			// Writes acknowledged before cut were acknowledged before the
			// clone began; those that finish while it copies are not counted.
			cut := time.Now()
			crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			close(stop)
			<-done
			s.Close()
			r, err := Open("/db", Options{NodeID: "n1", Fsync: fsync, CacheSize: 8 << 20, FS: crashed})
			if err != nil {
				t.Fatalf("reopening after the power cut: %v", err)
			}
			defer r.Close()
			lost, oldestLost := 0, time.Duration(0)
			for i, at := range acked {
				if at.After(cut) {
					break
				}
				o, err := r.Get([]byte(fmt.Sprintf("k%d", i)))
				if err != nil {
					t.Fatal(err)
				}
				if o.Empty() {
					lost++
					oldestLost = max(oldestLost, cut.Sub(at))
				}
			}
			t.Logf("fsync %v: %d writes acknowledged before the cut, %d lost, the oldest lost acknowledged %v before it", fsync, len(acked), lost, oldestLost)
			switch {
			case fsync == FsyncAlways && lost > 0:
				t.Fatalf("fsync always lost %d acknowledged writes", lost)
			case oldestLost > 1500*time.Millisecond:
				t.Fatalf("everysec lost a write acknowledged %v before the cut: more than the last second", oldestLost)
			}
		})
	}
}

// TestCacheOwnsWrittenValues checks that the object cache keeps no slice
// of the memory a write's value came in: the front end parses commands
// without copying them, so a cached value that aliased the request would
// pin its whole read buffer, and change if the buffer were reused.
func TestCacheOwnsWrittenValues(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NodeID: "n1", Fsync: FsyncNo, ObjectCache: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	request := []byte("value-in-a-request-buffer")
	_, err = s.Update(context.Background(), []byte("k"), func(cur Object) (Object, bool, error) {
		next := Update(cur, cur.Context(), Sibling{Value: request, Time: s.Now()}, mustMint(s))
		return next, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	copy(request, "XXXXXXXXXXXXXXXXXXXXXXXXX")
	o, err := s.Get([]byte("k")) // a cache hit
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Siblings) != 1 || string(o.Siblings[0].Value) != "value-in-a-request-buffer" {
		t.Fatalf("cached object %+v changed with the request's buffer", o.Siblings)
	}
}

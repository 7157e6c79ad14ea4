package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func openMem(t *testing.T, fs vfs.FS, id string, fsync Fsync) *Store {
	t.Helper()
	s, err := Open("/db", Options{NodeID: id, Fsync: fsync, CacheSize: 8 << 20, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crash cuts the power under s: it returns a copy of fs holding only what
// was synced, then closes s (its last writes go to the old copy).
func crash(t *testing.T, s *Store, fs *vfs.MemFS) *vfs.MemFS {
	t.Helper()
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	_ = s.Close()
	return crashed
}

// TestSequenceNeverReissued: dot numbers are strictly increasing across
// keys, and no start, clean or not, ever issues one again.
func TestSequenceNeverReissued(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := openMem(t, mem, "n1", FsyncNo)
	var last uint64
	issue := func(s *Store, count int) {
		t.Helper()
		for range count {
			d, err := s.Mint()
			if err != nil {
				t.Fatal(err)
			}
			if d.Counter <= last || d.Actor != s.Actor() {
				t.Fatalf("minted %v after %d", d, last)
			}
			last = d.Counter
		}
	}
	issue(s, leaseBlock+10) // past one lease
	actor := s.Actor()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, mem, "n1", FsyncNo)
	if s.Actor() != actor {
		t.Fatalf("a clean restart changed the actor %s -> %s", actor, s.Actor())
	}
	issue(s, 100)
	// A power cut with nothing synced since the last lease: the next start
	// continues past the lease, under a new incarnation.
	crashed := crash(t, s, mem)
	s = openMem(t, crashed, "n1", FsyncNo)
	defer s.Close()
	if s.Actor() == actor {
		t.Fatalf("a start after a power cut kept the actor %s", actor)
	}
	if id, _, _ := strings.Cut(s.Actor(), "#"); id != "n1" {
		t.Fatalf("actor %s does not name the node", s.Actor())
	}
	issue(s, 10)
}

// TestEarlierFormatGetsNewIncarnation: a data directory written with
// per-key counters continues under a new actor, whose numbers cannot meet
// the old ones.
func TestEarlierFormatGetsNewIncarnation(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := openMem(t, mem, "n1", FsyncNo)
	write(t, s, "k", "v", 0)
	actor := s.Actor()
	if err := s.db.Delete(metaKey(metaFormat), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, mem, "n1", FsyncNo)
	defer s.Close()
	if s.Actor() == actor {
		t.Fatalf("a converted directory kept the actor %s", actor)
	}
	if o, err := s.Get([]byte("k")); err != nil || o.Empty() {
		t.Fatalf("the converted directory lost k: %v, %v", o, err)
	}
}

// TestPowerCutKeepsBothValues is the second bug of the dot design: a node
// loses its last write to a power cut while a peer kept it, then writes
// the key again blind. Its new write must not claim the lost one: both
// replicas end with the same object, both values as siblings, and GET
// answers the later.
func TestPowerCutKeepsBothValues(t *testing.T) {
	memA := vfs.NewCrashableMem()
	a := openMem(t, memA, "a", FsyncNo) // "no": the write is certainly unsynced at the cut
	b := openMem(t, vfs.NewCrashableMem(), "b", FsyncAlways)
	defer b.Close()
	key := []byte("cart")
	blind := func(s *Store, v string, at int64) Object {
		t.Helper()
		o, err := s.Update(context.Background(), key, func(cur Object) (Object, bool, error) {
			return Update(cur, cur.Context(), Sibling{Value: []byte(v), Time: at}, mustMint(s)), true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	first := blind(a, "v1", 1000)
	if _, err := b.Merge(key, first); err != nil { // b holds the write
		t.Fatal(err)
	}
	crashed := crash(t, a, memA)
	a = openMem(t, crashed, "a", FsyncNo)
	defer a.Close()
	if o, _ := a.Get(key); !o.Empty() {
		t.Fatalf("the write survived the cut (%v): the test needs it lost", o)
	}
	second := blind(a, "v2", 2000)
	if _, err := b.Merge(key, second); err != nil {
		t.Fatal(err)
	}
	fromB, err := b.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Merge(key, fromB); err != nil {
		t.Fatal(err)
	}
	oa, _ := a.Get(key)
	ob, _ := b.Get(key)
	if !oa.Equal(ob) {
		t.Fatalf("replicas diverge:\n a %+v\n b %+v", oa, ob)
	}
	var values []string
	for _, s := range oa.Live(3000) {
		values = append(values, string(s.Value))
	}
	if len(values) != 2 {
		t.Fatalf("siblings %v, want v1 and v2", values)
	}
	if v, ok := oa.Resolve(3000); !ok || string(v.Bytes) != "v2" {
		t.Fatalf("GET answers %q, want the later v2", v.Bytes)
	}
}

// TestVouches: a context naming this node's incarnation (or a stand-in
// actor of it) above the last number issued is not vouched for.
func TestVouches(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	defer s.Close()
	d := mustMint(s)
	for _, c := range []struct {
		clock Clock
		ok    bool
	}{
		{nil, true},
		{Clock{{d.Actor, d.Counter}}, true},
		{Clock{{d.Actor, d.Counter + 1}}, false},
		{Clock{{d.Actor + "/zz", d.Counter + 1}}, false},
		{Clock{{"other#x", 1 << 62}}, true},
	} {
		if got := s.Vouches(c.clock); got != c.ok {
			t.Errorf("Vouches(%v) = %v, want %v", c.clock, got, c.ok)
		}
	}
}

// TestStandInReuse: a fallback's writes to one key share one stand-in
// actor, and its record holds every one of them; a new incarnation, or a
// record past its life, starts a new actor.
func TestStandInReuse(t *testing.T) {
	mem := vfs.NewCrashableMem()
	now := int64(1_000_000)
	opts := Options{NodeID: "f", Fsync: FsyncNo, CacheSize: 8 << 20, FS: mem, Now: func() int64 { return now }}
	s, err := Open("/db", opts)
	if err != nil {
		t.Fatal(err)
	}
	s.SetHintLimits(HintLimits{Window: time.Minute})
	key := []byte("k")
	pos := Position(key)
	var actors []string
	write := func(s *Store, v string) Object {
		t.Helper()
		o, err := s.StandIn(pos, key, func(cur Object, dot Dot) (Object, bool, error) {
			actors = append(actors, dot.Actor)
			return Update(cur, nil, Sibling{Value: []byte(v), Time: now}, dot), true, nil // a sibling each
		})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for i := range 50 {
		write(s, fmt.Sprint(i))
	}
	o := write(s, "last")
	if len(o.Clock) != 1 || len(o.Live(now)) != 51 {
		t.Fatalf("after 51 stand-in writes: clock %v, %d siblings; want one actor, every write", o.Clock, len(o.Live(now)))
	}
	if !strings.HasPrefix(actors[0], s.Actor()+"/") {
		t.Fatalf("stand-in actor %s is not one of %s", actors[0], s.Actor())
	}
	for _, a := range actors {
		if a != actors[0] {
			t.Fatalf("stand-in actors %s and %s for one key", actors[0], a)
		}
	}
	if got, _ := s.Get(key); !got.Empty() {
		t.Fatalf("a stand-in write reached the node's own replica: %v", got)
	}
	now += time.Minute.Milliseconds() + 1 // past the life
	write(s, "later")
	if a := actors[len(actors)-1]; a == actors[0] {
		t.Fatalf("a stand-in record past its life was reused")
	}
	if n, err := s.ReapStandIns(); err != nil || n != 0 {
		t.Fatalf("reaped %d, %v; the record is fresh", n, err)
	}
	crashed := crash(t, s, mem)
	opts.FS = crashed
	if s, err = Open("/db", opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetHintLimits(HintLimits{Window: time.Minute})
	before := actors[len(actors)-1]
	write(s, "after the cut")
	if a := actors[len(actors)-1]; a == before || !strings.HasPrefix(a, s.Actor()+"/") {
		t.Fatalf("after a power cut the stand-in actor %s was reused (now %s)", before, a)
	}
	now += time.Minute.Milliseconds() + 1
	if n, err := s.ReapStandIns(); err != nil || n != 1 {
		t.Fatalf("reaped %d stand-in records past their life, %v; want 1", n, err)
	}
}

// TestUndecodableNeverWritten: a write whose result would not decode (a
// clock past the entry cap) is refused and changes nothing.
func TestUndecodableNeverWritten(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	defer s.Close()
	write(t, s, "k", "v", 0)
	before, _ := s.Get([]byte("k"))
	_, err := s.Update(context.Background(), []byte("k"), func(cur Object) (Object, bool, error) {
		var ctx Clock
		for i := range maxClockEntries + 1 {
			ctx = append(ctx, Entry{fmt.Sprintf("a%05d", i), 1})
		}
		return Update(cur, ctx, Sibling{Value: []byte("big")}, mustMint(s)), true, nil
	})
	if !errors.Is(err, ErrUnencodable) {
		t.Fatalf("write of an undecodable object: %v", err)
	}
	after, _ := s.Get([]byte("k"))
	if !after.Equal(before) {
		t.Fatal("a refused write changed the key")
	}
	if err := s.Hint("n2", []byte("k"), Object{Clock: Clock{{strings.Repeat("x", 300), 1}}}); !errors.Is(err, ErrUnencodable) {
		t.Fatalf("hint of an undecodable object: %v", err)
	}
}

// TestCorruptObjectsSkipped: a store holding an object and a hint that do
// not decode opens, counts them, serves the other keys and hints, and
// lets a merge replace the bad object.
func TestCorruptObjectsSkipped(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, FsyncNo)
	write(t, s, "good", "v", 0)
	write(t, s, "victim", "v", 0)
	good, _ := s.Get([]byte("good"))
	for _, k := range []string{"h1", "h2", "h3"} {
		if err := s.Hint("n2", []byte(k), good); err != nil {
			t.Fatal(err)
		}
	}
	garbage := []byte{objectV1, 1, 1, 'a', 0xff} // a clock whose counter runs off the end
	if err := s.db.Set(objectKey(Position([]byte("victim")), []byte("victim")), garbage, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(hintKey("n2", Position([]byte("h2")), []byte("h2")), binary.BigEndian.AppendUint64(nil, 1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, FsyncNo)
	defer s.Close()
	if s.Corrupt() < 1 {
		t.Fatal("the undecodable object was not counted at start")
	}
	if keys, _ := s.KeyCount(); keys != 1 {
		t.Fatalf("KeyCount %d, want the one good key", keys)
	}
	if o, err := s.Get([]byte("victim")); err != nil || !o.Empty() {
		t.Fatalf("reading the corrupt key: %v, %v; want it read as never written", o, err)
	}
	hs, err := s.Hints("n2", nil, 10)
	if err != nil || len(hs) != 2 {
		t.Fatalf("hints past the corrupt one: %d, %v; want h1 and h3", len(hs), err)
	}
	if _, err := s.Merge([]byte("victim"), good); err != nil {
		t.Fatalf("repairing the corrupt key: %v", err)
	}
	if o, _ := s.Get([]byte("victim")); !o.Equal(good) {
		t.Fatalf("after repair: %v", o)
	}
}

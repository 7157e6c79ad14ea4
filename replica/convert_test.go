package replica

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// toLegacy rewrites every object and hint of s under its key's legacy
// (md5) position and marks the directory format 2: a data directory as
// the build before slot positions left it.
func toLegacy(t *testing.T, s *Store) {
	t.Helper()
	for _, prefix := range []byte{prefixObject, prefixHint} {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
		if err != nil {
			t.Fatal(err)
		}
		b := s.db.NewBatch()
		for ok := it.First(); ok; ok = it.Next() {
			k := bytes.Clone(it.Key())
			at := 1
			if prefix == prefixHint {
				at = 2 + int(k[1])
			}
			nk := bytes.Clone(k)
			binary.BigEndian.PutUint64(nk[at:at+8], LegacyPosition(k[at+8:]))
			_ = b.Delete(k, nil)
			_ = b.Set(nk, bytes.Clone(it.Value()), nil)
		}
		it.Close()
		if err := s.db.Apply(b, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Set(metaKey(metaFormat), []byte{formatV2}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestConvertPositions: a directory written with md5 positions opens with
// every object and hint found under its key's slot position, the key
// counts right, and a new incarnation.
func TestConvertPositions(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := openMem(t, mem, "n1", FsyncNo)
	const n = 5000 // more than one batch
	for i := range n {
		write(t, s, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i), 0)
	}
	o, _ := s.Get([]byte("k1"))
	if err := s.Hint("n2", []byte("hinted"), o); err != nil {
		t.Fatal(err)
	}
	actor := s.Actor()
	toLegacy(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, mem, "n1", FsyncNo)
	defer s.Close()
	if s.Actor() == actor {
		t.Fatal("a converted directory kept its incarnation")
	}
	if keys, _ := s.KeyCount(); keys != n {
		t.Fatalf("KeyCount %d after conversion, want %d", keys, n)
	}
	for i := range n {
		got, err := s.Get(fmt.Appendf(nil, "k%d", i))
		if v, ok := got.Resolve(s.Now()); err != nil || !ok || string(v.Bytes) != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%d after conversion: %q, %v, %v", i, v.Bytes, ok, err)
		}
	}
	hs, err := s.Hints("n2", nil, 10)
	if err != nil || len(hs) != 1 || string(hs[0].Key) != "hinted" {
		t.Fatalf("hints after conversion: %v, %v", hs, err)
	}
	if moved, err := s.convertPositions(); err != nil || moved != 0 {
		t.Fatalf("a second conversion moved %d, %v", moved, err)
	}
}

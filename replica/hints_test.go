package replica

import (
	"errors"
	"testing"
	"time"
)

func obj(v string, t int64) Object {
	o, _ := updateAs(Object{}, nil, Sibling{Value: []byte(v), Time: t}, "a#x")
	return o
}

func TestHintLifecycle(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, FsyncNo)
	if err := s.Hint("n3", []byte("k1"), obj("v1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Hint("n3", []byte("k2"), obj("v2", 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Hint("n4", []byte("k1"), obj("v1", 1)); err != nil {
		t.Fatal(err)
	}
	if pending, _ := s.HintCounts(); pending != 3 {
		t.Fatalf("pending = %d, want 3", pending)
	}
	// A fallback answers reads with what its hints hold.
	o, err := s.Read([]byte("k1"))
	if err != nil || len(o.Live(0)) != 1 {
		t.Fatalf("Read of a hinted key: %v, %v", o, err)
	}
	if o, _ := s.Get([]byte("k1")); !o.Empty() {
		t.Fatal("a hint leaked into the replica's own objects")
	}
	hs, err := s.Hints("n3", nil, 10)
	if err != nil || len(hs) != 2 {
		t.Fatalf("Hints(n3) = %v, %v", hs, err)
	}
	// A hint that grew after it was read stays, to be sent again.
	sent := hs[0]
	newer, _ := updateAs(sent.Object, sent.Object.Context(), Sibling{Value: []byte("newer"), Time: 5}, "a#x")
	if err := s.Hint("n3", sent.Key, newer); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.DeliveredHint("n3", sent.Key, sent.Object); err != nil || gone {
		t.Fatalf("a grown hint was deleted: %v %v", gone, err)
	}
	again, _ := s.Hints("n3", nil, 10)
	for _, h := range again {
		if gone, err := s.DeliveredHint("n3", h.Key, h.Object); err != nil || !gone {
			t.Fatalf("delivered hint not deleted: %v %v", gone, err)
		}
	}
	if pending, delivered := s.HintCounts(); pending != 1 || delivered != 2 {
		t.Fatalf("pending %d delivered %d, want 1 and 2", pending, delivered)
	}
	s.Close()
	s = openStore(t, dir, FsyncNo)
	defer s.Close()
	if targets := s.HintTargets(); len(targets) != 1 || targets["n4"].Count != 1 {
		t.Fatalf("after reopen: %v", targets)
	}
}

func TestHintLimits(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	defer s.Close()
	s.SetHintLimits(HintLimits{MaxBytes: 200, Window: time.Hour})
	big := obj(string(make([]byte, 150)), 1)
	if err := s.Hint("n3", []byte("a"), big); err != nil {
		t.Fatal(err)
	}
	if err := s.Hint("n3", []byte("b"), big); !errors.Is(err, ErrHintRefused) {
		t.Fatalf("hint past the byte cap: %v", err)
	}
	if err := s.Hint("n4", []byte("b"), big); err != nil {
		t.Fatalf("the cap is per target: %v", err)
	}
	s.SetHintLimits(HintLimits{Window: time.Nanosecond})
	time.Sleep(time.Millisecond)
	if err := s.Hint("n4", []byte("c"), obj("x", 1)); !errors.Is(err, ErrHintRefused) {
		t.Fatalf("hint past the window: %v", err)
	}
}

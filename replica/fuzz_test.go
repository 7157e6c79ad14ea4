package replica

import (
	"bytes"
	"testing"
)

func seedObjects() [][]byte {
	var seeds [][]byte
	for seed := uint64(1); seed <= 8; seed++ {
		h := newHistory(seed)
		for range 20 {
			h.step()
		}
		seeds = append(seeds, AppendObject(nil, h.object()))
	}
	return seeds
}

// FuzzDecodeObject feeds arbitrary bytes to the object decoder: it must
// never panic, and whatever it accepts must re-encode to the very bytes it
// read (an encoding has one reading, and a reading one encoding).
func FuzzDecodeObject(f *testing.F) {
	for _, s := range seedObjects() {
		f.Add(s)
	}
	f.Add([]byte{objectV1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeObject(b)
		if err != nil {
			return
		}
		enc := AppendObject(nil, o)
		if len(enc) > maxEncodedSize(o) {
			t.Fatalf("encoding of %d bytes past its bound %d", len(enc), maxEncodedSize(o))
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("accepted %x, which re-encodes as %x", b, enc)
		}
		if err := o.Check(); err != nil {
			t.Fatalf("accepted an object Check refuses: %v", err)
		}
		_ = Sync(o, o)
		_, _ = o.Resolve(0)
	})
}

// FuzzDecodeClock feeds arbitrary bytes to the decoder of the clocks nodes
// pass each other: it accepts exactly what AppendClock writes.
func FuzzDecodeClock(f *testing.F) {
	for seed := uint64(1); seed <= 8; seed++ {
		h := newHistory(seed)
		for range 20 {
			h.step()
		}
		f.Add(AppendClock(nil, h.object().Context()))
	}
	f.Add([]byte{clockV1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeClock(b)
		if err != nil {
			return
		}
		if enc := AppendClock(nil, c); !bytes.Equal(enc, b) {
			t.Fatalf("accepted %x, which re-encodes as %x", b, enc)
		}
	})
}

// FuzzOpenContext feeds arbitrary contexts to the opener of clients'
// contexts: it accepts only what Seal made for the same key, and what it
// accepts seals back to the same string.
func FuzzOpenContext(f *testing.F) {
	s := NewSealer([]byte("fuzz context key"))
	for seed := uint64(1); seed <= 8; seed++ {
		h := newHistory(seed)
		for range 20 {
			h.step()
		}
		f.Add("k", s.Seal([]byte("k"), h.object().Context()))
	}
	f.Add("k", "")
	f.Add("k", "AgA")
	f.Fuzz(func(t *testing.T, key, ctx string) {
		c, err := s.Open([]byte(key), ctx)
		if err != nil {
			return
		}
		if again := s.Seal([]byte(key), c); again != ctx {
			t.Fatalf("accepted %q for %q, which seals as %q", ctx, key, again)
		}
		if ctx != "" {
			if _, err := s.Open([]byte(key+"x"), ctx); err == nil {
				t.Fatalf("%q opens for another key", ctx)
			}
		}
	})
}

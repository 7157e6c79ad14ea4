package replica

import "testing"

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
// never panic, and whatever it accepts must re-encode to an equal object.
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
		again, err := DecodeObject(AppendObject(nil, o))
		if err != nil || !again.Equal(o) {
			t.Fatalf("accepted object does not round trip: %v", err)
		}
		_ = Sync(o, o)
		_, _ = o.Resolve(0)
	})
}

// FuzzDecodeContext feeds arbitrary strings to the context decoder.
func FuzzDecodeContext(f *testing.F) {
	for seed := uint64(1); seed <= 8; seed++ {
		h := newHistory(seed)
		for range 20 {
			h.step()
		}
		f.Add(EncodeContext(h.object().Context()))
	}
	f.Add("")
	f.Add("AQA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeContext(s)
		if err != nil {
			return
		}
		again, err := DecodeContext(EncodeContext(c))
		if err != nil || !again.Equal(c) {
			t.Fatalf("accepted context does not round trip: %v", err)
		}
	})
}

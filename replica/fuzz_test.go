package replica

import (
	"context"
	"io"
	"log/slog"
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
		enc := AppendObject(nil, o)
		if len(enc) > maxEncodedSize(o) {
			t.Fatalf("encoding of %d bytes past its bound %d", len(enc), maxEncodedSize(o))
		}
		again, err := DecodeObject(enc)
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

// FuzzPeerCommand feeds arbitrary arguments to the peer protocol's
// commands over a real store: none may panic, and a command refused with
// an error leaves the key it names as it was.
func FuzzPeerCommand(f *testing.F) {
	store, err := Open(f.TempDir(), Options{NodeID: "n1", Fsync: FsyncNo, CacheSize: 8 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	s := NewPeerServer(store, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	names := []string{"PING", CmdGet, CmdMerge, CmdRange, CmdHint, CmdCount, CmdFlush}
	for _, o := range seedObjects() {
		f.Add(uint8(2), uint8(2), []byte("k"), o, []byte(nil), []byte(nil))
		f.Add(uint8(4), uint8(3), []byte("n2"), []byte("k"), o, []byte(nil))
	}
	f.Add(uint8(3), uint8(4), []byte("0"), []byte("0"), []byte(""), []byte("10"))
	f.Add(uint8(5), uint8(3), []byte("16"), []byte("1"), []byte("2"), []byte(nil))
	f.Fuzz(func(t *testing.T, which, n uint8, a0, a1, a2, a3 []byte) {
		name := names[int(which)%len(names)]
		args := append([][]byte{[]byte(name)}, [][]byte{a0, a1, a2, a3}[:int(n)%5]...)
		var before Object
		if name == CmdMerge && len(args) > 1 {
			before, _ = store.Get(args[1])
		}
		reply := s.run(context.Background(), name, args)
		if string(reply) == "-ERR internal error\r\n" {
			t.Fatalf("%q panicked", args)
		}
		if len(reply) == 0 || (reply[0] != '+' && reply[0] != '-' && reply[0] != '$' && reply[0] != '*' && reply[0] != ':') {
			t.Fatalf("%q: reply %q", args, reply)
		}
		if name == CmdMerge && len(args) > 1 && reply[0] == '-' {
			if after, _ := store.Get(args[1]); !after.Equal(before) {
				t.Fatalf("a refused %q changed the key", args)
			}
		}
	})
}

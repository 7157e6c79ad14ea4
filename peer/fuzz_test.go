package peer

import (
	"context"
	"log/slog"
	"testing"

	"github.com/dynakv/dynakv/replica"
)

// FuzzPeerCommand feeds arbitrary arguments to the peer protocol's
// commands over a real store: none may panic, and a command refused with
// an error leaves the key it names as it was.
func FuzzPeerCommand(f *testing.F) {
	store := openStore(f)
	s := NewServer(store, "", slog.New(slog.DiscardHandler))
	names := []string{CmdPing, CmdGet, CmdMerge, CmdRange, CmdHint, CmdCount, CmdFlush}
	for _, o := range [][]byte{replica.AppendObject(nil, object("v")), replica.AppendObject(nil, object(""))} {
		f.Add(uint8(2), uint8(2), []byte("k"), o, []byte(nil), []byte(nil))
		f.Add(uint8(4), uint8(3), []byte("n2"), []byte("k"), o, []byte(nil))
	}
	f.Add(uint8(3), uint8(4), []byte("0"), []byte("0"), []byte(""), []byte("10"))
	f.Add(uint8(5), uint8(3), []byte("16"), []byte("1"), []byte("2"), []byte(nil))
	f.Fuzz(func(t *testing.T, which, n uint8, a0, a1, a2, a3 []byte) {
		name := names[int(which)%len(names)]
		args := append([][]byte{[]byte(name)}, [][]byte{a0, a1, a2, a3}[:int(n)%5]...)
		var before replica.Object
		if name == CmdMerge && len(args) > 1 {
			before, _ = store.Get(args[1])
		}
		reply := s.run(context.Background(), nil, name, args)
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

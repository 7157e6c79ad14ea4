package peer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// Calls sent without a wait reach a real peer server and report back once
// each; after Close, a call reports ErrClosed instead of hanging.
func TestPeersGo(t *testing.T) {
	store := openStore(t)
	srv, addr, _ := servePeers(t, store, "")
	defer srv.Close(context.Background())

	peers := NewClient("", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := object("v")
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		key := []byte{'k', byte(i)}
		peers.GoMerge(ctx, addr, key, replica.AppendObject(nil, o), func(err error) {
			errs <- err
			wg.Done()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("merge: %v", err)
		}
	}
	got := make(chan replica.Object, 1)
	peers.GoGet(ctx, addr, []byte{'k', 7}, func(o replica.Object, err error) {
		if err != nil {
			t.Errorf("get: %v", err)
		}
		got <- o
	})
	if g := <-got; !g.Equal(o) {
		t.Fatalf("peer holds %v, want %v", g, o)
	}
	if err := peers.Close(); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	peers.GoMerge(ctx, addr, []byte("late"), replica.AppendObject(nil, o), func(err error) { closed <- err })
	select {
	case err := <-closed:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("merge after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call after Close never reported")
	}
}

// A peer command's name is matched in any case, the hot ones without an
// allocation per command.
func TestPeerCommandName(t *testing.T) {
	for in, want := range map[string]string{
		"R.MERGE": CmdMerge, "r.merge": CmdMerge, "R.Get": CmdGet, "ping": CmdPing,
		"auth": CmdAuth, "r.range": CmdRange, "c.write": CmdWrite, "R.MERGEX": "R.MERGEX",
	} {
		if got := commandName([]byte(in)); got != want {
			t.Errorf("commandName(%q) = %q, want %q", in, got, want)
		}
	}
	arg := []byte("r.merge")
	if n := testing.AllocsPerRun(100, func() { _ = commandName(arg) }); n != 0 {
		t.Errorf("commandName allocates %v times per call", n)
	}
}

// openStore opens a store for a test, closed when it ends.
func openStore(t testing.TB) *replica.Store {
	t.Helper()
	s, err := replica.Open(t.TempDir(), replica.Options{NodeID: "n1", Fsync: replica.FsyncNo, CacheSize: 8 << 20,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// object is a blind write's object of value v.
func object(v string) replica.Object {
	return replica.Update(replica.Object{}, nil, replica.Sibling{Value: []byte(v), Time: 1}, replica.Dot{Actor: "a#x", Counter: 1})
}

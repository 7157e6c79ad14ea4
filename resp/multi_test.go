package resp

import (
	"context"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// TestServeExecDecodes: a forwarded transaction runs and answers its
// EXEC's reply; every truncation of it, and one that arrives late, is
// refused without running anything.
func TestServeExecDecodes(t *testing.T) {
	o := replica.Update(replica.Object{}, nil, replica.Sibling{Value: []byte("v"), Time: 1}, replica.Dot{Actor: "a", Counter: 1})
	s := NewServer(mapCoord{"{t}k": o}, Options{})
	defer s.Shutdown(context.Background())
	tx := &transaction{slot: -1}
	for _, cmd := range [][]string{{"PING"}, {"GET", "{t}k"}, {"SET", "{t}j", "x"}} {
		args := make([][]byte, len(cmd))
		for i, a := range cmd {
			args[i] = []byte(a)
		}
		spec := s.lookup(args[0])
		tx.cmds, tx.specs = append(tx.cmds, args), append(tx.specs, spec)
		for _, k := range spec.keys(args) {
			tx.sameSlot(k)
		}
	}
	watches := []watch{{key: []byte("{t}k"), clock: o.Clock, live: true}}
	payload := encodeExec(tx, watches, false, false, time.Now().Add(time.Minute))
	out, err := s.ServeExec(context.Background(), payload)
	if want := "*3\r\n+PONG\r\n$1\r\nv\r\n+OK\r\n"; err != nil || string(out) != want {
		t.Fatalf("ServeExec = %q, %v; want %q", out, err, want)
	}
	watches[0].live = false // the key changed since WATCH: a null reply
	if out, err := s.ServeExec(context.Background(), encodeExec(tx, watches, false, false, time.Now().Add(time.Minute))); err != nil || string(out) != "*-1\r\n" {
		t.Fatalf("ServeExec with a changed watched key = %q, %v", out, err)
	}
	for n := range len(payload) {
		if out, err := s.ServeExec(context.Background(), payload[:n]); err == nil {
			t.Fatalf("a payload cut at %d of %d ran: %q", n, len(payload), out)
		}
	}
	late, err := s.ServeExec(context.Background(), encodeExec(tx, nil, false, false, time.Now().Add(-time.Second)))
	if err != nil || string(late[:12]) != "-UNAVAILABLE" {
		t.Fatalf("a late transaction: %q, %v", late, err)
	}
}

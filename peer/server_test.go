package peer

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// TestPeerServerConnection drives the peer port over a raw socket: nothing
// but AUTH and PING before AUTH, pipelines answered in order, a framing
// error answered and the connection closed, and Close ending Serve and the
// connections it holds.
func TestPeerServerConnection(t *testing.T) {
	store := openStore(t)
	srv, addr, served := servePeers(t, store, "sesame")

	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	expect := func(rd *bufio.Reader, want string) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(rd, got); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	send := func(c net.Conn, s string) {
		t.Helper()
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}

	c, rd := dial()
	send(c, "R.MERGE k x\r\nPING\r\n")
	expect(rd, "-NOAUTH Authentication required.\r\n+PONG\r\n")
	send(c, "*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n")
	expect(rd, "-WRONGPASS invalid cluster secret\r\n")
	send(c, "*2\r\n$4\r\nAUTH\r\n$6\r\nsesame\r\n*1\r\n$4\r\nPING\r\n*2\r\n$7\r\nR.MERGE\r\n$1\r\nk\r\n*1\r\n$4\r\nping\r\n")
	expect(rd, "+OK\r\n+PONG\r\n-ERR wrong number of arguments for 'r.merge' command\r\n+PONG\r\n")
	if o, err := store.Get([]byte("k")); err != nil || !o.Empty() {
		t.Fatalf("refused merges stored %v, %v", o, err)
	}

	bad, badRd := dial()
	send(bad, "*1\r\n$x\r\n")
	line, _ := badRd.ReadString('\n')
	if !strings.HasPrefix(line, "-ERR Protocol error: ") {
		t.Fatalf("malformed RESP answered %q, want a protocol error", line)
	}
	if _, err := badRd.ReadByte(); err != io.EOF {
		t.Fatalf("after a protocol error the connection reads %v, want EOF", err)
	}

	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if _, err := rd.ReadByte(); err == nil {
		t.Fatal("a connection stayed open after Close")
	}
}

// servePeers serves the peer protocol over store on a loopback port; it
// returns the server, its address and what Serve returns once it ends.
func servePeers(t *testing.T, store *replica.Store, secret string) (*Server, string, <-chan error) {
	t.Helper()
	srv := NewServer(store, secret, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return srv, ln.Addr().String(), served
}

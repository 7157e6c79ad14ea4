package resp

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
)

// TestPusherOrderAndStop: what is queued is written in order, and stop
// writes what is left before it returns.
func TestPusherOrderAndStop(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	p := newPusher(a, 1<<20)
	var want bytes.Buffer
	got := make(chan []byte)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	for i := range 1000 {
		msg := pushFrame(nil, false, "message", nil, []byte("ch"), []byte(strconv.Itoa(i)))
		want.Write(msg)
		p.send(msg)
	}
	p.stop()
	a.Close()
	if all := <-got; !bytes.Equal(all, want.Bytes()) {
		t.Fatalf("wrote %d bytes, want %d in order", len(all), want.Len())
	}
}

// TestPusherLimit: a subscriber that reads nothing is cut off once its
// queue would pass the limit, and sends after that are dropped.
func TestPusherLimit(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	p := newPusher(a, 1000)
	msg := bytes.Repeat([]byte("x"), 300)
	for range 10 {
		p.send(msg)
	}
	p.mu.Lock()
	dropped, queued := p.mu.dropped, len(p.mu.queue)
	p.mu.Unlock()
	if !dropped || queued != 0 {
		t.Fatalf("after 3000 bytes to a reader of none: dropped %v, %d queued", dropped, queued)
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("the connection of a cut-off subscriber is still open")
	}
	p.stop()
}

// TestHoldKeepsConfirmationFirst: while held, nothing is written; on
// release the batch's replies go first, then messages queued meanwhile.
func TestHoldKeepsConfirmationFirst(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	p := newPusher(a, 1<<20)
	p.hold([]byte("confirm;"))
	p.send([]byte("message;"))
	p.release()
	buf := make([]byte, len("confirm;message;"))
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "confirm;message;" {
		t.Fatalf("read %q, %v", buf, err)
	}
	p.stop()
}

package resp

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynakv/dynakv/wire"
)

// chunkConn is a net.Conn that returns a fixed stream in given chunk sizes
// and records what is written to it.
type chunkConn struct {
	data   []byte
	sizes  func() int
	wrote  bytes.Buffer
	closed bool
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.sizes(), len(c.data), len(p))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}
func (c *chunkConn) Write(p []byte) (int, error)      { return c.wrote.Write(p) }
func (c *chunkConn) Close() error                     { c.closed = true; return nil }
func (c *chunkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *chunkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *chunkConn) SetDeadline(time.Time) error      { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// guarded runs stream through a guard in chunks and returns what the
// command reader parses, the guard's refusals and what the guard wrote back.
func guarded(t *testing.T, stream string, maxBulk int64, sizes func() int) (cmds []string, g *guard, wrote string) {
	t.Helper()
	cc := &chunkConn{data: []byte(stream), sizes: sizes}
	g = newGuard(cc, limits{maxBulk: maxBulk}, &atomic.Int64{}, nil, nil)
	rd := wire.NewReader(g)
	for {
		batch, err := rd.Next()
		if err != nil {
			break
		}
		for _, args := range batch {
			var parts []string
			for _, a := range args {
				parts = append(parts, string(a))
			}
			cmds = append(cmds, strings.Join(parts, " "))
		}
	}
	return cmds, g, cc.wrote.String()
}

func TestGuardChunkingIsInvisible(t *testing.T) {
	big := strings.Repeat("x", 100)
	stream := "*1\r\n$4\r\nPING\r\n" +
		"*0\r\n" + // ignored, as Redis does
		"SET a b\r\n" + // inline
		"\r\n" + // an empty inline line: no command
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n" + big + "\r\n" + // refused: over 64 bytes
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" +
		"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$64\r\n" + strings.Repeat("y", 64) + "\r\n" + // exactly at the limit
		"*-1\r\n" +
		"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"
	want := []string{"PING", "SET a b", "SET k ", "GET k", "SET big " + strings.Repeat("y", 64), "ECHO "}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		sizes := func() int { return 1 + rng.IntN(40) }
		if trial == 0 {
			sizes = func() int { return len(stream) }
		}
		cmds, g, wrote := guarded(t, stream, 64, sizes)
		if strings.Join(cmds, "|") != strings.Join(want, "|") {
			t.Fatalf("trial %d: commands %q, want %q", trial, cmds, want)
		}
		if msg, ok := g.takePoison(3); !ok || !strings.Contains(msg, "invalid bulk length") {
			t.Fatalf("trial %d: command 3 not refused: %v %v", trial, ok, g.poisoned)
		}
		if len(g.poisoned) != 0 || wrote != "" {
			t.Fatalf("trial %d: extra refusals %v or writes %q", trial, g.poisoned, wrote)
		}
	}
}

func TestGuardFatalErrors(t *testing.T) {
	cases := []struct{ stream, msg string }{
		{"*x\r\n", "invalid multibulk length"},
		{"*2000000\r\n", "invalid multibulk length"},
		{"*1\r\n+PING\r\n", "expected '$', got '+'"},
		{"*1\r\n$-5\r\n", "invalid bulk length"},
		{"*1\r\n$abc\r\n", "invalid bulk length"},
		{"*1\r\n$4\r\nPINGXX", "invalid bulk length"},
		{"*1\r\n$" + strings.Repeat("9", 40), "invalid bulk length"},
		{strings.Repeat("a", maxInline+1), "too big inline request"},
	}
	for _, tc := range cases {
		// A complete command before the bad framing is still delivered.
		cmds, _, wrote := guarded(t, "PING\r\n"+tc.stream, 1<<20, func() int { return 7 })
		if len(cmds) != 1 || cmds[0] != "PING" {
			t.Errorf("%q: commands before the error: %q", tc.stream, cmds)
		}
		if want := "-ERR Protocol error: " + tc.msg + "\r\n"; wrote != want {
			t.Errorf("%q: wrote %q, want %q", tc.stream, wrote, want)
		}
	}
}

// An oversized bulk is discarded as it streams: the guard never hands it
// on, however large it is.
func TestGuardDiscardsWithoutBuffering(t *testing.T) {
	const size = 8 << 20
	stream := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n", size, strings.Repeat("z", size))
	cc := &chunkConn{data: []byte(stream), sizes: func() int { return 1 << 16 }}
	g := newGuard(cc, limits{maxBulk: 1024}, &atomic.Int64{}, nil, nil)
	var passed int
	buf := make([]byte, 1<<16)
	for {
		n, err := g.Read(buf)
		passed += n
		if err != nil {
			break
		}
	}
	if passed > 100 {
		t.Fatalf("guard passed on %d bytes of an 8 MB refused command", passed)
	}
	if len(g.poisoned) != 1 || g.poisoned[0].seq != 1 {
		t.Fatalf("refusals: %v", g.poisoned)
	}
}

// A command that keeps growing past the query buffer limit ends the
// connection with an error; commands under it, and pipelines of many
// small commands, pass.
func TestGuardQueryBufferLimit(t *testing.T) {
	arg := strings.Repeat("a", 100)
	small := "*2\r\n$4\r\nECHO\r\n$100\r\n" + arg + "\r\n"
	var huge strings.Builder
	huge.WriteString("*50\r\n$4\r\nMSET\r\n")
	for range 49 {
		huge.WriteString("$100\r\n" + arg + "\r\n")
	}
	stream := strings.Repeat(small, 100) + huge.String() + small
	cc := &chunkConn{data: []byte(stream), sizes: func() int { return 333 }}
	g := newGuard(cc, limits{maxBulk: 1 << 20, queryLimit: 1000}, &atomic.Int64{}, nil, nil)
	rd := wire.NewReader(g)
	n := 0
	for {
		batch, err := rd.Next()
		if err != nil {
			break
		}
		n += len(batch)
	}
	if n != 100 {
		t.Fatalf("%d commands passed, want the 100 under the limit", n)
	}
	if !strings.Contains(cc.wrote.String(), "query buffer limit") {
		t.Fatalf("wrote %q, want the query buffer error", cc.wrote.String())
	}
}

// TestGuardRefusesBeforeTheReaderSeesIt: an oversized bulk whose bytes
// arrive over many reads is refused before the command it stands in for
// reaches the server, and nothing else is: the reader may see the
// command (its oversized bulk emptied) as soon as the bulk's header
// arrives, and an unrefused SET would then store an empty value.
func TestGuardRefusesBeforeTheReaderSeesIt(t *testing.T) {
	const size = 1 << 20
	stream := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n*4\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nNX\r\n",
		size, strings.Repeat("z", size), size, strings.Repeat("k", size), size, strings.Repeat("v", size))
	cc := &chunkConn{data: []byte(stream), sizes: func() int { return 4096 }}
	g := newGuard(cc, limits{maxBulk: 1024}, &atomic.Int64{}, nil, nil)
	rd := wire.NewReader(g)
	var seq uint64
	var got []string
	for {
		batch, err := rd.Next()
		if err != nil {
			break
		}
		for _, args := range batch {
			seq++
			msg, refused := g.takePoison(seq)
			got = append(got, fmt.Sprintf("%s refused=%v %s", args[0], refused, msg))
		}
	}
	want := []string{
		"SET refused=true Protocol error: invalid bulk length (1048576 bytes is more than proto-max-bulk-len 1024)",
		"PING refused=false ",
		"SET refused=true Protocol error: invalid bulk length (1048576 bytes is more than proto-max-bulk-len 1024)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands as the server sees them:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(g.poisoned) != 0 {
		t.Fatalf("refusals left unanswered: %v", g.poisoned)
	}
}

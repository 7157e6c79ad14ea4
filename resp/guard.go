package resp

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// Redis's protocol limits.
const (
	maxMultibulk   = 1024 * 1024 // arguments in one command
	maxInline      = 64 * 1024   // bytes in one inline command
	maxHeaderBytes = 32          // a "*n" or "$n" line, digits and CRLF
	guardReadSize  = 16 * 1024
)

type guardState uint8

const (
	gsStart      guardState = iota // at the start of a command
	gsMultiLen                     // in "*<n>\r\n"
	gsBulkDollar                   // expecting '$'
	gsBulkLen                      // in "$<n>\r\n"
	gsBulkBody                     // in a bulk's bytes
	gsBulkCR                       // expecting the bulk's '\r'
	gsBulkLF                       // expecting the bulk's '\n'
	gsInline                       // in an inline command line
)

// poison marks the command with sequence number seq (counting from 1 the
// commands that reach the server) as refused with msg.
type poison struct {
	seq uint64
	msg string
}

// guard sits between the socket and the command reader and checks the RESP
// framing as bytes arrive, before the reader buffers them. It rewrites the
// stream in two ways:
//
//   - a bulk longer than maxBulk is replaced by an empty bulk and its bytes
//     are discarded as they stream in; the command is recorded in poisoned
//     so that the server answers it with an error, in order, and the
//     connection carries on;
//   - malformed framing (a bad length, a missing '$', an inline line past
//     64 KB) is fatal as in Redis: the complete commands before it are
//     passed on and answered, then the next Read writes the protocol error
//     and ends the connection.
//
// Empty multibulks ("*0", "*-1") are dropped, as Redis ignores them.
//
// A guard is used by its connection's goroutine only: the reader reads and
// runs the handler on the same goroutine.
type guard struct {
	net.Conn
	limits
	// bytesIn and bytesOut count the bytes read and written (INFO's
	// total_net_input_bytes and total_net_output_bytes).
	bytesIn, bytesOut *atomic.Int64
	// protocol counts the connections closed for a protocol error.
	protocol *atomic.Int64

	in     []byte
	out    []byte
	outPos int
	err    error // a read error to return once out is drained

	st        guardState
	line      []byte // a header line being read
	bulks     int64  // bulks left in the current multibulk
	body      int64  // body bytes left in the current bulk
	skip      bool   // the current bulk is being discarded
	inlineLen int
	inlineArg bool // the inline line has a non-space byte
	// cmdPoisoned is set once the unfinished command is refused: the
	// refusal is recorded as its first oversized bulk's header arrives,
	// since the empty bulk that stands in for it may complete the
	// command for the reader before the discarded bytes have arrived.
	cmdPoisoned bool
	cmdBytes    int64 // bytes of the unfinished command passed on so far

	complete uint64   // commands passed on so far
	poisoned []poison // refused commands not yet answered, by seq
	fatal    string   // a protocol error to send before closing
}

// limits are what a guard enforces on one client, as Redis's
// proto-max-bulk-len, client-query-buffer-limit and timeout.
type limits struct {
	maxBulk    int64         // a longer bulk is refused and discarded
	queryLimit int64         // an unfinished command past it closes the connection; 0: none
	idle       time.Duration // a client silent this long is closed; 0: never
}

func newGuard(c net.Conn, l limits, bytesIn, bytesOut, protocol *atomic.Int64) *guard {
	return &guard{Conn: c, limits: l, bytesIn: bytesIn, bytesOut: bytesOut, protocol: protocol, in: make([]byte, guardReadSize)}
}

// Read implements net.Conn for the command reader.
func (g *guard) Read(p []byte) (int, error) {
	for {
		if g.outPos < len(g.out) {
			n := copy(p, g.out[g.outPos:])
			g.outPos += n
			return n, nil
		}
		if g.fatal != "" {
			// Every reply before this point has been flushed: the reader reads
			// only when it holds no complete command.
			_, _ = g.Conn.Write([]byte("-ERR Protocol error: " + g.fatal + "\r\n"))
			g.fatal = ""
			g.err = io.EOF
		}
		if g.err != nil {
			return 0, g.err
		}
		if g.idle > 0 {
			// Read is called only between commands: the reader reads when it
			// holds no complete one, so this times out idleness alone.
			_ = g.Conn.SetReadDeadline(time.Now().Add(g.idle))
		}
		n, err := g.Conn.Read(g.in)
		g.bytesIn.Add(int64(n))
		g.out, g.outPos = g.out[:0], 0
		g.feed(g.in[:n])
		g.err = err
	}
}

// takePoison reports whether the command with sequence number seq was
// refused by the guard, and why.
func (g *guard) takePoison(seq uint64) (string, bool) {
	if len(g.poisoned) == 0 || g.poisoned[0].seq != seq {
		return "", false
	}
	msg := g.poisoned[0].msg
	g.poisoned = g.poisoned[1:]
	return msg, true
}

// Write writes replies to the connection, counting them.
func (g *guard) Write(p []byte) (int, error) {
	n, err := g.Conn.Write(p)
	if g.bytesOut != nil {
		g.bytesOut.Add(int64(n))
	}
	return n, err
}

func (g *guard) fail(msg string) {
	if g.protocol != nil {
		g.protocol.Add(1)
	}
	g.fatal = msg
	g.st = gsStart
}

// feed runs the framing state machine over b, appending to g.out what
// the reader should see.
func (g *guard) feed(b []byte) {
	for len(b) > 0 && g.fatal == "" {
		switch g.st {
		case gsStart:
			if b[0] == '*' {
				g.st, g.line = gsMultiLen, g.line[:0]
				b = b[1:]
				continue
			}
			g.st, g.inlineLen, g.inlineArg = gsInline, 0, false
		case gsInline:
			b = g.feedInline(b)
		case gsMultiLen, gsBulkLen:
			b = g.feedHeader(b)
		case gsBulkDollar:
			if b[0] != '$' {
				g.fail(fmt.Sprintf("expected '$', got '%c'", b[0]))
				return
			}
			g.st, g.line = gsBulkLen, g.line[:0]
			b = b[1:]
		case gsBulkBody:
			n := int64(len(b))
			if n > g.body {
				n = g.body
			}
			if !g.skip {
				g.out = append(g.out, b[:n]...)
				if !g.grow(n) {
					return
				}
			}
			g.body -= n
			b = b[n:]
			if g.body == 0 {
				if g.skip {
					g.endBulk()
				} else {
					g.st = gsBulkCR
				}
			}
		case gsBulkCR, gsBulkLF:
			want := byte('\r')
			if g.st == gsBulkLF {
				want = '\n'
			}
			if b[0] != want {
				g.fail("invalid bulk length")
				return
			}
			g.out = append(g.out, b[0])
			b = b[1:]
			if g.st == gsBulkCR {
				g.st = gsBulkLF
			} else {
				g.endBulk()
			}
		}
	}
}

func (g *guard) feedInline(b []byte) []byte {
	for i, c := range b {
		if c == '\n' {
			g.out = append(g.out, b[:i+1]...)
			if g.inlineArg {
				g.complete++
			}
			g.st = gsStart
			return b[i+1:]
		}
		if c != ' ' && c != '\r' {
			g.inlineArg = true
		}
		g.inlineLen++
		if g.inlineLen > maxInline {
			g.fail("too big inline request")
			return nil
		}
	}
	g.out = append(g.out, b...)
	return nil
}

// feedHeader collects a "*<n>" or "$<n>" line and acts on it once whole.
func (g *guard) feedHeader(b []byte) []byte {
	for i, c := range b {
		if c != '\n' {
			continue
		}
		g.line = append(g.line, b[:i]...)
		g.header()
		return b[i+1:]
	}
	g.line = append(g.line, b...)
	if len(g.line) > maxHeaderBytes {
		if g.st == gsMultiLen {
			g.fail("invalid multibulk length")
		} else {
			g.fail("invalid bulk length")
		}
	}
	return nil
}

func (g *guard) header() {
	line := g.line
	ok := len(line) > 1 && line[len(line)-1] == '\r'
	var n int64
	if ok {
		var err error
		n, err = strconv.ParseInt(string(line[:len(line)-1]), 10, 64)
		ok = err == nil
	}
	if g.st == gsMultiLen {
		switch {
		case !ok || n > maxMultibulk:
			g.fail("invalid multibulk length")
		case n <= 0:
			g.st = gsStart
		default:
			g.out = append(g.out, '*')
			g.out = append(g.out, line...)
			g.out = append(g.out, '\n')
			g.bulks, g.st = n, gsBulkDollar
			g.cmdBytes = 0
			g.grow(int64(len(line)) + 2)
		}
		return
	}
	switch {
	case !ok || n < 0:
		g.fail("invalid bulk length")
	case n > g.maxBulk:
		if !g.cmdPoisoned {
			g.cmdPoisoned = true
			msg := fmt.Sprintf("Protocol error: invalid bulk length (%d bytes is more than proto-max-bulk-len %d)", n, g.maxBulk)
			g.poisoned = append(g.poisoned, poison{g.complete + 1, msg})
		}
		g.out = append(g.out, "$0\r\n\r\n"...)
		g.skip, g.body, g.st = true, n+2, gsBulkBody
	default:
		g.out = append(g.out, '$')
		g.out = append(g.out, line...)
		g.out = append(g.out, '\n')
		g.skip, g.body, g.st = false, n, gsBulkBody
		if n == 0 {
			g.st = gsBulkCR
		}
		g.grow(int64(len(line)) + 2)
	}
}

// grow counts n more bytes of the unfinished command, and fails the
// connection once they pass the query buffer limit: a client cannot make
// the node buffer without bound a command that never ends. It reports
// whether the connection may go on.
func (g *guard) grow(n int64) bool {
	g.cmdBytes += n
	if g.queryLimit > 0 && g.cmdBytes > g.queryLimit {
		g.fail(fmt.Sprintf("query buffer limit reached (a command of more than %d bytes; client-query-buffer-limit)", g.queryLimit))
		return false
	}
	return true
}

func (g *guard) endBulk() {
	g.skip = false
	g.bulks--
	if g.bulks > 0 {
		g.st = gsBulkDollar
		return
	}
	g.complete++
	g.cmdPoisoned = false
	g.st = gsStart
}

// guardListener wraps each accepted connection in a guard.
type guardListener struct {
	net.Listener
	limits
	bytesIn, bytesOut, protocol *atomic.Int64
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newGuard(c, l.limits, l.bytesIn, l.bytesOut, l.protocol), nil
}

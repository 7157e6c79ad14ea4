package wire

import (
	"io"

	"github.com/tidwall/redcon"
)

// Reader buffer sizes.
const (
	readChunk = 16 << 10 // a fresh buffer; a command larger than this gets one its size
	argsSlab  = 1024     // argument headers allocated at once
)

// ProtocolError is a framing error found by the parser: the server answers
// the connection with it ("-ERR Protocol error: ...") and closes it, as
// Redis does.
type ProtocolError struct{ Msg string }

func (e ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// Reader parses whole commands out of what it reads, without copying
// them: a command's arguments are slices of the buffer the bytes
// were read into, and the slices themselves are cut from a shared slab.
//
// Neither is ever reused. A full buffer is left to the garbage collector
// and reading goes on in a fresh one (with the unfinished command's bytes
// carried over), so an argument stays valid for as long as anything holds
// it: work a request leaves behind (a read repair, a write to the last
// replicas) keeps its key. That costs one allocation per 16 KB read
// instead of two per command.
type Reader struct {
	rd         io.Reader
	buf        []byte
	start, end int // buf[start:end] is read and not yet parsed
	slab       [][]byte
	cmds       [][][]byte // the batch next returns, reused
}

// NewReader returns a Reader of rd.
func NewReader(rd io.Reader) *Reader { return &Reader{rd: rd} }

// Next returns the commands that have arrived whole, reading until there
// is at least one. The batch is valid until the next call; the arguments
// in it stay valid for good. A framing error is a ProtocolError, returned
// after the commands before it.
func (r *Reader) Next() ([][][]byte, error) {
	clear(r.cmds) // let the last batch's arguments go
	r.cmds = r.cmds[:0]
	for {
		if err := r.parse(); err != nil {
			return nil, err
		}
		if len(r.cmds) > 0 {
			return r.cmds, nil
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// parse appends to r.cmds every whole command in the buffer.
func (r *Reader) parse() error {
	for r.start < r.end {
		b := r.buf[r.start:r.end]
		if b[0] != '*' {
			ok, err := r.inline(b)
			if !ok || err != nil {
				return err
			}
			continue
		}
		if len(r.slab) < 64 {
			r.slab = make([][]byte, argsSlab)
		}
		complete, args, _, left, err := redcon.ReadNextCommand(b, r.slab[:0])
		if err != nil {
			return ProtocolError{protocolMessage(err)}
		}
		if !complete {
			return nil
		}
		r.start = r.end - len(left)
		if len(args) == 0 {
			continue // "*0": no command (the guard drops these already)
		}
		if len(args) <= len(r.slab) && &args[0] == &r.slab[0] {
			r.slab = r.slab[len(args):] // else append outgrew the slab: args has its own array
		}
		r.cmds = append(r.cmds, args[:len(args):len(args)])
	}
	return nil
}

// inline takes one inline command ("SET k v\r\n", as telnet sends) off
// the front of b. It reports false when the line is not whole yet; a blank
// line is no command.
func (r *Reader) inline(b []byte) (bool, error) {
	i := 0
	for i < len(b) && b[i] != '\n' {
		i++
	}
	if i == len(b) {
		return false, nil
	}
	line := b[:i+1]
	r.start += i + 1
	if blank(line) {
		return true, nil
	}
	cmd, err := redcon.Parse(line)
	if err != nil {
		return false, ProtocolError{protocolMessage(err)}
	}
	r.cmds = append(r.cmds, cmd.Args)
	return true, nil
}

// blank reports whether an inline line holds no argument: only spaces
// before its line end.
func blank(line []byte) bool {
	for i, c := range line {
		if c == ' ' || c == '\n' || (c == '\r' && i == len(line)-2) {
			continue
		}
		return false
	}
	return true
}

// protocolMessage is what follows "Protocol error: " in a redcon error.
func protocolMessage(err error) string {
	const prefix = "Protocol error: "
	if msg := err.Error(); len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return err.Error()
}

// fill reads more bytes. When the buffer is full it moves on to a fresh
// one, taking the unfinished command along; a command that fills a whole
// buffer gets one twice its size.
func (r *Reader) fill() error {
	if r.start == r.end && r.end > 0 && len(r.buf)-r.end < readChunk/4 {
		r.buf, r.start, r.end = nil, 0, 0 // everything parsed: start afresh
	}
	if r.end == len(r.buf) {
		size := readChunk
		if pending := r.end - r.start; pending*2 > size {
			size = pending * 2
		}
		fresh := make([]byte, size)
		r.end = copy(fresh, r.buf[r.start:r.end])
		r.buf, r.start = fresh, 0
	}
	n, err := r.rd.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

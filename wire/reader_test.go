package wire

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// readAll parses stream, read in chunks of size bytes, and returns every
// batch's commands (as retained argument slices) and the final error.
func readAll(stream string, size int) ([][][]byte, error) {
	rd := NewReader(&chunks{data: []byte(stream), size: size})
	var all [][][]byte
	for {
		batch, err := rd.Next()
		if err != nil {
			return all, err
		}
		all = append(all, batch...) // the batch slice is reused; the arguments are not
	}
}

func multibulk(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// TestReaderArgumentsOutliveTheirBatch checks what makes the reader's
// zero-copy parsing safe: an argument kept after its batch (as a key is by
// a read repair still running) is never overwritten by later reads, across
// many buffers' worth of commands.
func TestReaderArgumentsOutliveTheirBatch(t *testing.T) {
	var stream strings.Builder
	const n = 5000 // about 20 buffers of commands
	for i := range n {
		stream.WriteString(multibulk("SET", fmt.Sprintf("key:%06d", i), strings.Repeat(string(rune('a'+i%26)), 50)))
	}
	for _, size := range []int{7, 100, 4096, 1 << 20} {
		cmds, err := readAll(stream.String(), size)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("chunks of %d: ended with %v, want EOF", size, err)
		}
		if len(cmds) != n {
			t.Fatalf("chunks of %d: %d commands, want %d", size, len(cmds), n)
		}
		for i, args := range cmds {
			want := []string{"SET", fmt.Sprintf("key:%06d", i), strings.Repeat(string(rune('a'+i%26)), 50)}
			if len(args) != 3 || string(args[0]) != want[0] || string(args[1]) != want[1] || string(args[2]) != want[2] {
				t.Fatalf("chunks of %d: command %d is %q, want %q", size, i, args, want)
			}
		}
	}
}

// TestReaderLargeCommand checks a command bigger than a read buffer, and
// one with more arguments than a slab of argument headers, between small
// ones.
func TestReaderLargeCommand(t *testing.T) {
	big := strings.Repeat("v", 3*readChunk+5)
	many := make([]string, argsSlab+10)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	stream := multibulk("PING") + multibulk("SET", "big", big) + multibulk(many...) + multibulk("GET", "big")
	for _, size := range []int{1000, readChunk, 10 * readChunk} {
		cmds, err := readAll(stream, size)
		if !errors.Is(err, io.EOF) || len(cmds) != 4 {
			t.Fatalf("chunks of %d: %d commands and %v, want 4 and EOF", size, len(cmds), err)
		}
		if string(cmds[1][2]) != big {
			t.Fatalf("chunks of %d: the big value came back as %d bytes", size, len(cmds[1][2]))
		}
		if len(cmds[2]) != len(many) || string(cmds[2][len(many)-1]) != many[len(many)-1] {
			t.Fatalf("chunks of %d: the long command has %d arguments, want %d", size, len(cmds[2]), len(many))
		}
		if string(cmds[3][0]) != "GET" || string(cmds[0][0]) != "PING" {
			t.Fatalf("chunks of %d: commands around the large ones are %q and %q", size, cmds[0], cmds[3])
		}
	}
}

// TestReaderInline checks inline commands as telnet sends them: quoting as
// in Redis, blank lines skipped, and unbalanced quotes a protocol error
// after the commands before them.
func TestReaderInline(t *testing.T) {
	cmds, err := readAll("SET k \"a b\"\r\n   \r\n\nGET k\n"+multibulk("PING")+"SET \"x\r\n", 3)
	var pe ProtocolError
	if !errors.As(err, &pe) || !strings.Contains(pe.Error(), "unbalanced quotes") {
		t.Fatalf("ended with %v, want the unbalanced quotes protocol error", err)
	}
	var got []string
	for _, args := range cmds {
		got = append(got, fmt.Sprintf("%q", args))
	}
	want := []string{`["SET" "k" "a b"]`, `["GET" "k"]`, `["PING"]`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("commands %v, want %v", got, want)
	}
}

// chunks is a stream read in chunks of size bytes.
type chunks struct {
	data []byte
	size int
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(c.size, len(p))], c.data)
	c.data = c.data[n:]
	return n, nil
}

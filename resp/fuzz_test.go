package resp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// onePlace is the placement of a one-node cluster.
type onePlace struct{}

func (onePlace) Preference(uint64) ([]string, []string, []string) { return []string{"n1"}, nil, nil }
func (onePlace) Up(string) bool                                   { return true }
func (onePlace) Partitions() int                                  { return 16 }
func (onePlace) Nodes() []string                                  { return []string{"n1"} }
func (onePlace) Sole() string                                     { return "n1" }
func (onePlace) Legacy() bool                                     { return false }
func (onePlace) Zone(string) string                               { return "" }
func (onePlace) SpreadAcks() bool                                 { return false }
func (onePlace) ContextKey() []byte                               { return []byte("resp test context key") }

// quietCluster answers the DYN.* commands of a one-node cluster.
type quietCluster struct{}

func (quietCluster) Members() []Member             { return []Member{{ID: "n1", State: "alive"}} }
func (quietCluster) PrefList(key []byte) []Replica { return []Replica{{ID: "n1", Up: true}} }
func (quietCluster) RingSummary() RingSummary {
	return RingSummary{Epoch: 1, Nodes: []NodeShare{{ID: "n1", Partitions: 16}}}
}
func (quietCluster) Leave(context.Context) error          { return nil }
func (quietCluster) Forget(context.Context, string) error { return nil }
func (quietCluster) Transfers() []Transfer {
	return []Transfer{{ID: "n1", State: "receiving", Partitions: 4, Done: 1, Copied: 10, Expected: 40, ElapsedMs: 5}}
}
func (quietCluster) Hints() []HintTarget { return []HintTarget{{Target: "n2", Count: 3, Bytes: 300}} }
func (quietCluster) Slots() SlotMap {
	n := SlotNode{ID: "n1", Addr: "127.0.0.1:6379", Up: true}
	return SlotMap{Epoch: 1, Self: "n1", Nodes: []SlotNode{n}, Runs: []SlotRun{{First: 0, Last: replica.Slots - 1, Nodes: []SlotNode{n}}}}
}

// FuzzCommand feeds arbitrary arguments to every command of the table
// (the first byte picks it) through the real coordinator over a real
// Pebble store: no handler may panic, and every reply must be one
// well-formed RESP value.
func FuzzCommand(f *testing.F) {
	store, err := replica.Open(f.TempDir(), replica.Options{NodeID: "n1", Fsync: replica.FsyncNo, CacheSize: 8 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	net := coord.NewMemNetwork(1)
	c := coord.New(store, net.Transport("n1"), onePlace{}, coord.Options{Self: "n1", N: 1, R: 1, W: 1, Timeout: 1e9})
	net.Add("n1", store, c)
	s := NewServer(c, Options{
		Cluster: quietCluster{}, Repair: func() {},
		Checkpoint: func(context.Context) (string, error) { return "", context.Canceled },
		Info:       func() []Section { return nil },
	})
	cmds := s.sortedCommands()
	for _, seed := range [][]string{
		{"set", "k", "v", "EX", "10"}, {"dput", "k", "", "v", "W", "1"}, {"dget", "k", "R", "1"},
		{"incrby", "n", "-5"}, {"expire", "k", "5", "GT"}, {"scan", "0", "MATCH", "k*", "COUNT", "10"},
		{"getex", "k", "PERSIST"}, {"client", "setname", "x"}, {"mset", "a", "1", "b", "2"},
	} {
		for j, cmd := range cmds {
			if cmd.name == seed[0] {
				args := append(seed[1:], "", "", "", "", "")[:5]
				f.Add(uint8(j), uint8(len(seed)-1), args[0], args[1], args[2], args[3], args[4])
			}
		}
	}
	f.Fuzz(func(t *testing.T, which, n uint8, a0, a1, a2, a3, a4 string) {
		spec := cmds[int(which)%len(cmds)]
		args := [][]byte{[]byte(strings.ToUpper(spec.name))}
		for _, a := range []string{a0, a1, a2, a3, a4}[:int(n)%6] {
			args = append(args, []byte(a))
		}
		cl := &client{authed: true, guard: &guard{}}
		var r reply
		if got := s.prepare(cl, args, &r); got != nil {
			s.run(got, cl, args, &r)
		}
		if bytes.Equal(r.b, []byte("-ERR internal error\r\n")) {
			t.Fatalf("%q panicked", args)
		}
		br := bufio.NewReader(bytes.NewReader(r.b))
		if err := checkRESP(br); err != nil || br.Buffered() != 0 {
			t.Fatalf("%q: reply %q is not one RESP value: %v", args, r.b, err)
		}
	})
}

// checkRESP reads one RESP2 value.
func checkRESP(r *bufio.Reader) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return errors.New("line without CRLF")
	}
	body := line[1 : len(line)-2]
	if strings.ContainsAny(body, "\r\n") {
		return errors.New("CR or LF inside a line")
	}
	switch line[0] {
	case '+', '-':
		return nil
	case ':':
		_, err := strconv.ParseInt(body, 10, 64)
		return err
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return errors.New("bad bulk length")
		}
		if n == -1 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		if string(buf[n:]) != "\r\n" {
			return errors.New("bulk without CRLF")
		}
		return nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return errors.New("bad array length")
		}
		for range n {
			if err := checkRESP(r); err != nil {
				return err
			}
		}
		return nil
	}
	return errors.New("unknown type " + strconv.Quote(line[:1]))
}

package resp

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// slowlog keeps the latest commands that took longer than a threshold, as
// Redis's SLOWLOG does: newest first, bounded in entries and in what each
// keeps of its arguments.
type slowlog struct {
	slowerThan atomic.Int64 // µs; negative: off, 0: every command
	maxLen     atomic.Int64

	mu      sync.Mutex
	entries []slowEntry // newest first
	nextID  int64
}

type slowEntry struct {
	id         int64
	at         int64 // Unix seconds
	micros     int64
	args       []string
	addr, name string
}

// Redis's defaults, and what an entry keeps of a command.
const (
	slowlogSlowerThan = 10000
	slowlogMaxLen     = 128
	slowlogMaxArgs    = 32
	slowlogMaxArgLen  = 128
)

// finished is called after every command ran: its stats and metrics, and
// the slow log when it was slow.
func (s *Server) finished(spec *command, c *client, args [][]byte, r *reply, took time.Duration) {
	spec.observe(took, errorPrefix(r.b))
	if r.lastDot.Counter != 0 {
		c.noteWrite(r.lastKey, r.lastDot)
		r.lastKey, r.lastDot = nil, replica.Dot{}
	}
	if limit := s.slow.slowerThan.Load(); limit >= 0 && took.Microseconds() >= limit {
		s.slow.add(c, args, took)
	}
}

func (l *slowlog) add(c *client, args [][]byte, took time.Duration) {
	e := slowEntry{at: time.Now().Unix(), micros: took.Microseconds(), addr: c.addr, name: c.name()}
	for i, a := range args {
		if i == slowlogMaxArgs-1 && len(args) > slowlogMaxArgs {
			e.args = append(e.args, "... ("+strconv.Itoa(len(args)-slowlogMaxArgs+1)+" more arguments)")
			break
		}
		if len(a) > slowlogMaxArgLen {
			e.args = append(e.args, string(a[:slowlogMaxArgLen])+"... ("+strconv.Itoa(len(a)-slowlogMaxArgLen)+" more bytes)")
			continue
		}
		e.args = append(e.args, string(a))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e.id = l.nextID
	l.nextID++
	l.entries = append([]slowEntry{e}, l.entries...)
	if max := int(l.maxLen.Load()); len(l.entries) > max {
		l.entries = l.entries[:max]
	}
}

// cmdSlowlog serves SLOWLOG GET [count], LEN, RESET and HELP.
func cmdSlowlog(s *Server, c *client, args [][]byte, r *reply) {
	l := &s.slow
	switch sub := strings.ToLower(string(args[1])); {
	case sub == "get" && len(args) <= 3:
		count := int64(10)
		if len(args) == 3 {
			n, err := strconv.ParseInt(string(args[2]), 10, 64)
			if err != nil || n < -1 {
				r.err("ERR count should be greater than or equal to -1")
				return
			}
			count = n
		}
		l.mu.Lock()
		entries := l.entries
		if count >= 0 && int(count) < len(entries) {
			entries = entries[:count]
		}
		r.array(len(entries))
		for _, e := range entries {
			r.array(6)
			r.int(e.id)
			r.int(e.at)
			r.int(e.micros)
			r.strings(e.args...)
			r.bulkString(e.addr)
			r.bulkString(e.name)
		}
		l.mu.Unlock()
	case sub == "len" && len(args) == 2:
		l.mu.Lock()
		r.int(int64(len(l.entries)))
		l.mu.Unlock()
	case sub == "reset" && len(args) == 2:
		l.mu.Lock()
		l.entries = nil
		l.mu.Unlock()
		r.ok()
	case sub == "help" && len(args) == 2:
		r.strings(
			"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET [<count>]",
			"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"LEN",
			"    Return the length of the slowlog.",
			"RESET",
			"    Reset the slowlog.",
			"HELP",
			"    Print this help.")
	default:
		r.err(unknownSubcommand("slowlog", args[1]))
	}
}

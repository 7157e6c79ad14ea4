package resp

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MONITOR, CLIENT PAUSE/UNPAUSE and CLIENT REPLY: the connection-level
// controls operators' tools use.

// monitors are the connections that asked for MONITOR; each gets every
// command this node runs, through its pusher.
type monitors struct {
	n  atomic.Int32 // len(set): the hot path reads only this
	mu sync.Mutex
	on map[*client]struct{}
}

func (m *monitors) add(c *client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.on == nil {
		m.on = map[*client]struct{}{}
	}
	m.on[c] = struct{}{}
	m.n.Store(int32(len(m.on)))
}

func (m *monitors) remove(c *client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.on, c)
	m.n.Store(int32(len(m.on)))
}

// notMonitored are the commands MONITOR does not show besides the admin
// ones, as Redis hides them: those that carry credentials.
var notMonitored = map[string]bool{"auth": true, "hello": true, "monitor": true}

// feed sends a command to the monitors as Redis formats it:
// +<seconds>.<micros> [0 <addr>] "cmd" "arg" ...
func (m *monitors) feed(c *client, spec *command, args [][]byte) {
	if m.n.Load() == 0 || notMonitored[spec.name] || spec.flags&flagAdmin != 0 {
		return
	}
	now := time.Now()
	b := []byte{'+'}
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, '.')
	b = append(b, strconv.Itoa(now.Nanosecond()/1000 + 1000000)[1:]...)
	b = append(b, " [0 "...)
	b = append(b, c.addr...)
	b = append(b, ']')
	for _, a := range args {
		b = append(b, ' ')
		b = appendQuoted(b, a)
	}
	b = append(b, '\r', '\n')
	m.mu.Lock()
	defer m.mu.Unlock()
	for mc := range m.on {
		mc.push.send(b)
	}
}

// appendQuoted writes a as Redis's sdscatrepr does: in double quotes,
// with \n, \r, \t, \a, \b, \\ and \" escaped and other bytes outside
// printable ASCII as \xhh.
func appendQuoted(b, a []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, ch := range a {
		switch ch {
		case '\\', '"':
			b = append(b, '\\', ch)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\a':
			b = append(b, '\\', 'a')
		case '\b':
			b = append(b, '\\', 'b')
		default:
			if ch < ' ' || ch > '~' {
				b = append(b, '\\', 'x', hex[ch>>4], hex[ch&15])
			} else {
				b = append(b, ch)
			}
		}
	}
	return append(b, '"')
}

// cmdMonitor makes the connection a monitor: after +OK it receives every
// command this node runs (not the cluster's: run it on each node).
func cmdMonitor(s *Server, c *client, args [][]byte, r *reply) {
	if c.push == nil {
		c.push = newPusher(c.conn, s.opts.PubSubLimit)
		c.guard.idle = 0
	}
	// It joins once its +OK is queued (Server.queue): nothing precedes it.
	c.monitoring = true
	r.ok()
}

// pause is CLIENT PAUSE's state: until when, and whether only writes wait.
type pause struct {
	on        atomic.Bool // a pause was set: the hot path reads only this
	mu        sync.Mutex
	until     time.Time
	writeOnly bool
	changed   chan struct{} // closed when the pause is lifted or changed
}

// wait holds a command while clients are paused: every command in ALL
// mode, writes (and scripts, which may write) in WRITE mode, until the
// pause ends or the server stops.
func (p *pause) wait(ctx context.Context, spec *command) {
	if !p.on.Load() || spec.fullName() == "client|unpause" || spec.fullName() == "client|pause" {
		return
	}
	for {
		p.mu.Lock()
		until, writeOnly, changed := p.until, p.writeOnly, p.changed
		p.mu.Unlock()
		left := time.Until(until)
		if left <= 0 || (writeOnly && spec.flags&flagWrite == 0 && spec.group != groupScripting) {
			return
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
		case <-changed:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

func (p *pause) set(until time.Time, writeOnly bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed != nil {
		close(p.changed)
	}
	p.until, p.writeOnly, p.changed = until, writeOnly, make(chan struct{})
	p.on.Store(!until.IsZero())
}

// cmdClientPause serves CLIENT PAUSE ms [WRITE|ALL]: this node holds its
// clients' commands (or writes only) for ms.
func cmdClientPause(s *Server, c *client, args [][]byte, r *reply) {
	ms, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil || ms < 0 {
		r.err("ERR timeout is not an integer or out of range")
		return
	}
	writeOnly := false
	if len(args) == 4 {
		switch strings.ToLower(string(args[3])) {
		case "write":
			writeOnly = true
		case "all":
		default:
			r.err("ERR CLIENT PAUSE mode must be WRITE or ALL")
			return
		}
	} else if len(args) > 4 {
		r.err(errSyntax)
		return
	}
	s.paused.set(time.Now().Add(time.Duration(ms)*time.Millisecond), writeOnly)
	r.ok()
}

func cmdClientUnpause(s *Server, c *client, args [][]byte, r *reply) {
	s.paused.set(time.Time{}, false)
	r.ok()
}

// cmdClientReply serves CLIENT REPLY ON|OFF|SKIP: OFF answers nothing
// from then on, SKIP nothing for the next command; ON answers +OK.
func cmdClientReply(s *Server, c *client, args [][]byte, r *reply) {
	switch strings.ToLower(string(args[2])) {
	case "on":
		c.replyOff, c.skipNext = false, false
		r.silent = false
		r.ok()
	case "off":
		c.replyOff = true
		r.silent = true
	case "skip":
		if !c.replyOff {
			c.skipNext = true
		}
		r.silent = true
	default:
		r.err(errSyntax)
	}
}

package resp

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// client is one connection's state. The fields above mu belong to the
// connection's goroutine; those in mu are also read by CLIENT LIST.
type client struct {
	id      int64
	conn    net.Conn // the guard over the socket
	addr    string   // the client's address
	guard   *guard
	laddr   string
	created time.Time
	seq     uint64 // commands received, to match the guard's refusals
	authed  bool
	quit    bool
	replies []reply // reused by each pipeline of the connection
	one     reply   // reused by each lone command
	out     []byte  // a pipeline's replies, reused
	// pending holds the pipeline's in-line writes until they are durable;
	// deferCtx is the context they run under.
	pending  replica.Pending
	deferCtx context.Context
	// quorums holds the pipeline's in-line writes that other replicas have
	// still to acknowledge, quorumOf the reply each one answers, and
	// quorumCtx is the context they run under (their syncs deferred too).
	quorums   coord.Quorums
	quorumOf  []int
	quorumCtx context.Context
	later     []lateCmd // a pipeline's reading commands, reused

	mu struct {
		sync.Mutex
		name, libName, libVer, lastCmd string
		lastActive                     time.Time
	}
}

func newClient(id int64, conn net.Conn) *client {
	c := &client{id: id, conn: conn, addr: conn.RemoteAddr().String(), created: time.Now()}
	c.guard, _ = conn.(*guard)
	if c.guard == nil {
		c.guard = &guard{}
	}
	c.laddr = conn.LocalAddr().String()
	c.mu.lastActive = c.created
	return c
}

func (c *client) touch(cmd string) {
	now := time.Now()
	c.mu.Lock()
	c.mu.lastCmd, c.mu.lastActive = cmd, now
	c.mu.Unlock()
}

func (c *client) setName(n string) {
	c.mu.Lock()
	c.mu.name = n
	c.mu.Unlock()
}

func (c *client) name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.name
}

// info is the client's line in CLIENT LIST and CLIENT INFO, in Redis's
// format (the fields that mean something here).
func (c *client) info(now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=%s user=default resp=2 lib-name=%s lib-ver=%s\n",
		c.id, c.addr, c.laddr, c.mu.name,
		int(now.Sub(c.created).Seconds()), int(now.Sub(c.mu.lastActive).Seconds()),
		c.mu.lastCmd, c.mu.libName, c.mu.libVer)
}

// validName reports whether s may be a client name or library attribute:
// Redis refuses spaces, newlines and anything outside printable ASCII.
func validName(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < '!' || r > '~' })
}

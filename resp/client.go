package resp

import (
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
	// quorums those that other replicas have still to acknowledge, and
	// quorumOf the reply each one answers.
	pending  replica.Pending
	quorums  coord.Quorums
	quorumOf []int
	// syncOnly and deferAll are what the pipeline lends its in-line
	// commands: on a key only this node holds, the wait for durability;
	// on other keys, the quorum wait too.
	syncOnly, deferAll coord.Pipelined
	later              []lateCmd // a pipeline's reading commands, reused

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
	c.syncOnly = coord.Pipelined{Pending: &c.pending}
	c.deferAll = coord.Pipelined{Pending: &c.pending, Quorums: &c.quorums}
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

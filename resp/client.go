package resp

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
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
	// subs are the connection's pub/sub subscriptions, and push, once it
	// has subscribed, the writer of everything it is sent.
	subs subscriptions
	push *pusher
	// resp3 is set by HELLO 3 and cleared by HELLO 2 and RESET; it is
	// read by publishers too. subCounts mirror len(subs.names) for
	// CLIENT LIST on other connections.
	resp3     atomic.Bool
	subCounts [kinds]atomic.Int32
	// tx is the transaction MULTI opened, and watches the keys WATCH
	// watches; both belong to the connection's goroutine.
	tx      *transaction
	watches []watch
	// inExec is set while EXEC runs the queued commands, the slot's lock
	// held.
	inExec bool
	// monitoring is set by MONITOR, monitorJoined once the connection is
	// among the monitors; replyOff and skipNext are CLIENT REPLY's.
	monitoring, monitorJoined bool
	replyOff, skipNext        bool

	mu struct {
		sync.Mutex
		name, libName, libVer, lastCmd string
		lastActive                     time.Time
		lastKey                        []byte
		lastDot                        replica.Dot
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
// subscribed reports whether the client is in the subscribed state; any
// goroutine may ask.
func (c *client) subscribed() bool {
	return c.subCounts[kindChannel].Load()+c.subCounts[kindPattern].Load()+c.subCounts[kindShard].Load() > 0
}

// noteWrite remembers the connection's last write, for WAIT; commands of
// a pipeline may note theirs from several goroutines.
func (c *client) noteWrite(key []byte, dot replica.Dot) {
	c.mu.Lock()
	c.mu.lastKey = append(c.mu.lastKey[:0], key...)
	c.mu.lastDot = dot
	c.mu.Unlock()
}

// lastWrite returns the connection's last write: its key (a copy) and
// dot; a zero dot when it made none.
func (c *client) lastWrite() ([]byte, replica.Dot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.mu.lastKey...), c.mu.lastDot
}

func (c *client) info(now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub, psub, ssub := c.subCounts[kindChannel].Load(), c.subCounts[kindPattern].Load(), c.subCounts[kindShard].Load()
	flags, proto := "N", 2
	if c.subscribed() {
		flags = "P"
	}
	if c.resp3.Load() {
		proto = 3
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=%s db=0 sub=%d psub=%d ssub=%d multi=-1 cmd=%s user=default resp=%d lib-name=%s lib-ver=%s\n",
		c.id, c.addr, c.laddr, c.mu.name,
		int(now.Sub(c.created).Seconds()), int(now.Sub(c.mu.lastActive).Seconds()), flags, sub, psub, ssub,
		c.mu.lastCmd, proto, c.mu.libName, c.mu.libVer)
}

// validName reports whether s may be a client name or library attribute:
// Redis refuses spaces, newlines and anything outside printable ASCII.
func validName(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < '!' || r > '~' })
}

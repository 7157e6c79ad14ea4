package resp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
	"github.com/dynakv/dynakv/wire"
)

// Coordinator is what the front end needs of the coordinator.
type Coordinator interface {
	// GetIn and WriteIn run a read and a write; pl is nil but for a
	// command a pipeline runs in line (coord.Pipelined).
	GetIn(ctx context.Context, pl *coord.Pipelined, key []byte, r int) (replica.Object, error)
	// Observe reads key at R and returns once W replicas hold what it
	// read, so that later reads see at least that (WATCH).
	Observe(ctx context.Context, key []byte) (replica.Object, error)
	WriteIn(ctx context.Context, pl *coord.Pipelined, key []byte, op coord.Op) (coord.Result, error)
	// DBSize counts the live keys, and those of them with an expiry.
	DBSize(ctx context.Context) (keys, expiring int64, err error)
	// Scan returns about count live keys that match, from cursor, and the
	// cursor to resume from (0: done).
	Scan(ctx context.Context, cursor uint64, count int, match func(key []byte, kind replica.Kind) bool) ([][]byte, uint64, error)
	// Flush deletes every key (FLUSHALL).
	Flush(ctx context.Context) error
	// CountKeysInSlot and KeysInSlot serve CLUSTER COUNTKEYSINSLOT and
	// GETKEYSINSLOT.
	CountKeysInSlot(ctx context.Context, slot int) (int64, error)
	KeysInSlot(ctx context.Context, slot, count int) ([][]byte, error)
	Now() int64
	// Leader returns the node that decides key's writes, its first
	// healthy primary, where transactions on its slot run; "" when that
	// is this node.
	Leader(key []byte) (string, error)
	// Unresponsive notes that a leader did not answer a forwarded
	// transaction, so that the next go to the next primary.
	Unresponsive(node string)
	// Holders counts the key's primaries that hold the write dot (WAIT).
	Holders(ctx context.Context, key []byte, dot replica.Dot) (int, error)
	// Local reports whether a request for key stays on this node: such
	// commands of a pipeline run in line, one after another.
	Local(key []byte) bool
	// Prefetch starts reading key at the configured R; a GetIn of it with
	// the read in its Pipelined takes the answer. A pipeline starts its
	// reads so and runs the commands that read afterwards.
	Prefetch(ctx context.Context, key []byte) *coord.Read
	// Seal renders a key's clock as the context a client gets, and Open
	// takes one back, refusing a context not sealed for that key.
	Seal(key []byte, clock replica.Clock) (string, error)
	Open(key []byte, ctx string) (replica.Clock, error)
	// Container makes key a hash or set unless it is one (-WRONGTYPE for
	// another type), and Elements reads a chunk of a container's elements
	// at R, merged (coord/container.go).
	Container(ctx context.Context, pl *coord.Pipelined, key []byte, typ replica.Kind) error
	Elements(ctx context.Context, key []byte, typ byte, after []byte, want int) ([]replica.KeyObject, bool, error)
	// Count answers a container's element count from R replicas' tallies
	// when they agree (agreed false: read the elements).
	Count(ctx context.Context, key []byte, typ byte) (t replica.Tally, agreed bool, err error)
	// NewGroup starts collecting the writes to key's slot that requests
	// lent its Pipelined make, and Commit sends them to the other
	// replicas as one write (coord.Group); nil when this node is not to
	// coordinate them, and the writes then go one by one.
	NewGroup(key []byte) (*coord.Group, error)
	Commit(ctx context.Context, g *coord.Group) error
	// HasContainer reports whether this node is a replica of key holding
	// it as a container of typ: adding to it then writes elements only.
	HasContainer(key []byte, typ replica.Kind) bool
}

// Field is one "name:value" line of INFO.
type Field struct{ Name, Value string }

// Section is one "# Name" block of INFO.
type Section struct {
	Name   string
	Fields []Field
}

// Param is one parameter CONFIG GET can answer.
type Param struct{ Name, Value string }

// Options configure a Server.
type Options struct {
	// RequirePass, when set, makes clients AUTH before anything else.
	RequirePass string
	// MaxBulk is the largest bulk string a client may send.
	MaxBulk int64
	// MaxClients bounds the connected clients; 0 means 10000.
	MaxClients int
	// QueryBufferLimit bounds the bytes of one command as it arrives; a
	// client past it is disconnected (Redis's client-query-buffer-limit).
	// 0 means 1 GB.
	QueryBufferLimit int64
	// IdleTimeout disconnects a client that sends nothing for this long
	// (Redis's timeout); 0 never does.
	IdleTimeout time.Duration
	// Version is dynakv's version, shown by INFO.
	Version string
	// ConfigFile is shown by INFO.
	ConfigFile string
	// Params are what CONFIG GET answers.
	Params []Param
	// Info returns the sections INFO shows besides the front end's own
	// (Cluster, Replication).
	Info func() []Section
	// Cluster answers the DYN.* commands.
	Cluster Cluster
	// Repair starts an anti-entropy round (DYN.REPAIR).
	Repair func()
	// Checkpoint writes a backup of this node's store while it serves and
	// returns where (DYN.CHECKPOINT).
	Checkpoint func(ctx context.Context) (string, error)
	// Broadcast, when set, hands a published message to every other live
	// node, which delivers it to its subscribers (Server.Deliver), and
	// returns how many deliveries they made. It bounds its own wait.
	Broadcast func(ctx context.Context, channel, message []byte, sharded bool) int64
	// PubSubLimit bounds the bytes queued for one subscriber; a slower
	// one is disconnected. 0 means 32 MB, Redis's hard limit for pubsub
	// clients.
	PubSubLimit int
	// ForwardExec hands a transaction (encodeExec) to node, its slot's
	// leader, and returns the RESP reply of its EXEC (Server.ServeExec
	// there). Its failures are coord's: ErrNotSent when it provably did
	// not leave. Nil runs transactions where they arrive.
	ForwardExec func(ctx context.Context, node string, tx []byte) ([]byte, error)
	// ForwardTimeout is how long a forwarded transaction may take to
	// reach its leader and start; 0 means 1 s.
	ForwardTimeout time.Duration
	// ScriptTimeout stops a Lua script that runs longer; 0 means 5 s
	// (Redis's busy-reply threshold).
	ScriptTimeout time.Duration
	// Copies is N, the replicas of every key: what WAIT answers at most,
	// plus one.
	Copies int
	// Observe, when set, is called once per command name ("client|list"
	// for a subcommand) as the server is built; the function it returns
	// is called after every run of that command with how long it took and
	// its error reply's prefix ("ERR", "UNAVAILABLE"; "" on success). It
	// feeds metrics without a lookup per command.
	Observe func(command string) func(took time.Duration, errPrefix string)
	Logger  *slog.Logger
}

// Server is the RESP front end: it accepts client connections, parses
// commands, runs them against the coordinator and writes Redis replies.
type Server struct {
	opts     Options
	coord    Coordinator
	log      *slog.Logger
	commands map[string]*command
	started  time.Time
	runID    string
	hub      *hub // this node's pub/sub subscriptions
	// slotLocks make the transactions of one slot take turns.
	slotLocks slotLocks
	scripts   scriptCache
	luaVMs    sync.Pool // *luaVM, kept between scripts
	monitors  monitors
	paused    pause

	mu struct {
		sync.Mutex
		clients  map[int64]*client
		ln       *drainListener // set by Serve
		shutdown bool
	}
	nextID atomic.Int64
	stats  struct {
		conns, commands, rejected, hits, misses, bytesIn, bytesOut atomic.Int64
		// unknown counts unknown commands and subcommands; protocol the
		// protocol errors (malformed RESP, oversized arguments).
		unknown, protocol atomic.Int64
	}

	base     context.Context
	cancel   context.CancelFunc
	inflight atomic.Int64 // command batches being run
	workers  *pool
	errs     errorStats
	ops      opsRate
	slow     slowlog
	// lastCheckpoint is when DYN.CHECKPOINT last succeeded (Unix s).
	lastCheckpoint atomic.Int64
}

// NewServer returns a server over the coordinator c.
func NewServer(c Coordinator, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBulk <= 0 {
		opts.MaxBulk = 512 << 20
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = 10000
	}
	if opts.QueryBufferLimit <= 0 {
		opts.QueryBufferLimit = 1 << 30
	}
	if opts.PubSubLimit <= 0 {
		opts.PubSubLimit = 32 << 20
	}
	if opts.ForwardTimeout <= 0 {
		opts.ForwardTimeout = time.Second
	}
	if opts.ScriptTimeout <= 0 {
		opts.ScriptTimeout = scriptTimeout
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	s := &Server{opts: opts, coord: c, log: opts.Logger, started: time.Now(), runID: hex.EncodeToString(id[:])}
	s.mu.clients = make(map[int64]*client)
	s.hub = newHub()
	s.base, s.cancel = context.WithCancel(context.Background())
	s.commands = commandTable()
	s.eachCommand(func(c *command) {
		var metric func(time.Duration, string)
		if opts.Observe != nil {
			metric = opts.Observe(c.fullName())
		}
		c.observe = s.observer(c, metric)
	})
	s.workers = newPool()
	s.slow.slowerThan.Store(slowlogSlowerThan)
	s.slow.maxLen.Store(slowlogMaxLen)
	go s.sampleOps(s.base)
	return s
}

// ConnectedClients is how many clients are connected now.
func (s *Server) ConnectedClients() int { return s.clientCount() }

// Stats are the front end's counters of refused requests, for metrics.
type Stats struct {
	// Unknown counts commands and subcommands the server does not have:
	// an application that fails on one shows here.
	Unknown int64
	// Protocol counts protocol errors: malformed RESP, oversized
	// arguments or commands.
	Protocol int64
	// Rejected counts connections refused past maxclients.
	Rejected int64
}

// Stats returns the counters since the server started.
func (s *Server) Stats() Stats {
	return Stats{Unknown: s.stats.unknown.Load(), Protocol: s.stats.protocol.Load(), Rejected: s.stats.rejected.Load()}
}

// Serve accepts connections on ln until Shutdown, and serves each on a
// goroutine of its own. It returns nil after a shutdown or once ln is
// closed; the connections still open are closed then.
func (s *Server) Serve(ln net.Listener) error {
	dl := &drainListener{Listener: guardListener{ln, limits{s.opts.MaxBulk, s.opts.QueryBufferLimit, s.opts.IdleTimeout}, &s.stats.bytesIn, &s.stats.bytesOut, &s.stats.protocol}, released: make(chan struct{})}
	s.mu.Lock()
	if s.mu.shutdown {
		s.mu.Unlock()
		return ln.Close()
	}
	s.mu.ln = dl
	s.mu.Unlock()
	defer func() {
		for _, c := range s.clientList() {
			_ = c.conn.Close()
		}
	}()
	return wire.Accept(dl, s.log, func(nc net.Conn) {
		if c := s.accept(nc); c != nil {
			go s.serve(c)
		}
	})
}

// listener returns the listener Serve runs on, or nil before Serve.
func (s *Server) listener() *drainListener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.ln
}

// Shutdown stops accepting, lets every connection finish the commands it
// has started and answer them, then closes the connections. It returns
// when no command is running, or with ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.mu.shutdown = true
	ln := s.mu.ln
	s.mu.Unlock()
	if ln == nil {
		return nil
	}
	ln.drain()
	// Connections stop reading: each finishes the batch it is running,
	// flushes the replies, fails its next read and is closed.
	for _, c := range s.clientList() {
		_ = c.conn.SetReadDeadline(time.Now())
	}
	err := s.waitFor(ctx, func() bool { return s.clientCount() == 0 && s.inflight.Load() == 0 })
	ln.release()
	s.cancel()
	if err2 := s.waitFor(ctx, func() bool { return s.inflight.Load() == 0 }); err == nil {
		err = err2
	}
	return err
}

func (s *Server) waitFor(ctx context.Context, done func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// drainListener hides the listener's closing from Serve during a drain:
// Serve closes every connection once Accept fails, which would cut off
// commands still running.
type drainListener struct {
	net.Listener
	draining atomic.Bool
	released chan struct{}
	once     sync.Once
}

func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && l.draining.Load() {
		<-l.released
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *drainListener) drain() {
	l.draining.Store(true)
	_ = l.Listener.Close()
}

func (l *drainListener) release() { l.once.Do(func() { close(l.released) }) }

// accept admits a new connection as a client, or refuses and closes it.
func (s *Server) accept(nc net.Conn) *client {
	if s.listener().draining.Load() {
		_ = nc.Close()
		return nil
	}
	if s.clientCount() >= s.opts.MaxClients {
		s.stats.rejected.Add(1)
		_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
		_ = nc.Close()
		return nil
	}
	c := newClient(s.nextID.Add(1), nc)
	c.authed = s.opts.RequirePass == ""
	s.mu.Lock()
	s.mu.clients[c.id] = c
	s.mu.Unlock()
	s.stats.conns.Add(1)
	return c
}

// serve runs one connection: it reads the commands that have arrived, runs
// them, writes their replies in one write, and reads again, until the
// client leaves or is told to, the guard ends it, or the server stops.
func (s *Server) serve(c *client) {
	defer func() {
		_ = c.conn.Close()
		s.mu.Lock()
		delete(s.mu.clients, c.id)
		s.mu.Unlock()
	}()
	defer func() {
		if c.push != nil {
			s.unsubscribeAll(c)
			c.push.stop()
		}
	}()
	err := wire.Serve(c.conn, func(cmds [][][]byte) ([]byte, bool) {
		out := s.handle(c, cmds)
		if s.queue(c, out) {
			return nil, c.quit
		}
		return out, c.quit
	})
	if err != nil {
		s.stats.protocol.Add(1)
	}
}

func (s *Server) clientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.clients)
}

func (s *Server) clientList() []*client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*client, 0, len(s.mu.clients))
	for _, c := range s.mu.clients {
		out = append(out, c)
	}
	return out
}

// handle runs the commands that arrived together and returns their
// replies, which stay valid until the connection's next batch. A batch of
// more than one is a pipeline: its commands waiting on replicas run side
// by side instead of one after another.
func (s *Server) handle(c *client, cmds [][][]byte) []byte {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if cap(c.out) > 64<<10 {
		c.out = nil // do not keep a large reply's buffer
	}
	if len(cmds) > 1 {
		c.out = s.runPipeline(c, cmds, c.out[:0])
		return c.out
	}
	r := &c.one
	if cap(r.b) > 64<<10 {
		r.b = nil
	}
	r.b, r.ctx, r.pl = r.b[:0], s.base, nil
	if spec := s.prepare(c, cmds[0], r); spec != nil {
		s.run(spec, c, cmds[0], r)
	}
	if r.silent {
		return nil
	}
	return r.b
}

// prepare checks a command before it runs: that the guard let it through,
// that it exists, its argument count and authentication. It returns the
// command, or nil after writing the error to r.
func (s *Server) prepare(c *client, args [][]byte, r *reply) *command {
	c.seq++
	r.resp3 = c.resp3.Load()
	r.silent, c.skipNext = c.replyOff || c.skipNext, false
	if msg, ok := c.guard.takePoison(c.seq); ok {
		s.stats.protocol.Add(1)
		r.err("ERR " + msg)
		return nil
	}
	spec := s.lookup(args[0])
	if spec == nil {
		c.refuseInTx()
		s.stats.unknown.Add(1)
		s.refused(nil, "ERR")
		r.err(unknownCommand(args))
		return nil
	}
	if spec.sub != nil && len(args) > 1 {
		sub := lookupIn(spec.sub, args[1])
		if sub == nil {
			c.refuseInTx()
			s.stats.unknown.Add(1)
			s.refused(spec, "ERR")
			r.err(unknownSubcommand(spec.name, args[1]))
			return nil
		}
		spec = sub
	}
	if !spec.arityOK(len(args)) {
		c.refuseInTx()
		s.refused(spec, wrongArity(spec.fullName()))
		r.err(wrongArity(spec.fullName()))
		return nil
	}
	if spec.first > 0 && reservedKey(spec.keys(args)) {
		c.refuseInTx()
		s.refused(spec, errReservedKey)
		r.err(errReservedKey)
		return nil
	}
	if !c.authed && spec.flags&flagNoAuth == 0 {
		c.refuseInTx()
		s.refused(spec, errNoAuth)
		r.err(errNoAuth)
		return nil
	}
	if !r.resp3 && c.subscribed() && !allowedSubscribed[spec.name] && !allowedSubscribed[spec.parent] {
		msg := "ERR Can't execute '" + spec.fullName() + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
		s.refused(spec, msg)
		r.err(msg)
		return nil
	}
	c.touch(spec.fullName())
	s.stats.commands.Add(1)
	s.monitors.feed(c, spec, args)
	if s.queueing(c, spec, args, r) {
		return nil
	}
	s.paused.wait(s.base, spec)
	return spec
}

func (s *Server) lookup(name []byte) *command {
	return lookupIn(s.commands, name)
}

// lookupIn finds a command by case-insensitive name without allocating.
func lookupIn(table map[string]*command, name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return table[string(buf[:len(name)])]
}

// run calls a command's handler, and tells its observer how it went.
func (s *Server) run(spec *command, c *client, args [][]byte, r *reply) {
	if r.ctx == nil {
		r.ctx = s.base
	}
	start := time.Now()
	s.runSafe(spec, c, args, r)
	s.finished(spec, c, args, r, time.Since(start))
}

// errorPrefix is the first word of an error reply, "" for any other reply.
func errorPrefix(b []byte) string {
	if len(b) == 0 || b[0] != '-' {
		return ""
	}
	b = b[1:]
	if i := bytes.IndexAny(b, " \r"); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// runSafe calls a command's handler, turning a panic into an error reply
// so that one bad request cannot take the node down.
func (s *Server) runSafe(spec *command, c *client, args [][]byte, r *reply) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("command panicked", "cmd", spec.fullName(), "panic", p)
			r.b = r.b[:0]
			r.err("ERR internal error")
		}
	}()
	spec.run(s, c, args, r)
}

// ctx is the context commands run under: cancelled when the server stops
// for good.
func (s *Server) ctx() context.Context { return s.base }

// fail writes err as the reply.
func fail(r *reply, err error) {
	r.err(errorReply(err))
}

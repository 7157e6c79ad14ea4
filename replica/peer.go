package replica

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/wire"
	"github.com/tidwall/redcon"
)

// The peer protocol's replica commands. They are served only on the peer
// port, never to clients.
const (
	CmdGet   = "R.GET"   // R.GET key -> encoded object ("" if never written)
	CmdMerge = "R.MERGE" // R.MERGE key object -> OK once stored durably
	CmdRange = "R.RANGE" // R.RANGE from to after limit -> [key, object, ...]
	CmdHint  = "R.HINT"  // R.HINT target key object -> OK once stored durably
	CmdCount = "R.COUNT" // R.COUNT q partition... -> live and expiring keys of each
	CmdFlush = "R.FLUSH" // R.FLUSH ms -> OK once every key written before ms is gone
)

// PeerHandler serves an extra peer command registered by another package
// (the coordinator's forwarded writes, the ring). Its reply is sent as a
// bulk string.
type PeerHandler func(ctx context.Context, args [][]byte) ([]byte, error)

// PeerServer serves the peer protocol: RESP on the peer port. With a
// secret, a connection must AUTH with it before any other command.
//
// A connection's pipeline is run concurrently, command by command, and
// answered in order: a peer's batcher sends many independent requests in
// one pipeline, and durable merges then share one fsync.
type PeerServer struct {
	store    *Store
	secret   string
	log      *slog.Logger
	handlers map[string]PeerHandler

	mu struct {
		sync.Mutex
		ln    net.Listener
		conns map[net.Conn]bool
		done  bool
	}
	inflight atomic.Int64
	base     context.Context
	cancel   context.CancelFunc
}

// NewPeerServer returns a peer server over store.
func NewPeerServer(store *Store, secret string, log *slog.Logger) *PeerServer {
	if log == nil {
		log = slog.Default()
	}
	s := &PeerServer{store: store, secret: secret, log: log, handlers: map[string]PeerHandler{}}
	s.mu.conns = map[net.Conn]bool{}
	s.base, s.cancel = context.WithCancel(context.Background())
	return s
}

// Handle registers an extra command; name is upper case. It must be called
// before Serve.
func (s *PeerServer) Handle(name string, h PeerHandler) { s.handlers[name] = h }

// peerConn is one peer connection's state, used by its goroutine only.
type peerConn struct {
	authed bool
	// pending holds the pipeline's in-line merges until they are durable.
	pending Pending
	ctx     context.Context
	// The pipeline's replies, and all of them as written, reused from one
	// pipeline to the next.
	replies  [][]byte
	deferred []bool
	out      []byte
}

// deferCtx is the context the connection's in-line merges run under.
func (pc *peerConn) deferCtx(base context.Context) context.Context {
	if pc.ctx == nil {
		pc.ctx = DeferSync(base, &pc.pending)
	}
	return pc.ctx
}

// Serve accepts peer connections on ln until Close, and serves each on a
// goroutine of its own. It returns nil once Close has closed ln.
func (s *PeerServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.mu.done {
		s.mu.Unlock()
		return ln.Close()
	}
	s.mu.ln = ln
	s.mu.Unlock()
	return wire.Accept(ln, s.log, func(nc net.Conn) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.mu.done {
			_ = nc.Close()
			return
		}
		s.mu.conns[nc] = true
		go s.serve(nc)
	})
}

// serve runs one peer connection: it reads the commands that have arrived,
// runs them, writes their replies in one write, and reads again, until the
// peer leaves or the server closes.
func (s *PeerServer) serve(nc net.Conn) {
	defer func() {
		_ = nc.Close()
		s.mu.Lock()
		delete(s.mu.conns, nc)
		s.mu.Unlock()
	}()
	pc := &peerConn{authed: s.secret == ""}
	wire.Serve(nc, func(cmds [][][]byte) ([]byte, bool) {
		if cap(pc.out) > 64<<10 {
			pc.out = nil // do not keep a large reply's buffer
		}
		pc.out = s.handle(pc, cmds, pc.out[:0])
		return pc.out, false
	})
}

// Close stops serving: it closes the listener and the connections, then
// waits (until ctx ends) for commands already running.
func (s *PeerServer) Close(ctx context.Context) error {
	s.mu.Lock()
	s.mu.done = true
	ln := s.mu.ln
	for nc := range s.mu.conns {
		_ = nc.Close()
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			s.cancel()
			return ctx.Err()
		case <-t.C:
		}
	}
	s.cancel()
	return nil
}

// handle runs a connection's pipeline and appends the replies, in order,
// to out.
func (s *PeerServer) handle(pc *peerConn, cmds [][][]byte, out []byte) []byte {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	replies := slices.Grow(pc.replies[:0], len(cmds))[:len(cmds)]
	deferred := slices.Grow(pc.deferred[:0], len(cmds))[:len(cmds)]
	clear(deferred)
	pc.replies, pc.deferred = replies, deferred
	defer clear(replies)
	var wg sync.WaitGroup
	for i, args := range cmds {
		name := commandName(args[0])
		switch {
		case name == "AUTH":
			replies[i] = s.auth(pc, args)
		case !pc.authed && name != "PING":
			replies[i] = redcon.AppendError(nil, "NOAUTH Authentication required.")
		case len(cmds) == 1:
			replies[i] = s.run(s.base, name, args)
		case name == CmdMerge || name == CmdGet:
			// Local and quick: run in line, the merges' syncs deferred
			// to one wait for the whole pipeline.
			before := pc.pending.Len()
			replies[i] = s.run(pc.deferCtx(s.base), name, args)
			deferred[i] = pc.pending.Len() > before
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i] = s.run(s.base, name, args)
			}()
		}
	}
	wg.Wait()
	if err := pc.pending.Wait(); err != nil {
		s.log.Error("pipelined merges failed to sync", "err", err)
		for i := range replies {
			if deferred[i] {
				replies[i] = peerError(err)
			}
		}
	}
	for _, r := range replies {
		out = append(out, r...)
	}
	return out
}

// peerCommands are the names commandName returns without allocating.
var peerCommands = []string{CmdGet, CmdMerge, CmdRange, CmdHint, CmdCount, CmdFlush, "AUTH", "PING"}

// commandName is a command's name in upper case: one of peerCommands, the
// hot ones, without an allocation, else a new string.
func commandName(arg []byte) string {
	for _, name := range peerCommands {
		if len(arg) == len(name) && strings.EqualFold(string(arg), name) {
			return name
		}
	}
	return strings.ToUpper(string(arg))
}

// okReply is the reply of a command that succeeded; handle copies it out.
var okReply = redcon.AppendString(nil, "OK")

func (s *PeerServer) auth(pc *peerConn, args [][]byte) []byte {
	if len(args) != 2 {
		return redcon.AppendError(nil, "ERR wrong number of arguments for 'auth' command")
	}
	if s.secret == "" || subtle.ConstantTimeCompare(args[1], []byte(s.secret)) != 1 {
		return redcon.AppendError(nil, "WRONGPASS invalid cluster secret")
	}
	pc.authed = true
	return redcon.AppendString(nil, "OK")
}

// run executes one authenticated command and returns its encoded reply.
func (s *PeerServer) run(ctx context.Context, name string, args [][]byte) (reply []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("peer command panicked", "cmd", name, "panic", p)
			reply = redcon.AppendError(nil, "ERR internal error")
		}
	}()
	bad := func() []byte {
		return redcon.AppendError(nil, fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(name)))
	}
	switch name {
	case "PING":
		return redcon.AppendString(nil, "PONG")
	case CmdGet:
		if len(args) != 2 {
			return bad()
		}
		o, err := s.store.Read(args[1])
		if err != nil {
			return peerError(err)
		}
		return redcon.AppendBulk(nil, AppendObject(nil, o))
	case CmdHint:
		if len(args) != 4 {
			return bad()
		}
		o, err := DecodeObject(args[3])
		if err != nil {
			return peerError(err)
		}
		if err := s.store.Hint(string(args[1]), args[2], o); err != nil {
			return peerError(err)
		}
		return okReply
	case CmdMerge:
		if len(args) != 3 {
			return bad()
		}
		o, err := DecodeObject(args[2])
		if err != nil {
			return peerError(err)
		}
		if _, err := s.store.merge(ctx, args[1], o); err != nil {
			return peerError(err)
		}
		return okReply
	case CmdRange:
		return s.rangeReply(args)
	case CmdCount:
		nums := make([]int, 0, len(args)-1)
		for _, a := range args[1:] {
			n, err := strconv.Atoi(string(a))
			if err != nil {
				return redcon.AppendError(nil, "ERR bad partition")
			}
			nums = append(nums, n)
		}
		if len(nums) < 1 {
			return bad()
		}
		keys, exp := s.store.PartitionCounts(nums[0], nums[1:])
		var b []byte
		for i := range keys {
			b = binary.AppendVarint(b, keys[i])
			b = binary.AppendVarint(b, exp[i])
		}
		return redcon.AppendBulk(nil, b)
	case CmdFlush:
		if len(args) != 2 {
			return bad()
		}
		t, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return redcon.AppendError(nil, "ERR bad time")
		}
		if err := s.store.Flush(t); err != nil {
			return peerError(err)
		}
		return redcon.AppendString(nil, "OK")
	}
	if h := s.handlers[name]; h != nil {
		out, err := h(ctx, args)
		if err != nil {
			return peerError(err)
		}
		return redcon.AppendBulk(nil, out)
	}
	return redcon.AppendError(nil, fmt.Sprintf("ERR unknown peer command '%.64s'", args[0]))
}

func (s *PeerServer) rangeReply(args [][]byte) []byte {
	if len(args) != 5 || len(args[1]) != 8 || len(args[2]) != 8 {
		return redcon.AppendError(nil, "ERR syntax: R.RANGE from(8) to(8) after limit")
	}
	limit, err := strconv.Atoi(string(args[4]))
	if err != nil || limit < 1 {
		return redcon.AppendError(nil, "ERR bad limit")
	}
	var after []byte
	if len(args[3]) > 0 {
		after = args[3]
	}
	kos, err := s.store.Range(binary.BigEndian.Uint64(args[1]), binary.BigEndian.Uint64(args[2]), after, limit)
	if err != nil {
		return peerError(err)
	}
	b := redcon.AppendArray(nil, 2*len(kos))
	for _, ko := range kos {
		b = redcon.AppendBulk(b, ko.Key)
		b = redcon.AppendBulk(b, AppendObject(nil, ko.Object))
	}
	return b
}

// peerError renders err as a peer reply. A closed store answers
// UNAVAILABLE so that the caller treats the node as down.
func peerError(err error) []byte {
	if errors.Is(err, ErrClosed) {
		return redcon.AppendError(nil, "UNAVAILABLE "+err.Error())
	}
	return redcon.AppendError(nil, "ERR "+strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error()))
}

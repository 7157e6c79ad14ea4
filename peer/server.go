package peer

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

	"github.com/dynakv/dynakv/replica"
	"github.com/dynakv/dynakv/wire"
	"github.com/tidwall/redcon"
)

// Replica is this node's replica, as the peer server applies the replica
// commands to it (replica.Store).
type Replica interface {
	Read(key []byte) (replica.Object, error)
	MergeDeferred(p *replica.Pending, key []byte, o replica.Object) (bool, error)
	MergeAll(p *replica.Pending, objs []replica.KeyObject) error
	Hint(target string, key []byte, o replica.Object) error
	HintAll(target string, objs []replica.KeyObject) error
	Range(from, to uint64, after []byte, limit int) ([]replica.KeyObject, error)
	Elements(prefix, after []byte, limit int) ([]replica.KeyObject, error)
	ContainerClock(key []byte, before int64) (replica.Clock, error)
	ContainerTally(key []byte, typ byte) (replica.Tally, error)
	PartitionCounts(q int, parts []int) (keys, expiring []int64)
	Flush(t int64) error
}

var _ Replica = (*replica.Store)(nil)

// Handler serves a command another package registers (the coordinator's
// forwarded writes, the ring, anti-entropy). Its reply is sent as a bulk
// string; an error as an error reply.
type Handler func(ctx context.Context, args [][]byte) ([]byte, error)

// Server serves the peer protocol: RESP on the peer port. With a secret, a
// connection must AUTH with it before any other command but PING.
//
// A connection's pipeline is run concurrently, command by command, and
// answered in order: a peer's batcher sends many independent requests in
// one pipeline, and durable merges then share one fsync.
type Server struct {
	store    Replica
	secret   string
	log      *slog.Logger
	handlers map[string]Handler

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

// NewServer returns a peer server over store.
func NewServer(store Replica, secret string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{store: store, secret: secret, log: log, handlers: map[string]Handler{}}
	s.mu.conns = map[net.Conn]bool{}
	s.base, s.cancel = context.WithCancel(context.Background())
	return s
}

// Handle registers a command served by another package; name is one of
// the Cmd constants. It must be called before Serve.
func (s *Server) Handle(name string, h Handler) { s.handlers[name] = h }

// conn is one peer connection's state, used by its goroutine only.
type conn struct {
	authed bool
	// pending holds the pipeline's in-line merges until they are durable.
	pending replica.Pending
	// The pipeline's replies, and all of them as written, reused from one
	// pipeline to the next.
	replies  [][]byte
	deferred []bool
	out      []byte
}

// Serve accepts peer connections on ln until Close, and serves each on a
// goroutine of its own. It returns nil once Close has closed ln.
func (s *Server) Serve(ln net.Listener) error {
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

// serve runs one peer connection until the peer leaves or the server
// closes.
func (s *Server) serve(nc net.Conn) {
	defer func() {
		_ = nc.Close()
		s.mu.Lock()
		delete(s.mu.conns, nc)
		s.mu.Unlock()
	}()
	pc := &conn{authed: s.secret == ""}
	err := wire.Serve(nc, func(cmds [][][]byte) ([]byte, bool) {
		if cap(pc.out) > 64<<10 {
			pc.out = nil // do not keep a large reply's buffer
		}
		pc.out = s.handle(pc, cmds, pc.out[:0])
		return pc.out, false
	})
	if err != nil {
		s.log.Warn("closed a peer connection", "remote", nc.RemoteAddr().String(), "err", err)
	}
}

// Close stops serving: it closes the listener and the connections, then
// waits (until ctx ends) for commands already running.
func (s *Server) Close(ctx context.Context) error {
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
func (s *Server) handle(pc *conn, cmds [][][]byte, out []byte) []byte {
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
		case name == CmdAuth:
			replies[i] = s.auth(pc, args)
		case !pc.authed && name != CmdPing:
			replies[i] = redcon.AppendError(nil, "NOAUTH Authentication required.")
		case len(cmds) == 1:
			replies[i] = s.run(s.base, nil, name, args)
		case name == CmdMerge || name == CmdGet:
			// Local and quick: run in line, the merges' syncs deferred
			// to one wait for the whole pipeline.
			before := pc.pending.Len()
			replies[i] = s.run(s.base, &pc.pending, name, args)
			deferred[i] = pc.pending.Len() > before
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i] = s.run(s.base, nil, name, args)
			}()
		}
	}
	wg.Wait()
	if err := pc.pending.Wait(); err != nil {
		s.log.Error("pipelined merges failed to sync", "err", err)
		for i := range replies {
			if deferred[i] {
				replies[i] = errorReply(err)
			}
		}
	}
	for _, r := range replies {
		out = append(out, r...)
	}
	return out
}

// okReply is the reply of a command that succeeded; handle copies it out.
var okReply = redcon.AppendString(nil, "OK")

func (s *Server) auth(pc *conn, args [][]byte) []byte {
	if len(args) != 2 {
		return redcon.AppendError(nil, "ERR wrong number of arguments for 'auth' command")
	}
	if s.secret == "" || subtle.ConstantTimeCompare(args[1], []byte(s.secret)) != 1 {
		return redcon.AppendError(nil, "WRONGPASS invalid cluster secret")
	}
	pc.authed = true
	return redcon.AppendString(nil, "OK")
}

// run executes one authenticated command and returns its encoded reply. A
// merge's wait for durability goes to pending when it is set.
func (s *Server) run(ctx context.Context, pending *replica.Pending, name string, args [][]byte) (reply []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("peer command panicked", "cmd", name, "panic", p)
			reply = redcon.AppendError(nil, "ERR internal error")
		}
	}()
	reply, err := s.runCommand(ctx, pending, name, args)
	switch {
	case errors.Is(err, errArity):
		return redcon.AppendError(nil, fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(name)))
	case err != nil:
		return errorReply(err)
	}
	return reply
}

func (s *Server) runCommand(ctx context.Context, pending *replica.Pending, name string, args [][]byte) ([]byte, error) {
	switch name {
	case CmdPing:
		return redcon.AppendString(nil, "PONG"), nil
	case CmdGet:
		if len(args) != 2 {
			return nil, errArity
		}
		o, err := s.store.Read(args[1])
		if err != nil {
			return nil, err
		}
		return redcon.AppendBulk(nil, replica.AppendObject(nil, o)), nil
	case CmdHint:
		if len(args) < 4 || len(args)%2 != 0 {
			return nil, errArity
		}
		if len(args) > 4 {
			objs, err := decodePairs(args[2:])
			if err != nil {
				return nil, err
			}
			if err := s.store.HintAll(string(args[1]), objs); err != nil {
				return nil, err
			}
			return okReply, nil
		}
		o, err := replica.DecodeObject(args[3])
		if err != nil {
			return nil, err
		}
		if err := s.store.Hint(string(args[1]), args[2], o); err != nil {
			return nil, err
		}
		return okReply, nil
	case CmdMerge:
		if len(args) < 3 || len(args)%2 != 1 {
			return nil, errArity
		}
		if len(args) > 3 {
			objs, err := decodePairs(args[1:])
			if err != nil {
				return nil, err
			}
			if err := s.store.MergeAll(pending, objs); err != nil {
				return nil, err
			}
			return okReply, nil
		}
		o, err := replica.DecodeObject(args[2])
		if err != nil {
			return nil, err
		}
		if _, err := s.store.MergeDeferred(pending, args[1], o); err != nil {
			return nil, err
		}
		return okReply, nil
	case CmdRange:
		return s.rangeReply(args)
	case CmdElements:
		return s.elementsReply(args)
	case CmdTally:
		if len(args) != 3 || len(args[2]) != 1 {
			return nil, errArity
		}
		t, err := s.store.ContainerTally(args[1], args[2][0])
		if err != nil {
			return nil, err
		}
		return redcon.AppendBulkString(nil, fmt.Sprintf("%d %d %d", t.Live, t.Total, t.Digest)), nil
	case CmdContainerClock:
		var before int64
		switch {
		case len(args) == 3:
			var err error
			if before, err = strconv.ParseInt(string(args[2]), 10, 64); err != nil {
				return nil, errors.New("ERR bad time")
			}
		case len(args) != 2:
			return nil, errArity
		}
		c, err := s.store.ContainerClock(args[1], before)
		if err != nil {
			return nil, err
		}
		return redcon.AppendBulk(nil, replica.AppendClock(nil, c)), nil
	case CmdCount:
		q, parts, err := decodeCountArgs(args)
		if err != nil {
			return nil, err
		}
		keys, exp := s.store.PartitionCounts(q, parts)
		return redcon.AppendBulk(nil, encodeCountReply(keys, exp)), nil
	case CmdFlush:
		if len(args) != 2 {
			return nil, errArity
		}
		t, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return nil, errors.New("ERR bad time")
		}
		if err := s.store.Flush(t); err != nil {
			return nil, err
		}
		return redcon.AppendString(nil, "OK"), nil
	}
	if h := s.handlers[name]; h != nil {
		out, err := h(ctx, args)
		if err != nil {
			return nil, err
		}
		return redcon.AppendBulk(nil, out), nil
	}
	return nil, fmt.Errorf("ERR unknown peer command '%.64s'", args[0])
}

func (s *Server) rangeReply(args [][]byte) ([]byte, error) {
	if len(args) != 5 || len(args[1]) != 8 || len(args[2]) != 8 {
		return nil, errors.New("ERR syntax: R.RANGE from(8) to(8) after limit")
	}
	limit, err := strconv.Atoi(string(args[4]))
	if err != nil || limit < 1 {
		return nil, errors.New("ERR bad limit")
	}
	var after []byte
	if len(args[3]) > 0 {
		after = args[3]
	}
	kos, err := s.store.Range(binary.BigEndian.Uint64(args[1]), binary.BigEndian.Uint64(args[2]), after, limit)
	if err != nil {
		return nil, err
	}
	return appendKeyObjects(kos), nil
}

func (s *Server) elementsReply(args [][]byte) ([]byte, error) {
	if len(args) != 4 || !replica.IsElement(args[1]) {
		return nil, errors.New("ERR syntax: R.ELEMS prefix after limit")
	}
	limit, err := strconv.Atoi(string(args[3]))
	if err != nil || limit < 1 {
		return nil, errors.New("ERR bad limit")
	}
	var after []byte
	if len(args[2]) > 0 {
		after = args[2]
	}
	kos, err := s.store.Elements(args[1], after, limit)
	if err != nil {
		return nil, err
	}
	return appendKeyObjects(kos), nil
}

// appendKeyObjects renders objects with their names, as R.RANGE and
// R.ELEMS answer.
func appendKeyObjects(kos []replica.KeyObject) []byte {
	b := redcon.AppendArray(nil, 2*len(kos))
	for _, ko := range kos {
		b = redcon.AppendBulk(b, ko.Key)
		b = redcon.AppendBulk(b, replica.AppendObject(nil, ko.Object))
	}
	return b
}

// errorReply renders err as a peer's error reply: a closed store answers
// UNAVAILABLE, so that the caller treats the node as down; a message that
// already starts with its Redis prefix keeps it; anything else is ERR.
func errorReply(err error) []byte {
	msg := strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error())
	switch {
	case errors.Is(err, replica.ErrClosed):
		msg = unavailable + " " + msg
	case !strings.HasPrefix(msg, "ERR "):
		msg = "ERR " + msg
	}
	return redcon.AppendError(nil, msg)
}

// decodePairs decodes the key, object pairs of a batch R.MERGE or R.HINT.
func decodePairs(args [][]byte) ([]replica.KeyObject, error) {
	objs := make([]replica.KeyObject, 0, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		o, err := replica.DecodeObject(args[i+1])
		if err != nil {
			return nil, fmt.Errorf("object %d of the batch: %w", i/2, err)
		}
		objs = append(objs, replica.KeyObject{Key: args[i], Object: o})
	}
	return objs, nil
}

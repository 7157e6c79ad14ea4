package resp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// Transactions: MULTI queues a connection's commands and EXEC runs them
// in order, their replies in one array. WATCH remembers each watched
// key's clock from a quorum read; EXEC rereads them at quorum and aborts
// with a null reply if any changed (or appeared, or vanished), as Redis
// does when another client touched a watched key.
//
// The keys a transaction writes and watches must share a slot, as in
// Redis Cluster (-CROSSSLOT otherwise); keys it only reads may lie
// anywhere. EXEC runs at the slot's leader, its first healthy primary
// (the node that decides SET NX and APPEND too), under a lock of the
// slot's stripe: transactions on one slot take turns, so two clients'
// WATCH-read-EXEC cycles never both win on the same version. Each
// command goes through the same path as alone and reads the
// transaction's earlier writes, applied at the leader as they come; the
// writes reach each other replica together when the commands have run,
// stored there in one Pebble batch or kept whole as hints (coord.Group).
// A leader that crashes in the middle keeps the writes it made, and a
// plain write sent through another node may land between the check and
// the commands.

// errCrossSlot is Redis Cluster's refusal of a transaction whose written
// or watched keys lie in different slots.
const errCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot"

// transaction is a connection's MULTI state.
type transaction struct {
	cmds  [][][]byte // copies: the reader reuses its buffers
	specs []*command
	// aborted is set by a command refused while queuing: EXEC then
	// answers EXECABORT.
	aborted bool
	// slot is the slot of the keys written and watched, -1 before any;
	// key one of them, to find the slot's leader.
	slot int
	key  []byte
}

// watch is one watched key and what a quorum read saw of it: its
// header's clock and, for a hash or set, the digest of its elements (an
// element write leaves the header as it is).
type watch struct {
	key   []byte
	clock replica.Clock
	live  bool
	// digest hashes the clocks of the container's elements: from a read
	// quorum's tallies when they agree, else from the elements read and
	// merged. unsure is set when neither could be had, and EXEC then
	// aborts, as after a change.
	digest uint64
	unsure bool
}

// watchState reads what WATCH remembers of key (observe: the version
// read is made to stay visible to the client's next reads; see
// coord.Observe), and what EXEC compares with it.
func (s *Server) watchState(ctx context.Context, key []byte, observe bool) (watch, error) {
	var o replica.Object
	var err error
	if observe {
		o, err = s.coord.Observe(ctx, key)
	} else {
		o, err = s.coord.GetIn(ctx, nil, key, 0)
	}
	if err != nil {
		return watch{}, err
	}
	now := s.coord.Now()
	w := watch{key: key, clock: o.Clock, live: o.HasLive(now)}
	if v, ok := o.Resolve(now); ok && v.Kind.Container() {
		typ := elementType(v.Kind)
		t, agreed, err := s.coord.Count(ctx, key, typ)
		if err != nil {
			return watch{}, err
		}
		if agreed {
			// The replicas' tallies hash their header too, the same as
			// the one read when they agree.
			w.digest = t.Digest ^ replica.HashKey(key, o.Clock) ^ replica.HashKey(nil, o.Removed)
			return w, nil
		}
		// Replicas differ (writes on their way): hash what they hold
		// merged, as a read of the elements sees it.
		var after []byte
		for {
			kos, more, err := s.coord.Elements(ctx, key, typ, after, coord.ElementChunk)
			if err != nil {
				w.unsure = true
				return w, nil
			}
			for _, ko := range kos {
				w.digest ^= replica.HashKey(ko.Key, ko.Object.Clock)
			}
			if !more || len(kos) == 0 {
				return w, nil
			}
			after = kos[len(kos)-1].Key
		}
	}
	return w, nil
}

// same reports whether a watched key is as WATCH saw it.
func (w watch) same(now watch) bool {
	return w.clock.Equal(now.clock) && w.live == now.live && w.digest == now.digest && !w.unsure && !now.unsure
}

// txControl are the commands that act on a transaction instead of being
// queued in it.
var txControl = map[string]bool{"exec": true, "discard": true, "multi": true, "watch": true, "quit": true, "reset": true}

// sameSlot records key's slot as the transaction's, and reports false
// when the transaction already has another.
func (tx *transaction) sameSlot(key []byte) bool {
	slot := int(replica.Slot(key))
	if tx.slot >= 0 {
		return slot == tx.slot
	}
	tx.slot, tx.key = slot, append([]byte(nil), key...)
	return true
}

// queueing reports whether the client is in MULTI and args is to be
// queued rather than run; it queues it and answers QUEUED. A write whose
// keys leave the transaction's slot is refused and aborts it.
func (s *Server) queueing(c *client, spec *command, args [][]byte, r *reply) bool {
	tx := c.tx
	if tx == nil || txControl[spec.name] {
		return false
	}
	for _, k := range slotKeys(spec, args) {
		if !tx.sameSlot(k) {
			tx.aborted = true
			r.err(errCrossSlot)
			return true
		}
	}
	cp := make([][]byte, len(args))
	for i, a := range args {
		cp[i] = append([]byte(nil), a...)
	}
	tx.cmds = append(tx.cmds, cp)
	tx.specs = append(tx.specs, spec)
	r.status("QUEUED")
	return true
}

// slotKeys are the keys of a command that bind a transaction to their
// slot: those a write writes, and a script's KEYS.
func slotKeys(spec *command, args [][]byte) [][]byte {
	switch {
	case spec.group == groupScripting && spec.parent == "" && len(args) > 2: // EVAL and EVALSHA, not SCRIPT
		n, err := strconv.Atoi(string(args[2]))
		if err != nil || n < 0 || n > len(args)-3 {
			return nil // the script itself refuses it
		}
		return args[3 : 3+n]
	case spec.flags&flagWrite != 0:
		return spec.keys(args)
	}
	return nil
}

// refuseInTx marks the client's transaction aborted when a command was
// refused before it could be queued (unknown, wrong arity).
func (c *client) refuseInTx() {
	if c.tx != nil {
		c.tx.aborted = true
	}
}

func cmdMulti(s *Server, c *client, args [][]byte, r *reply) {
	if c.tx != nil {
		r.err("ERR MULTI calls can not be nested")
		return
	}
	c.tx = &transaction{slot: -1}
	if len(c.watches) > 0 {
		c.tx.sameSlot(c.watches[0].key)
	}
	r.ok()
}

func cmdDiscard(s *Server, c *client, args [][]byte, r *reply) {
	if c.tx == nil {
		r.err("ERR DISCARD without MULTI")
		return
	}
	c.tx, c.watches = nil, nil
	r.ok()
}

func cmdWatch(s *Server, c *client, args [][]byte, r *reply) {
	if c.tx != nil {
		r.err("ERR WATCH inside MULTI is not allowed")
		return
	}
	slot := -1
	if len(c.watches) > 0 {
		slot = int(replica.Slot(c.watches[0].key))
	}
	for _, k := range args[1:] {
		if slot >= 0 && int(replica.Slot(k)) != slot {
			r.err(errCrossSlot)
			return
		}
		slot = int(replica.Slot(k))
	}
	for _, k := range args[1:] {
		w, err := s.watchState(r.ctx, append([]byte(nil), k...), true)
		if err != nil {
			fail(r, err)
			return
		}
		c.watches = append(c.watches, w)
	}
	r.ok()
}

func cmdUnwatch(s *Server, c *client, args [][]byte, r *reply) {
	c.watches = nil
	r.ok()
}

// cmdExec runs the queued commands at the slot's leader, unless one was
// refused while queuing (EXECABORT) or a watched key changed (a null
// reply).
func cmdExec(s *Server, c *client, args [][]byte, r *reply) {
	tx, watches := c.tx, c.watches
	if tx == nil {
		r.err("ERR EXEC without MULTI")
		return
	}
	c.tx, c.watches = nil, nil
	if tx.aborted {
		r.err("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	s.execAtLeader(c, tx, watches, false, r)
}

// execAtLeader runs a transaction, or with single one command of it
// answered alone (a script), at its slot's leader: here when this node
// leads or when the transaction has no slot or cannot be forwarded.
func (s *Server) execAtLeader(c *client, tx *transaction, watches []watch, single bool, r *reply) {
	if tx.slot < 0 || !tx.forwardable() || s.opts.ForwardExec == nil {
		s.execHere(r.ctx, c, tx, watches, single, r)
		return
	}
	leader, err := s.coord.Leader(tx.key)
	if err != nil {
		fail(r, err)
		return
	}
	if leader == "" {
		s.execHere(r.ctx, c, tx, watches, single, r)
		return
	}
	// The leader must start it within ForwardTimeout, and has as long
	// again to run it (a script, up to the script limit more): a paused
	// leader must cost a client less than its read timeout.
	wait := 2*s.opts.ForwardTimeout + time.Duration(len(tx.cmds))*time.Millisecond
	for _, spec := range tx.specs {
		if spec.group == groupScripting {
			wait += 2 * s.opts.ScriptTimeout // the limit, and slack for the leader to stop it
			break
		}
	}
	ctx, cancel := context.WithTimeout(r.ctx, wait)
	defer cancel()
	out, err := s.opts.ForwardExec(ctx, leader, encodeExec(tx, watches, r.resp3, single, time.Now().Add(s.opts.ForwardTimeout)))
	switch {
	case errors.Is(err, coord.ErrNotSent):
		// The leader never got it: run it here, as a write is run by a
		// fallback when no primary can be reached.
		s.execHere(r.ctx, c, tx, watches, single, r)
	case errors.Is(err, coord.ErrUnreachable):
		s.coord.Unresponsive(leader)
		fail(r, fmt.Errorf("%w: the transaction went to %s, which did not answer; it may still run once (%v)", coord.ErrUnavailable, leader, err))
	case err != nil:
		fail(r, err)
	default:
		r.b = append(r.b, out...)
	}
}

// forwardable reports whether every queued command works on keys alone,
// so that another node can run it for this connection.
func (tx *transaction) forwardable() bool {
	for _, spec := range tx.specs {
		switch {
		case spec.flags&(flagWrite|flagReadonly) != 0:
		case spec.name == "ping", spec.name == "echo", spec.name == "eval", spec.name == "eval_ro":
		default:
			return false
		}
	}
	return true
}

// execHere runs a transaction on this node: it checks the watched keys
// and runs the commands under the lock of the slot's stripe. With single,
// the one command's reply is the answer, not an array of it.
func (s *Server) execHere(ctx context.Context, c *client, tx *transaction, watches []watch, single bool, r *reply) {
	if tx.slot >= 0 {
		mu := &s.slotLocks[tx.slot%len(s.slotLocks)]
		mu.Lock()
		defer mu.Unlock()
	}
	for _, w := range watches {
		now, err := s.watchState(ctx, w.key, false)
		if err != nil {
			fail(r, err)
			return
		}
		if !w.same(now) {
			r.nullArray()
			return
		}
	}
	// The writes of the transaction's slot go to the other replicas
	// together, once the commands have run.
	var g *coord.Group
	if tx.slot >= 0 {
		var err error
		if g, err = s.coord.NewGroup(tx.key); err != nil {
			fail(r, err)
			return
		}
	}
	start := len(r.b)
	if !single {
		r.array(len(tx.cmds))
	}
	// The commands run with the slot's lock held: a script among them
	// must not take it again.
	c.inExec = true
	defer func() { c.inExec = false }()
	one := reply{ctx: ctx, resp3: r.resp3, pl: g.Pipelined()}
	for i, cmd := range tx.cmds {
		one.b = one.b[:0]
		s.run(tx.specs[i], c, cmd, &one)
		r.b = append(r.b, one.b...)
		r.lastKey, r.lastDot = one.lastKey, one.lastDot
	}
	if err := s.coord.Commit(ctx, g); err != nil {
		r.b = r.b[:start]
		fail(r, err)
	}
}

// slotLockStripes is how many locks the slots share for transactions.
const slotLockStripes = 256

// slotLocks are the transaction locks of the slots, striped.
type slotLocks [slotLockStripes]sync.Mutex

// The flags of a watched key in a forwarded transaction.
const (
	watchLive   = 1
	watchUnsure = 2
)

// encodeExec is a transaction as it is forwarded to the slot's leader:
// the time by which it must have started (ms), the reply protocol, whether
// it is a single command answered alone, the watched keys with their
// clocks, then the commands.
func encodeExec(tx *transaction, watches []watch, resp3, single bool, deadline time.Time) []byte {
	b := binary.AppendVarint(nil, deadline.UnixMilli())
	if resp3 {
		b = append(b, 3)
	} else {
		b = append(b, 2)
	}
	if single {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(watches)))
	for _, w := range watches {
		b = replica.AppendBytes(b, w.key)
		var flags byte
		if w.live {
			flags |= watchLive
		}
		if w.unsure {
			flags |= watchUnsure
		}
		b = append(b, flags)
		b = replica.AppendBytes(b, replica.AppendClock(nil, w.clock))
		b = binary.BigEndian.AppendUint64(b, w.digest)
	}
	b = binary.AppendUvarint(b, uint64(len(tx.cmds)))
	for _, cmd := range tx.cmds {
		b = binary.AppendUvarint(b, uint64(len(cmd)))
		for _, a := range cmd {
			b = replica.AppendBytes(b, a)
		}
	}
	return b
}

// errBadExec is the refusal of a forwarded transaction that does not
// decode, or names a command that cannot be forwarded.
var errBadExec = errors.New("ERR malformed forwarded transaction")

// count reads a length prefix; -1 when the rest of the input cannot hold
// that many items (each takes a byte at least).
func count(d *replica.Reader) int {
	n := d.Uvarint()
	if d.Failed() || n > uint64(len(d.Rest())) {
		return -1
	}
	return int(n)
}

// ServeExec runs a transaction another node forwarded to this one, the
// leader of its slot, and returns its RESP reply. One that arrives after
// its sender gave up is not run (its client was told it failed).
func (s *Server) ServeExec(ctx context.Context, payload []byte) ([]byte, error) {
	d := replica.NewReader(payload)
	deadline := d.Varint()
	r := &reply{ctx: s.base, resp3: d.Byte() == 3}
	single := d.Byte() == 1
	n := count(d)
	if n < 0 {
		return nil, errBadExec
	}
	watches := make([]watch, n)
	for i := range watches {
		watches[i].key = d.Bytes()
		flags := d.Byte()
		watches[i].live, watches[i].unsure = flags&watchLive != 0, flags&watchUnsure != 0
		clock, err := replica.DecodeClock(d.Bytes())
		if err != nil && !d.Failed() {
			return nil, errBadExec
		}
		watches[i].clock = clock
		if digest := d.Next(8); !d.Failed() {
			watches[i].digest = binary.BigEndian.Uint64(digest)
		}
	}
	tx := &transaction{slot: -1}
	n = count(d)
	if n < 0 {
		return nil, errBadExec
	}
	for range n {
		args := count(d)
		if args <= 0 {
			return nil, errBadExec
		}
		cmd := make([][]byte, args)
		for j := range cmd {
			cmd[j] = d.Bytes()
		}
		if d.Failed() {
			return nil, errBadExec
		}
		spec := s.lookup(cmd[0])
		if spec != nil && spec.sub != nil && len(cmd) > 1 {
			spec = lookupIn(spec.sub, cmd[1])
		}
		if spec == nil || !spec.arityOK(len(cmd)) {
			return nil, errBadExec
		}
		tx.cmds, tx.specs = append(tx.cmds, cmd), append(tx.specs, spec)
		for _, k := range slotKeys(spec, cmd) {
			if !tx.sameSlot(k) {
				return nil, errBadExec
			}
		}
	}
	if d.Failed() || len(d.Rest()) != 0 || !tx.forwardable() {
		return nil, errBadExec
	}
	for _, w := range watches {
		if !tx.sameSlot(w.key) {
			return nil, errBadExec
		}
	}
	if late := time.Now().UnixMilli() - deadline; late > 0 {
		r.err(fmt.Sprintf("UNAVAILABLE the transaction reached its slot's leader %d ms after its sender gave up; not run", late))
		return r.b, nil
	}
	if single && len(tx.cmds) != 1 {
		return nil, errBadExec
	}
	s.execHere(ctx, &client{id: -1, addr: "forwarded", guard: &guard{}}, tx, watches, single, r)
	return r.b, nil
}

package resp

import (
	"strings"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// The commands that read one key and write another (RENAME, RENAMENX,
// COPY) or write several only if none exists (MSETNX). Their keys must
// share a slot, as in Redis Cluster, and they run as a one-command
// transaction at the slot's leader, under its lock: they take turns with
// the slot's transactions and scripts. Like a transaction's, their writes
// reach each other replica as one write (coord.Group): a replica holds
// RENAME's copy and delete together or neither. The leader applies them
// one by one, so a leader that crashes between them can keep the first.

// atLeader sends a multi-key command to run at its keys' slot's leader,
// unless it runs there already (inside EXEC, or forwarded); it reports
// whether it did. Keys of different slots get -CROSSSLOT.
func (s *Server) atLeader(c *client, args [][]byte, keys [][]byte, r *reply) bool {
	if c.inExec {
		return false
	}
	tx := &transaction{slot: -1}
	for _, k := range keys {
		if !tx.sameSlot(k) {
			r.err(errCrossSlot)
			return true
		}
	}
	tx.cmds, tx.specs = [][][]byte{args}, []*command{s.lookup(args[0])}
	s.execAtLeader(c, tx, nil, true, r)
	return true
}

// moveValue writes src's live value, with its expiry, to dst; with
// onlyNew it does not overwrite a live dst. It answers whether src held a
// value and whether dst was written.
func (s *Server) moveValue(r *reply, src, dst []byte, onlyNew bool) (found, written bool) {
	v, ok, err := s.value(r, src)
	if err != nil {
		fail(r, err)
		return false, false
	}
	if !ok {
		return false, false
	}
	if v.Kind.Container() {
		return true, s.copyContainer(r, src, dst, v, onlyNew)
	}
	op := coord.Op{Kind: coord.Put, Value: v.Bytes, Expiry: v.Expiry}
	if onlyNew {
		op.Cond = coord.IfAbsent
	}
	res, ok := s.write(r, dst, op)
	return true, ok && res.Written
}

// cmdRename serves RENAME and RENAMENX.
func cmdRename(s *Server, c *client, args [][]byte, r *reply) {
	if s.atLeader(c, args, args[1:3], r) {
		return
	}
	nx := strings.EqualFold(string(args[0]), "renamenx")
	if string(args[1]) == string(args[2]) {
		switch _, ok, err := s.value(r, args[1]); {
		case err != nil:
			fail(r, err)
		case !ok:
			r.err("ERR no such key")
		case nx:
			r.int(0)
		default:
			r.ok()
		}
		return
	}
	n := len(r.b)
	found, written := s.moveValue(r, args[1], args[2], nx)
	switch {
	case len(r.b) > n: // an error
	case !found:
		r.err("ERR no such key")
	case !written:
		r.int(0)
	default:
		if _, ok := s.write(r, args[1], coord.Op{Kind: coord.Delete}); !ok {
			return
		}
		if nx {
			r.int(1)
		} else {
			r.ok()
		}
	}
}

// cmdCopy serves COPY src dst [DB 0] [REPLACE].
func cmdCopy(s *Server, c *client, args [][]byte, r *reply) {
	replace := false
	for i := 3; i < len(args); i++ {
		switch opt := strings.ToLower(string(args[i])); {
		case opt == "replace":
			replace = true
		case opt == "db" && i+1 < len(args):
			i++
			if string(args[i]) != "0" {
				r.err(errDBIndex)
				return
			}
		default:
			r.err(errSyntax)
			return
		}
	}
	if string(args[1]) == string(args[2]) {
		r.err("ERR source and destination objects are the same")
		return
	}
	if s.atLeader(c, args, args[1:3], r) {
		return
	}
	n := len(r.b)
	_, written := s.moveValue(r, args[1], args[2], !replace)
	if len(r.b) == n {
		r.int(b2i(written))
	}
}

// cmdMSetNX serves MSETNX: every key set, or none when one exists.
func cmdMSetNX(s *Server, c *client, args [][]byte, r *reply) {
	if len(args)%2 != 1 {
		r.err(wrongArity("msetnx"))
		return
	}
	keys := make([][]byte, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		keys = append(keys, args[i])
	}
	if s.atLeader(c, args, keys, r) {
		return
	}
	for _, k := range keys {
		_, ok, err := s.value(r, k)
		if err != nil {
			fail(r, err)
			return
		}
		if ok {
			r.int(0)
			return
		}
	}
	for i := 1; i < len(args); i += 2 {
		if _, ok := s.write(r, args[i], coord.Op{Kind: coord.Put, Value: args[i+1]}); !ok {
			return
		}
	}
	r.int(1)
}

// copyContainer writes the hash or set src (whose header reads as v) to
// dst, element by element, with src's expiry; with onlyNew it leaves an
// existing dst alone. It answers whether dst was written; on an error the
// reply holds it.
func (s *Server) copyContainer(r *reply, src, dst []byte, v replica.Value, onlyNew bool) bool {
	if onlyNew {
		_, exists, err := s.containerKind(r, dst)
		if err != nil {
			fail(r, err)
			return false
		}
		if exists {
			return false
		}
	}
	els, err := s.elements(r, src, v.Kind)
	if err != nil {
		fail(r, err)
		return false
	}
	if _, err := s.writeIn(r, dst, coord.Op{Kind: coord.Delete}); err != nil {
		fail(r, err)
		return false
	}
	ids, vals := make([][]byte, len(els)), make([][]byte, len(els))
	for i, e := range els {
		ids[i], vals[i] = e.id, e.value
	}
	if v.Kind == replica.KindSet {
		vals = nil
	}
	if _, err := s.addElements(r, dst, v.Kind, ids, vals, coord.Always, false); err != nil {
		fail(r, err)
		return false
	}
	if v.Expiry != 0 {
		if _, err := s.writeIn(r, dst, coord.Op{Kind: coord.Expire, Expiry: v.Expiry}); err != nil {
			fail(r, err)
			return false
		}
	}
	return true
}

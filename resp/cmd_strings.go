package resp

import (
	"bytes"
	"math"

	"github.com/dynakv/dynakv/coord"
)

// write runs op on key and writes err as the reply when it fails.
func (s *Server) write(r *reply, key []byte, op coord.Op) (coord.Result, bool) {
	res, err := s.writeIn(r, key, op)
	if err != nil {
		fail(r, err)
		return res, false
	}
	return res, true
}

// writeIn runs a write for the command r answers, and notes it as the
// command's last for WAIT.
func (s *Server) writeIn(r *reply, key []byte, op coord.Op) (coord.Result, error) {
	res, err := s.coord.WriteIn(r.ctx, r.pl, key, op)
	if err == nil && res.Written {
		r.lastKey, r.lastDot = key, res.Dot
	}
	return res, err
}

// bulkOrNull writes the old value of a result, or null.
func (r *reply) old(res coord.Result) {
	if res.HadOld {
		r.bulk(res.Old)
		return
	}
	r.null()
}

func cmdSetNX(s *Server, c *client, args [][]byte, r *reply) {
	if res, ok := s.write(r, args[1], coord.Op{Kind: coord.Put, Value: args[2], Cond: coord.IfAbsent}); ok {
		r.int(b2i(res.Written))
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// cmdSetEx serves SETEX and PSETEX: key, a relative expiry, value.
func cmdSetEx(s *Server, c *client, args [][]byte, r *reply) {
	unit, name := "EX", "setex"
	if bytes.EqualFold(args[0], []byte("psetex")) {
		unit, name = "PX", "psetex"
	}
	at, msg := expiryAt(unit, args[2], s.coord.Now(), name)
	if msg != "" {
		r.err(msg)
		return
	}
	if _, ok := s.write(r, args[1], coord.Op{Kind: coord.Put, Value: args[3], Expiry: at}); ok {
		r.ok()
	}
}

func cmdGetSet(s *Server, c *client, args [][]byte, r *reply) {
	if res, ok := s.write(r, args[1], coord.Op{Kind: coord.Put, Value: args[2], WantOld: true}); ok {
		r.old(res)
	}
}

func cmdGetDel(s *Server, c *client, args [][]byte, r *reply) {
	if res, ok := s.write(r, args[1], coord.Op{Kind: coord.Delete, WantOld: true}); ok {
		r.old(res)
	}
}

func cmdGetEx(s *Server, c *client, args [][]byte, r *reply) {
	if len(args) == 2 {
		cmdGet(s, c, args, r)
		return
	}
	op := coord.Op{Kind: coord.Expire}
	switch opt := string(bytes.ToUpper(args[2])); {
	case opt == "PERSIST" && len(args) == 3:
		op.Persist = true
	case (opt == "EX" || opt == "PX" || opt == "EXAT" || opt == "PXAT") && len(args) == 4:
		at, msg := expiryAt(opt, args[3], s.coord.Now(), "getex")
		if msg != "" {
			r.err(msg)
			return
		}
		op.Expiry = at
	default:
		r.err(errSyntax)
		return
	}
	if res, ok := s.write(r, args[1], op); ok {
		r.old(res)
	}
}

func cmdAppend(s *Server, c *client, args [][]byte, r *reply) {
	if res, ok := s.write(r, args[1], coord.Op{Kind: coord.Append, Value: args[2]}); ok {
		r.int(res.Int)
	}
}

// cmdIncr serves INCR, DECR, INCRBY and DECRBY: convergent counters.
func cmdIncr(s *Server, c *client, args [][]byte, r *reply) {
	delta := int64(1)
	if len(args) == 3 {
		n, ok := coord.ParseInteger(args[2])
		if !ok {
			r.err(errNotInteger)
			return
		}
		delta = n
	}
	switch string(bytes.ToLower(args[0])) {
	case "decr":
		delta = -1
	case "decrby":
		if delta == math.MinInt64 {
			r.err("ERR decrement would overflow")
			return
		}
		delta = -delta
	}
	if res, ok := s.write(r, args[1], coord.Op{Kind: coord.Incr, Delta: delta}); ok {
		r.int(res.Int)
	}
}

func cmdIncrByFloat(s *Server, c *client, args [][]byte, r *reply) {
	// An infinite increment parses, as in Redis, and then gets the
	// NaN-or-Infinity error where the key holds a number.
	if _, ok := coord.ParseLongDouble(args[2]); !ok {
		r.err("ERR value is not a valid float")
		return
	}
	if res, ok := s.write(r, args[1], coord.Op{Kind: coord.IncrFloat, Value: args[2]}); ok {
		r.bulk(res.New)
	}
}

func cmdStrlen(s *Server, c *client, args [][]byte, r *reply) {
	v, _, err := s.get(r, args[1])
	if err != nil {
		fail(r, err)
		return
	}
	r.int(int64(len(v)))
}

func cmdType(s *Server, c *client, args [][]byte, r *reply) {
	kind, ok, err := s.containerKind(r, args[1])
	switch {
	case err != nil:
		fail(r, err)
	case ok:
		r.status(typeName(kind))
	default:
		r.status("none")
	}
}

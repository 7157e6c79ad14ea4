package resp

import (
	"bytes"
	"strconv"

	"github.com/dynakv/dynakv/coord"
)

// quorumOption parses the optional trailing "R n" or "W n" of the Dynamo
// commands; 0 means none given.
func quorumOption(opts [][]byte, name string) (int, string) {
	switch {
	case len(opts) == 0:
		return 0, ""
	case len(opts) != 2 || !bytes.EqualFold(opts[0], []byte(name)):
		return 0, errSyntax
	}
	n, err := strconv.Atoi(string(opts[1]))
	if err != nil {
		return 0, errNotInteger
	}
	if n < 1 {
		n = -1 // explicit but out of range: the coordinator says why
	}
	return n, ""
}

func cmdDGet(s *Server, c *client, args [][]byte, r *reply) {
	rq, msg := quorumOption(args[2:], "R")
	if msg != "" {
		r.err(msg)
		return
	}
	o, err := s.coord.GetIn(r.ctx, r.pl, args[1], rq)
	if err != nil {
		fail(r, err)
		return
	}
	sealed, err := s.coord.Seal(args[1], o.Context())
	if err != nil {
		fail(r, err)
		return
	}
	live := o.Live(s.coord.Now())
	r.array(2)
	r.bulkString(sealed)
	r.array(len(live))
	for _, sib := range live {
		r.bulk(sib.Display())
	}
}

// contextOp builds the op of DPUT and DDEL on key: the client's context,
// which must be sealed for key, and the optional "W n". It answers the
// client itself, and returns false, when the request is refused.
func contextOp(s *Server, r *reply, kind coord.Kind, key, ctxArg []byte, opts [][]byte) (coord.Op, bool) {
	w, msg := quorumOption(opts, "W")
	if msg != "" {
		r.err(msg)
		return coord.Op{}, false
	}
	ctx, err := s.coord.Open(key, string(ctxArg))
	if err != nil {
		fail(r, err)
		return coord.Op{}, false
	}
	return coord.Op{Kind: kind, Context: ctx, HasContext: true, W: w}, true
}

func cmdDPut(s *Server, c *client, args [][]byte, r *reply) {
	op, ok := contextOp(s, r, coord.Put, args[1], args[2], args[4:])
	if !ok {
		return
	}
	op.Value = args[3]
	res, err := s.writeIn(r, args[1], op)
	if err != nil {
		fail(r, err)
		return
	}
	sealed, err := s.coord.Seal(args[1], res.Context)
	if err != nil {
		fail(r, err)
		return
	}
	r.bulkString(sealed)
}

func cmdDDel(s *Server, c *client, args [][]byte, r *reply) {
	op, ok := contextOp(s, r, coord.Delete, args[1], args[2], args[3:])
	if !ok {
		return
	}
	if _, err := s.writeIn(r, args[1], op); err != nil {
		fail(r, err)
		return
	}
	r.ok()
}

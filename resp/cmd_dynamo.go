package resp

import (
	"bytes"
	"strconv"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
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
	o, err := s.coord.Get(r.ctx, args[1], rq)
	if err != nil {
		fail(r, err)
		return
	}
	live := o.Live(s.coord.Now())
	r.array(2)
	r.bulkString(replica.EncodeContext(o.Context()))
	r.array(len(live))
	for _, sib := range live {
		r.bulk(sib.Display())
	}
}

// contextOp builds the op of DPUT and DDEL: the client's context and the
// optional "W n".
func contextOp(kind coord.Kind, ctxArg []byte, opts [][]byte) (coord.Op, string) {
	w, msg := quorumOption(opts, "W")
	if msg != "" {
		return coord.Op{}, msg
	}
	ctx, err := replica.DecodeContext(string(ctxArg))
	if err != nil {
		return coord.Op{}, errBadContext
	}
	return coord.Op{Kind: kind, Context: ctx, HasContext: true, W: w}, ""
}

func cmdDPut(s *Server, c *client, args [][]byte, r *reply) {
	op, msg := contextOp(coord.Put, args[2], args[4:])
	if msg != "" {
		r.err(msg)
		return
	}
	op.Value = args[3]
	res, err := s.coord.Write(r.ctx, args[1], op)
	if err != nil {
		fail(r, err)
		return
	}
	r.bulkString(replica.EncodeContext(res.Context))
}

func cmdDDel(s *Server, c *client, args [][]byte, r *reply) {
	op, msg := contextOp(coord.Delete, args[2], args[3:])
	if msg != "" {
		r.err(msg)
		return
	}
	if _, err := s.coord.Write(r.ctx, args[1], op); err != nil {
		fail(r, err)
		return
	}
	r.ok()
}

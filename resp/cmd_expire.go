package resp

import (
	"bytes"
	"math"
	"strconv"

	"github.com/dynakv/dynakv/coord"
)

// cmdExpire serves EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with their NX,
// XX, GT and LT options.
func cmdExpire(s *Server, c *client, args [][]byte, r *reply) {
	name := string(bytes.ToLower(args[0]))
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		r.err(errNotInteger)
		return
	}
	invalid := "ERR invalid expire time in '" + name + "' command"
	now := s.coord.Now()
	at := n
	if name == "expire" || name == "expireat" {
		if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
			r.err(invalid)
			return
		}
		at = n * 1000
	}
	if name == "expire" || name == "pexpire" {
		if at > 0 && at > math.MaxInt64-now { // now >= 0: a negative at cannot overflow

			r.err(invalid)
			return
		}
		at += now
	}
	op := coord.Op{Kind: coord.Expire, Expiry: max(at, 1)}
	var nx, xx, gt, lt bool
	for _, a := range args[3:] {
		switch string(bytes.ToUpper(a)) {
		case "NX":
			nx, op.ExpireCond = true, coord.ExpireNX
		case "XX":
			xx, op.ExpireCond = true, coord.ExpireXX
		case "GT":
			gt, op.ExpireCond = true, coord.ExpireGT
		case "LT":
			lt, op.ExpireCond = true, coord.ExpireLT
		default:
			r.err(sanitize("ERR Unsupported option " + string(a)))
			return
		}
	}
	switch {
	case nx && (xx || gt || lt):
		r.err("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	case gt && lt:
		r.err("ERR GT and LT options at the same time are not compatible")
		return
	case xx && (gt || lt):
		op.ExpireCond = coord.ExpireGT
		if lt {
			op.ExpireCond = coord.ExpireLT
		}
	}
	if res, ok := s.write(r, args[1], op); ok {
		r.int(b2i(res.Written))
	}
}

func cmdPersist(s *Server, c *client, args [][]byte, r *reply) {
	if res, ok := s.write(r, args[1], coord.Op{Kind: coord.Expire, Persist: true, ExpireCond: coord.ExpireXX}); ok {
		r.int(b2i(res.Written))
	}
}

// cmdTTL serves TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a missing
// key, -1 for one without expiry.
func cmdTTL(s *Server, c *client, args [][]byte, r *reply) {
	v, ok, err := s.value(r, args[1])
	switch {
	case err != nil:
		fail(r, err)
		return
	case !ok:
		r.int(-2)
		return
	case v.Expiry == 0:
		r.int(-1)
		return
	}
	left := max(v.Expiry-s.coord.Now(), 0)
	switch string(bytes.ToLower(args[0])) {
	case "ttl":
		r.int((left + 500) / 1000)
	case "pttl":
		r.int(left)
	case "expiretime":
		r.int(v.Expiry / 1000)
	default:
		r.int(v.Expiry)
	}
}

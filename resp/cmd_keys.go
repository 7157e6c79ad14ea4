package resp

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"sync"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// maxKeyWorkers bounds the concurrent per-key requests of one multi-key
// command.
const maxKeyWorkers = 32

// each runs fn for i in [0, n), concurrently for n > 1: on a cluster every
// key may wait on its own replicas.
func (s *Server) each(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxKeyWorkers)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		s.workers.run(func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		})
	}
	wg.Wait()
}

// value returns what key reads as at the read quorum, for the command
// whose reply is r.
func (s *Server) value(r *reply, key []byte) (replica.Value, bool, error) {
	o, err := s.coord.GetIn(r.ctx, r.pl, key, 0)
	if err != nil {
		return replica.Value{}, false, err
	}
	v, ok := o.Resolve(s.coord.Now())
	if ok {
		s.stats.hits.Add(1)
	} else {
		s.stats.misses.Add(1)
	}
	return v, ok, nil
}

// get returns the value GET answers for key: coord.ErrWrongType when the
// key holds a hash or a set.
func (s *Server) get(r *reply, key []byte) ([]byte, bool, error) {
	v, ok, err := s.value(r, key)
	if ok && v.Kind.Container() {
		return nil, false, coord.ErrWrongType
	}
	return v.Bytes, ok, err
}

func cmdGet(s *Server, c *client, args [][]byte, r *reply) {
	v, ok, err := s.get(r, args[1])
	switch {
	case err != nil:
		fail(r, err)
	case ok:
		r.bulk(v)
	default:
		r.null()
	}
}

func cmdMGet(s *Server, c *client, args [][]byte, r *reply) {
	keys := args[1:]
	vals := make([][]byte, len(keys))
	found := make([]bool, len(keys))
	errs := make([]error, len(keys))
	s.each(len(keys), func(i int) {
		vals[i], found[i], errs[i] = s.get(r, keys[i])
		if errors.Is(errs[i], coord.ErrWrongType) {
			errs[i] = nil // MGET answers nil for a key of another type
		}
	})
	for _, err := range errs {
		if err != nil {
			fail(r, err)
			return
		}
	}
	r.array(len(keys))
	for i := range keys {
		if found[i] {
			r.bulk(vals[i])
		} else {
			r.null()
		}
	}
}

// parseSet parses SET's options after key and value into an op.
func parseSet(args [][]byte, now int64) (op coord.Op, get bool, errMsg string) {
	op = coord.Op{Kind: coord.Put, Value: args[2]}
	expiring := false
	for i := 3; i < len(args); i++ {
		switch opt := string(bytes.ToUpper(args[i])); opt {
		case "NX", "XX":
			cond := coord.IfAbsent
			if opt == "XX" {
				cond = coord.IfPresent
			}
			if op.Cond != coord.Always && op.Cond != cond {
				return op, false, errSyntax
			}
			op.Cond = cond
		case "GET":
			get, op.WantOld = true, true
		case "KEEPTTL":
			if expiring {
				return op, false, errSyntax
			}
			op.KeepTTL = true
		case "EX", "PX", "EXAT", "PXAT":
			if expiring || op.KeepTTL || i+1 == len(args) {
				return op, false, errSyntax
			}
			i++
			at, msg := expiryAt(opt, args[i], now, "set")
			if msg != "" {
				return op, false, msg
			}
			op.Expiry, expiring = at, true
		default:
			return op, false, errSyntax
		}
	}
	return op, get, ""
}

// expiryAt turns an EX/PX/EXAT/PXAT argument into an absolute time in ms,
// with Redis's errors.
func expiryAt(unit string, arg []byte, now int64, cmd string) (int64, string) {
	v, err := strconv.ParseInt(string(arg), 10, 64)
	if err != nil {
		return 0, errNotInteger
	}
	invalid := "ERR invalid expire time in '" + cmd + "' command"
	if v <= 0 {
		return 0, invalid
	}
	if unit == "EX" || unit == "EXAT" {
		if v > math.MaxInt64/1000 {
			return 0, invalid
		}
		v *= 1000
	}
	if unit == "EX" || unit == "PX" {
		if v > math.MaxInt64-now {
			return 0, invalid
		}
		v += now
	}
	return v, ""
}

func cmdSet(s *Server, c *client, args [][]byte, r *reply) {
	op, get, msg := parseSet(args, s.coord.Now())
	if msg != "" {
		r.err(msg)
		return
	}
	res, err := s.writeIn(r, args[1], op)
	switch {
	case err != nil:
		fail(r, err)
	case get && res.HadOld:
		r.bulk(res.Old)
	case get, !res.Written:
		r.null()
	default:
		r.ok()
	}
}

func cmdMSet(s *Server, c *client, args [][]byte, r *reply) {
	if len(args)%2 != 1 {
		r.err(wrongArity("mset"))
		return
	}
	n := len(args) / 2
	errs := make([]error, n)
	dots := make([]replica.Dot, n)
	s.each(n, func(i int) {
		var res coord.Result
		res, errs[i] = s.coord.WriteIn(r.ctx, r.pl, args[1+2*i], coord.Op{Kind: coord.Put, Value: args[2+2*i]})
		dots[i] = res.Dot
	})
	for _, err := range errs {
		if err != nil {
			fail(r, err)
			return
		}
	}
	r.lastKey, r.lastDot = args[2*n-1], dots[n-1] // WAIT checks the last key
	r.ok()
}

// cmdDel serves DEL and UNLINK: a tombstone for each key that exists.
func cmdDel(s *Server, c *client, args [][]byte, r *reply) {
	keys := args[1:]
	deleted := make([]bool, len(keys))
	errs := make([]error, len(keys))
	dots := make([]replica.Dot, len(keys))
	s.each(len(keys), func(i int) {
		res, err := s.coord.WriteIn(r.ctx, r.pl, keys[i], coord.Op{Kind: coord.Delete})
		deleted[i], errs[i], dots[i] = res.Written, err, res.Dot
	})
	if last := len(keys) - 1; deleted[last] {
		r.lastKey, r.lastDot = keys[last], dots[last] // WAIT checks the last key
	}
	r.countOrFail(deleted, errs)
}

func cmdExists(s *Server, c *client, args [][]byte, r *reply) {
	keys := args[1:]
	found := make([]bool, len(keys))
	errs := make([]error, len(keys))
	s.each(len(keys), func(i int) {
		_, found[i], errs[i] = s.containerKind(r, keys[i])
	})
	r.countOrFail(found, errs)
}

// countOrFail replies with the number of true flags, or the first error.
func (r *reply) countOrFail(flags []bool, errs []error) {
	var n int64
	for i, f := range flags {
		if errs[i] != nil {
			fail(r, errs[i])
			return
		}
		if f {
			n++
		}
	}
	r.int(n)
}

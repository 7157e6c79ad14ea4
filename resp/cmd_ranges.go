package resp

import (
	"bytes"
	"strconv"

	"github.com/dynakv/dynakv/coord"
)

// cmdSetRange serves SETRANGE key offset value: it overwrites part of the
// string, padding with zero bytes. Like APPEND it decides on the current
// value, at the key's first healthy primary.
func cmdSetRange(s *Server, c *client, args [][]byte, r *reply) {
	offset, err := strconv.ParseInt(string(args[2]), 10, 64)
	switch {
	case err != nil:
		r.err(errNotInteger)
		return
	case offset < 0:
		r.err("ERR offset is out of range")
		return
	case len(args[3]) > 0 && offset > s.opts.MaxBulk-int64(len(args[3])):
		r.err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
		return
	}
	if res, ok := s.write(r, args[1], coord.Op{Kind: coord.SetRange, Delta: offset, Value: args[3]}); ok {
		r.int(res.Int)
	}
}

// cmdGetRange serves GETRANGE and SUBSTR key start end, with Redis's
// clamping of negative and out-of-range indexes.
func cmdGetRange(s *Server, c *client, args [][]byte, r *reply) {
	start, err1 := strconv.ParseInt(string(args[2]), 10, 64)
	end, err2 := strconv.ParseInt(string(args[3]), 10, 64)
	if err1 != nil || err2 != nil {
		r.err(errNotInteger)
		return
	}
	v, _, err := s.get(r, args[1])
	if err != nil {
		fail(r, err)
		return
	}
	r.bulk(substr(v, start, end))
}

// substr is v[start..end], both inclusive, counted from the end when
// negative, as GETRANGE has it.
func substr(v []byte, start, end int64) []byte {
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		return nil
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	end = min(end, n-1)
	if n == 0 || start > end {
		return nil
	}
	return v[start : end+1]
}

// lcsOptions are LCS's flags.
type lcsOptions struct {
	wantLen, idx, withMatchLen bool
	minMatchLen                int64
}

// cmdLCS serves LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]:
// the longest common subsequence of two strings, its length, or the
// ranges that match, as Redis computes them.
func cmdLCS(s *Server, c *client, args [][]byte, r *reply) {
	var o lcsOptions
	for i := 3; i < len(args); i++ {
		switch opt := string(bytes.ToUpper(args[i])); {
		case opt == "LEN":
			o.wantLen = true
		case opt == "IDX":
			o.idx = true
		case opt == "WITHMATCHLEN":
			o.withMatchLen = true
		case opt == "MINMATCHLEN" && i+1 < len(args):
			n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
			if err != nil {
				r.err(errNotInteger)
				return
			}
			o.minMatchLen = max(n, 0)
			i++
		default:
			r.err(errSyntax)
			return
		}
	}
	if o.wantLen && o.idx {
		r.err("ERR If you want both the length and indexes, please just use IDX.")
		return
	}
	var vals [2][]byte
	var errs [2]error
	s.each(2, func(i int) { vals[i], _, errs[i] = s.get(r, args[1+i]) })
	for _, err := range errs {
		if err != nil {
			fail(r, err)
			return
		}
	}
	a, b := vals[0], vals[1]
	if (int64(len(a))+1)*(int64(len(b))+1)*4 > s.opts.MaxBulk {
		r.err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
		return
	}
	lcs, matches := longestCommon(a, b, o)
	switch {
	case o.wantLen:
		r.int(int64(len(lcs)))
	case o.idx:
		r.mapLen(2)
		r.bulkString("matches")
		r.array(len(matches))
		for _, m := range matches {
			r.array(2 + int(b2i(o.withMatchLen)))
			r.array(2)
			r.int(m[0])
			r.int(m[1])
			r.array(2)
			r.int(m[2])
			r.int(m[3])
			if o.withMatchLen {
				r.int(m[1] - m[0] + 1)
			}
		}
		r.bulkString("len")
		r.int(int64(len(lcs)))
	default:
		r.bulk(lcs)
	}
}

// longestCommon returns the longest common subsequence of a and b and, for
// IDX, its matching ranges [a start, a end, b start, b end] from the end
// of the strings back, those shorter than MINMATCHLEN left out: the
// dynamic programme and the walk back that Redis's LCS makes, so that the
// replies agree.
func longestCommon(a, b []byte, o lcsOptions) ([]byte, [][4]int64) {
	w := len(a) + 1
	dp := make([]uint32, w*(len(b)+1))
	at := func(i, j int) uint32 { return dp[i+j*w] }
	for j := 1; j <= len(b); j++ {
		for i := 1; i <= len(a); i++ {
			if a[i-1] == b[j-1] {
				dp[i+j*w] = at(i-1, j-1) + 1
			} else {
				dp[i+j*w] = max(at(i-1, j), at(i, j-1))
			}
		}
	}
	n := at(len(a), len(b))
	out := make([]byte, n)
	var matches [][4]int64
	open := false
	var as, ae, bs, be int
	for i, j, k := len(a), len(b), int(n); i > 0 && j > 0; {
		emit := false
		if a[i-1] == b[j-1] {
			out[k-1] = a[i-1]
			switch {
			case !open:
				open, as, ae, bs, be = true, i-1, i-1, j-1, j-1
			case as == i && bs == j:
				as, bs = as-1, bs-1
			default:
				emit = true
			}
			if as == 0 || bs == 0 {
				emit = true
			}
			i, j, k = i-1, j-1, k-1
		} else {
			if at(i-1, j) > at(i, j-1) {
				i--
			} else {
				j--
			}
			emit = open
		}
		if emit && open {
			if o.idx && int64(ae-as+1) >= o.minMatchLen {
				matches = append(matches, [4]int64{int64(as), int64(ae), int64(bs), int64(be)})
			}
			open = false
		}
	}
	return out, matches
}

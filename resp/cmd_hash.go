package resp

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// The hash commands. A field is an element object of its own (see
// container.go), so HSET of one field writes that field alone, and
// concurrent writes of one field keep siblings that read as the latest;
// HINCRBY's fields are convergent counters, like INCR's keys.

// fieldPairs splits HSET's field value pairs.
func fieldPairs(args [][]byte) (fields, vals [][]byte) {
	for i := 0; i+1 < len(args); i += 2 {
		fields, vals = append(fields, args[i]), append(vals, args[i+1])
	}
	return fields, vals
}

func cmdHSet(s *Server, c *client, args [][]byte, r *reply) {
	if len(args)%2 != 0 {
		r.err(wrongArity(strings.ToLower(string(args[0]))))
		return
	}
	ran, exists := s.creating(c, args, args[1], replica.KindHash, r)
	if ran {
		return
	}
	fields, vals := fieldPairs(args[2:])
	n, err := s.addElements(r, args[1], replica.KindHash, fields, vals, coord.Always, exists)
	switch {
	case err != nil:
		fail(r, err)
	case strings.EqualFold(string(args[0]), "hmset"):
		r.ok()
	default:
		r.int(n)
	}
}

func cmdHSetNX(s *Server, c *client, args [][]byte, r *reply) {
	ran, exists := s.creating(c, args, args[1], replica.KindHash, r)
	if ran {
		return
	}
	n, err := s.addElements(r, args[1], replica.KindHash, args[2:3], args[3:4], coord.IfAbsent, exists)
	if err != nil {
		fail(r, err)
		return
	}
	r.int(n)
}

func cmdHGet(s *Server, c *client, args [][]byte, r *reply) {
	v, ok, err := s.element(r, args[1], replica.KindHash, args[2])
	switch {
	case err != nil:
		fail(r, err)
	case ok:
		r.bulk(v.Bytes)
	default:
		r.null()
	}
}

func cmdHMGet(s *Server, c *client, args [][]byte, r *reply) {
	fields := args[2:]
	vals := make([]replica.Value, len(fields))
	found := make([]bool, len(fields))
	errs := make([]error, len(fields))
	s.each(len(fields), func(i int) {
		vals[i], found[i], errs[i] = s.element(r, args[1], replica.KindHash, fields[i])
	})
	for _, err := range errs {
		if err != nil {
			fail(r, err)
			return
		}
	}
	r.array(len(fields))
	for i := range fields {
		if found[i] {
			r.bulk(vals[i].Bytes)
		} else {
			r.null()
		}
	}
}

func cmdHExists(s *Server, c *client, args [][]byte, r *reply) {
	_, ok, err := s.element(r, args[1], replica.KindHash, args[2])
	if err != nil {
		fail(r, err)
		return
	}
	r.int(b2i(ok))
}

func cmdHStrlen(s *Server, c *client, args [][]byte, r *reply) {
	v, _, err := s.element(r, args[1], replica.KindHash, args[2])
	if err != nil {
		fail(r, err)
		return
	}
	r.int(int64(len(v.Bytes)))
}

func cmdHDel(s *Server, c *client, args [][]byte, r *reply) {
	n, err := s.removeElements(r, args[1], replica.KindHash, args[2:])
	if err != nil {
		fail(r, err)
		return
	}
	r.int(n)
}

// cmdHLen serves HLEN and SCARD.
func cmdHLen(s *Server, c *client, args [][]byte, r *reply) {
	typ := replica.KindHash
	if strings.EqualFold(string(args[0]), "scard") {
		typ = replica.KindSet
	}
	n, err := s.count(r, args[1], typ)
	if err != nil {
		fail(r, err)
		return
	}
	r.int(n)
}

// cmdHGetAll serves HGETALL, HKEYS and HVALS: one range read.
func cmdHGetAll(s *Server, c *client, args [][]byte, r *reply) {
	els, err := s.elements(r, args[1], replica.KindHash)
	if err != nil {
		fail(r, err)
		return
	}
	switch strings.ToLower(string(args[0])) {
	case "hkeys":
		r.array(len(els))
		for _, e := range els {
			r.bulk(e.id)
		}
	case "hvals":
		r.array(len(els))
		for _, e := range els {
			r.bulk(e.value)
		}
	default:
		r.mapLen(len(els))
		for _, e := range els {
			r.bulk(e.id)
			r.bulk(e.value)
		}
	}
}

// errRan is hashFor's answer when it ran the command itself.
var errRan = errors.New("resp: the command ran as a transaction")

// hashFor makes args[1] a hash for HINCRBY and HINCRBYFLOAT: created
// with the field as one write at the leader (errRan: answered), found
// here, or made one by a header write inside a transaction.
func (s *Server) hashFor(c *client, args [][]byte, r *reply) error {
	ran, exists := s.creating(c, args, args[1], replica.KindHash, r)
	switch {
	case ran:
		return errRan
	case exists:
		return nil
	}
	return s.coord.Container(r.ctx, r.pl, args[1], replica.KindHash)
}

func cmdHIncrBy(s *Server, c *client, args [][]byte, r *reply) {
	delta, ok := coord.ParseInteger(args[3])
	if !ok {
		r.err(errNotInteger)
		return
	}
	if err := s.hashFor(c, args, r); err != nil {
		if !errors.Is(err, errRan) {
			fail(r, err)
		}
		return
	}
	res, err := s.writeIn(r, replica.ElementName(args[1], replica.ElementField, replica.ElementID(args[2])), coord.Op{Kind: coord.Incr, Delta: delta})
	switch {
	case errors.Is(err, coord.ErrNotInteger):
		r.err("ERR hash value is not an integer")
	case err != nil:
		fail(r, err)
	default:
		r.int(res.Int)
	}
}

func cmdHIncrByFloat(s *Server, c *client, args [][]byte, r *reply) {
	incr, ok := coord.ParseLongDouble(args[3])
	if !ok {
		r.err("ERR value is not a valid float")
		return
	}
	if incr.IsInf() {
		r.err("ERR value is NaN or Infinity")
		return
	}
	if err := s.hashFor(c, args, r); err != nil {
		if !errors.Is(err, errRan) {
			fail(r, err)
		}
		return
	}
	res, err := s.writeIn(r, replica.ElementName(args[1], replica.ElementField, replica.ElementID(args[2])), coord.Op{Kind: coord.IncrFloat, Value: args[3]})
	switch {
	case errors.Is(err, coord.ErrNotFloat):
		r.err("ERR hash value is not a float")
	case err != nil:
		fail(r, err)
	default:
		r.bulk(res.New)
	}
}

// randomElements reads the elements HRANDFIELD, SRANDMEMBER or SPOP
// picks among: for count >= 0, about count of them from a random place
// (sample), for count < 0, where picks may repeat, all of them.
func (s *Server) randomElements(r *reply, key []byte, typ replica.Kind, count int64) ([]elem, error) {
	if count < 0 {
		return s.elements(r, key, typ)
	}
	return s.sample(r, key, typ, int(min(count, math.MaxInt32)))
}

// randomPicks reads the elements HRANDFIELD or SRANDMEMBER answers with.
// It writes the reply itself on an error, for an empty container and
// without a count (one element); otherwise it returns the elements and
// the indexes picked among them for the caller to write.
func (s *Server) randomPicks(r *reply, key []byte, typ replica.Kind, count int64, hasCount bool) ([]elem, []int) {
	els, err := s.randomElements(r, key, typ, count)
	switch {
	case err != nil:
		fail(r, err)
	case !hasCount && len(els) == 0:
		r.null()
	case !hasCount:
		r.bulk(els[rand.IntN(len(els))].id)
	case len(els) == 0:
		r.array(0)
	default:
		return els, pickRandom(len(els), count)
	}
	return nil, nil
}

// maxRandomReply bounds the elements a negative count (picks that may
// repeat) asks for.
const maxRandomReply = 1 << 24

// optionalCount parses the count argument of SRANDMEMBER and SPOP (1 when
// absent), answering msg when it is not an integer or, with positive, is
// negative.
func optionalCount(args [][]byte, r *reply, positive bool, msg string) (count int64, has, ok bool) {
	if len(args) > 3 {
		r.err(errSyntax)
		return 0, false, false
	}
	if len(args) < 3 {
		return 1, false, true
	}
	n, ok := coord.ParseInteger(args[2])
	switch {
	case !ok || (positive && n < 0):
		r.err(msg)
		return 0, false, false
	case n == math.MinInt64:
		r.err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		return 0, false, false
	case n < -maxRandomReply:
		r.err("ERR value is out of range") // Redis would try to answer all of them
		return 0, false, false
	}
	return n, true, true
}

// pickRandom chooses count indexes of n as Redis's HRANDFIELD and
// SRANDMEMBER do: count >= 0 distinct ones (at most n), count < 0 -count
// with repeats.
func pickRandom(n int, count int64) []int {
	if count < 0 {
		out := make([]int, -count)
		for i := range out {
			out[i] = rand.IntN(n)
		}
		return out
	}
	perm := rand.Perm(n)
	return perm[:min(int64(n), count)]
}

func cmdHRandField(s *Server, c *client, args [][]byte, r *reply) {
	withValues := len(args) == 4 && strings.EqualFold(string(args[3]), "withvalues")
	if len(args) > 4 || (len(args) == 4 && !withValues) {
		r.err(errSyntax)
		return
	}
	count, hasCount, ok := optionalCount(args[:min(len(args), 3)], r, false, errNotInteger)
	if !ok {
		return
	}
	if withValues && !r.resp3 && (count > math.MaxInt64/2 || count < -math.MaxInt64/2) {
		r.err("ERR value is out of range") // its reply would count 2*count bulks
		return
	}
	els, picks := s.randomPicks(r, args[1], replica.KindHash, count, hasCount)
	if picks == nil {
		return
	}
	if withValues && r.resp3 {
		r.array(len(picks))
		for _, i := range picks {
			r.array(2)
			r.bulk(els[i].id)
			r.bulk(els[i].value)
		}
		return
	}
	if withValues {
		r.array(2 * len(picks))
	} else {
		r.array(len(picks))
	}
	for _, i := range picks {
		r.bulk(els[i].id)
		if withValues {
			r.bulk(els[i].value)
		}
	}
}

// scanElements reads about count elements of key's container from the
// cursor on: a cursor is a place in the container's hash order
// (replica.IDHash), so a scan reads only what it returns, and elements
// added or removed meanwhile do not shift it. It answers the next cursor,
// 0 at the end.
func (s *Server) scanElements(r *reply, key []byte, typ replica.Kind, cursor uint64, count int) ([]elem, uint64, error) {
	h, err := s.readHeader(r.ctx, r.pl, key, typ)
	if err != nil || h.gone {
		return nil, 0, err
	}
	// Redis answers a small hash (listpack) or a set of integers (intset)
	// whole, whatever the cursor and COUNT; so does this.
	all, _, more, err := s.elementsFrom(r, key, typ, h, nil, nil, smallSet+1)
	if err != nil {
		return nil, 0, err
	}
	if !more && compact(typ, all) {
		return all, 0, nil
	}
	var after []byte
	if cursor > 0 {
		// Past every id of hash cursor-1 (a member of that hash that sorts
		// past eight 0xff bytes would come again: SCAN may repeat).
		after = append(binary.BigEndian.AppendUint64(nil, cursor-1), "\xff\xff\xff\xff\xff\xff\xff\xff"...)
	}
	els, _, more, err := s.elementsFrom(r, key, typ, h, after, nil, count)
	if err != nil {
		return nil, 0, err
	}
	if len(els) > count {
		// Stop at count, but never between two elements of one hash: the
		// cursor could not tell them apart.
		end := count
		for end < len(els) && els[end].hash == els[count-1].hash {
			end++
		}
		els, more = els[:end], more || end < len(els)
	}
	if !more || len(els) == 0 || els[len(els)-1].hash == math.MaxUint64 {
		return els, 0, nil
	}
	return els, els[len(els)-1].hash + 1, nil
}

// Redis's compact encodings' limits (hash-max-listpack-entries and
// -value, set-max-intset-entries).
const (
	smallHash      = 128
	smallHashValue = 64
	smallSet       = 512
)

// compact reports whether Redis would keep els in a compact encoding,
// which its scans answer whole.
func compact(typ replica.Kind, els []elem) bool {
	if typ == replica.KindSet {
		if len(els) > smallSet {
			return false
		}
		for _, e := range els {
			if _, ok := coord.ParseInteger(e.id); !ok {
				return false
			}
		}
		return true
	}
	if len(els) > smallHash {
		return false
	}
	for _, e := range els {
		if len(e.id) > smallHashValue || len(e.value) > smallHashValue {
			return false
		}
	}
	return true
}

// parseCursor parses a scan cursor as Redis's strtoul does: a decimal
// number, a leading '-' negating it modulo 2^64.
func parseCursor(b []byte) (uint64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// cmdHScan serves HSCAN and SSCAN.
func cmdHScan(s *Server, c *client, args [][]byte, r *reply) {
	cursor, ok := parseCursor(args[2])
	if !ok {
		r.err("ERR invalid cursor")
		return
	}
	typ := replica.KindHash
	if strings.EqualFold(string(args[0]), "sscan") {
		typ = replica.KindSet
	}
	var pattern []byte
	count, noValues := 10, false
	for i := 3; i < len(args); i++ {
		opt := strings.ToLower(string(args[i]))
		switch {
		case opt == "novalues" && typ == replica.KindHash:
			noValues = true
			continue
		case i+1 == len(args):
			r.err(errSyntax)
			return
		case opt == "match":
			pattern = args[i+1]
		case opt == "count":
			n, err := strconv.Atoi(string(args[i+1]))
			if err != nil {
				r.err(errNotInteger)
				return
			}
			if n < 1 {
				r.err(errSyntax)
				return
			}
			count = n
		default:
			r.err(errSyntax)
			return
		}
		i++
	}
	els, next, err := s.scanElements(r, args[1], typ, cursor, count)
	if err != nil {
		fail(r, err)
		return
	}
	var out [][]byte
	for _, e := range els {
		if pattern != nil && !globMatch(pattern, e.id, false) {
			continue
		}
		out = append(out, e.id)
		if typ == replica.KindHash && !noValues {
			out = append(out, e.value)
		}
	}
	r.array(2)
	r.bulkString(strconv.FormatUint(next, 10))
	r.array(len(out))
	for _, b := range out {
		r.bulk(b)
	}
}

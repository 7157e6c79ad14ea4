package resp

import (
	"slices"
	"strconv"
	"strings"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// The set commands. A member is an element object with an empty value
// (see container.go): SADD of one member writes that member alone, and a
// member added on one side of a partition survives a DEL of the set on
// the other (add-wins).

func cmdSAdd(s *Server, c *client, args [][]byte, r *reply) {
	ran, exists := s.creating(c, args, args[1], replica.KindSet, r)
	if ran {
		return
	}
	n, err := s.addElements(r, args[1], replica.KindSet, args[2:], nil, coord.Always, exists)
	if err != nil {
		fail(r, err)
		return
	}
	r.int(n)
}

func cmdSRem(s *Server, c *client, args [][]byte, r *reply) {
	n, err := s.removeElements(r, args[1], replica.KindSet, args[2:])
	if err != nil {
		fail(r, err)
		return
	}
	r.int(n)
}

func cmdSIsMember(s *Server, c *client, args [][]byte, r *reply) {
	_, ok, err := s.element(r, args[1], replica.KindSet, args[2])
	if err != nil {
		fail(r, err)
		return
	}
	r.int(b2i(ok))
}

func cmdSMIsMember(s *Server, c *client, args [][]byte, r *reply) {
	members := args[2:]
	found := make([]bool, len(members))
	errs := make([]error, len(members))
	s.each(len(members), func(i int) {
		_, found[i], errs[i] = s.element(r, args[1], replica.KindSet, members[i])
	})
	for _, err := range errs {
		if err != nil {
			fail(r, err)
			return
		}
	}
	r.array(len(members))
	for _, f := range found {
		r.int(b2i(f))
	}
}

// members reads the live members of the set key.
func (s *Server) members(r *reply, key []byte) ([][]byte, error) {
	els, err := s.elements(r, key, replica.KindSet)
	out := make([][]byte, len(els))
	for i, e := range els {
		out[i] = e.id
	}
	return out, err
}

func cmdSMembers(s *Server, c *client, args [][]byte, r *reply) {
	ms, err := s.members(r, args[1])
	if err != nil {
		fail(r, err)
		return
	}
	r.memberSet(ms)
}

// memberSet writes members as a set reply (an array in RESP2).
func (r *reply) memberSet(ms [][]byte) {
	r.setLen(len(ms))
	for _, m := range ms {
		r.bulk(m)
	}
}

func cmdSRandMember(s *Server, c *client, args [][]byte, r *reply) {
	count, hasCount, ok := optionalCount(args, r, false, errNotInteger)
	if !ok {
		return
	}
	els, picks := s.randomPicks(r, args[1], replica.KindSet, count, hasCount)
	if picks == nil {
		return
	}
	r.array(len(picks))
	for _, i := range picks {
		r.bulk(els[i].id)
	}
}

// cmdSPop removes random members at the key's leader, where pops of one
// slot take turns; each member is removed with its observed clock, and
// only members this pop removed are returned.
func cmdSPop(s *Server, c *client, args [][]byte, r *reply) {
	count, hasCount, ok := optionalCount(args, r, true, "ERR value is out of range, must be positive")
	if !ok {
		return
	}
	if s.atLeader(c, args, args[1:2], r) {
		return
	}
	els, err := s.randomElements(r, args[1], replica.KindSet, count)
	if err != nil {
		fail(r, err)
		return
	}
	var picked [][]byte
	for _, i := range pickRandom(len(els), count) {
		picked = append(picked, els[i].id)
	}
	var popped [][]byte
	if len(picked) > 0 {
		removed, err := s.removeEach(r, args[1], replica.KindSet, picked)
		if err != nil {
			fail(r, err)
			return
		}
		for i, ok := range removed {
			if ok {
				popped = append(popped, picked[i])
			}
		}
	}
	switch {
	case hasCount:
		r.memberSet(popped)
	case len(popped) == 0:
		r.null()
	default:
		r.bulk(popped[0])
	}
}

func cmdSMove(s *Server, c *client, args [][]byte, r *reply) {
	if s.atLeader(c, args, args[1:3], r) {
		return
	}
	src, dst, member := args[1], args[2], args[3]
	// As Redis: a missing source answers 0 before any type is checked.
	switch kind, ok, err := s.containerKind(r, src); {
	case err != nil:
		fail(r, err)
		return
	case !ok:
		r.int(0)
		return
	case kind != replica.KindSet:
		fail(r, coord.ErrWrongType)
		return
	}
	if _, err := s.readHeader(r.ctx, nil, dst, replica.KindSet); err != nil {
		fail(r, err)
		return
	}
	if string(src) == string(dst) {
		_, ok, err := s.element(r, src, replica.KindSet, member)
		if err != nil {
			fail(r, err)
			return
		}
		r.int(b2i(ok))
		return
	}
	removed, err := s.removeEach(r, src, replica.KindSet, [][]byte{member})
	if err != nil {
		fail(r, err)
		return
	}
	if !removed[0] {
		r.int(0)
		return
	}
	// As Redis, a member the destination holds already leaves it as it
	// is (a WATCH of it is not disturbed).
	if _, there, err := s.element(r, dst, replica.KindSet, member); err != nil || there {
		if err != nil {
			fail(r, err)
		} else {
			r.int(1)
		}
		return
	}
	if _, err := s.addElements(r, dst, replica.KindSet, [][]byte{member}, nil, coord.Always, false); err != nil {
		fail(r, err)
		return
	}
	r.int(1)
}

// setAlgebra computes SINTER, SUNION or SDIFF of keys, reading them all.
func (s *Server) setAlgebra(r *reply, op string, keys [][]byte) ([][]byte, error) {
	sets := make([][][]byte, len(keys))
	errs := make([]error, len(keys))
	s.each(len(keys), func(i int) { sets[i], errs[i] = s.members(r, keys[i]) })
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	count := map[string]int{}
	for i, ms := range sets {
		for _, m := range ms {
			switch {
			case op == "inter" && count[string(m)] == i:
				count[string(m)]++
			case op == "union":
				count[string(m)] = 1
			case op == "diff" && i == 0:
				count[string(m)] = 1
			case op == "diff":
				delete(count, string(m))
			}
		}
	}
	var out [][]byte
	for m, n := range count {
		if op != "inter" || n == len(keys) {
			out = append(out, []byte(m))
		}
	}
	slices.SortFunc(out, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
	return out, nil
}

// setOp is the operation a set algebra command names.
func setOp(name []byte) string {
	n := strings.ToLower(string(name))
	n = strings.TrimSuffix(strings.TrimPrefix(n, "s"), "store")
	return n
}

// cmdSInter serves SINTER, SUNION and SDIFF.
func cmdSInter(s *Server, c *client, args [][]byte, r *reply) {
	out, err := s.setAlgebra(r, setOp(args[0]), args[1:])
	if err != nil {
		fail(r, err)
		return
	}
	r.memberSet(out)
}

// cmdSInterStore serves SINTERSTORE, SUNIONSTORE and SDIFFSTORE at the
// slot's leader: dst is replaced by the result (deleted when it is empty).
func cmdSInterStore(s *Server, c *client, args [][]byte, r *reply) {
	if s.atLeader(c, args, args[1:], r) {
		return
	}
	out, err := s.setAlgebra(r, setOp(args[0]), args[2:])
	if err != nil {
		fail(r, err)
		return
	}
	if _, err := s.writeIn(r, args[1], coord.Op{Kind: coord.Delete}); err != nil {
		fail(r, err)
		return
	}
	if len(out) > 0 {
		if _, err := s.addElements(r, args[1], replica.KindSet, out, nil, coord.Always, false); err != nil {
			fail(r, err)
			return
		}
	}
	r.int(int64(len(out)))
}

func cmdSInterCard(s *Server, c *client, args [][]byte, r *reply) {
	n, err := strconv.Atoi(string(args[1]))
	switch {
	case err != nil || n <= 0:
		r.err("ERR numkeys should be greater than 0")
		return
	case n > len(args)-2:
		r.err("ERR Number of keys can't be greater than number of args")
		return
	}
	limit := int64(0)
	rest := args[2+n:]
	for i := 0; i < len(rest); i += 2 {
		if !strings.EqualFold(string(rest[i]), "limit") || i+1 == len(rest) {
			r.err(errSyntax)
			return
		}
		l, ok := coord.ParseInteger(rest[i+1])
		if !ok || l < 0 {
			r.err("ERR LIMIT can't be negative")
			return
		}
		limit = l
	}
	keys := args[2 : 2+n]
	if reservedKey(keys) {
		r.err(errReservedKey)
		return
	}
	out, err := s.setAlgebra(r, "inter", keys)
	if err != nil {
		fail(r, err)
		return
	}
	card := int64(len(out))
	if limit > 0 {
		card = min(card, limit)
	}
	r.int(card)
}

// containerDefs are the hash and set commands of the command table.
func containerDefs() []def {
	const (
		groupHash = "hash"
		groupSet  = "set"
		w, wf     = flagWrite, flagWrite | flagFast
		ro, rof   = flagReadonly, flagReadonly | flagFast
	)
	return []def{
		{name: "hset", arity: -4, flags: wf, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Creates or modifies the value of fields in a hash.", run: cmdHSet},
		{name: "hmset", arity: -4, flags: wf, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Sets the values of multiple fields.", run: cmdHSet},
		{name: "hsetnx", arity: 4, flags: wf, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Sets the value of a field in a hash only when the field doesn't exist.", run: cmdHSetNX},
		{name: "hget", arity: 3, flags: rof, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Returns the value of a field in a hash.", run: cmdHGet},
		{name: "hmget", arity: -3, flags: rof, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Returns the values of all fields in a hash.", run: cmdHMGet},
		{name: "hgetall", arity: 2, flags: ro, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Returns all fields and values in a hash.", run: cmdHGetAll},
		{name: "hkeys", arity: 2, flags: ro, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Returns all fields in a hash.", run: cmdHGetAll},
		{name: "hvals", arity: 2, flags: ro, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Returns all values in a hash.", run: cmdHGetAll},
		{name: "hlen", arity: 2, flags: rof, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Returns the number of fields in a hash.", run: cmdHLen},
		{name: "hdel", arity: -3, flags: wf, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Deletes one or more fields and their values from a hash.", run: cmdHDel},
		{name: "hexists", arity: 3, flags: rof, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Determines whether a field exists in a hash.", run: cmdHExists},
		{name: "hstrlen", arity: 3, flags: rof, first: 1, last: 1, step: 1, group: groupHash, since: "3.2.0", summary: "Returns the length of the value of a field.", run: cmdHStrlen},
		{name: "hincrby", arity: 4, flags: wf, first: 1, last: 1, step: 1, group: groupHash, since: "2.0.0", summary: "Increments a field's integer value: a convergent counter per field.", run: cmdHIncrBy},
		{name: "hincrbyfloat", arity: 4, flags: wf, first: 1, last: 1, step: 1, group: groupHash, since: "2.6.0", summary: "Increments a field's floating point value.", run: cmdHIncrByFloat},
		{name: "hrandfield", arity: -2, flags: ro, first: 1, last: 1, step: 1, group: groupHash, since: "6.2.0", summary: "Returns one or more random fields from a hash.", run: cmdHRandField},
		{name: "hscan", arity: -3, flags: ro, first: 1, last: 1, step: 1, group: groupHash, since: "2.8.0", summary: "Iterates over fields and values of a hash.", run: cmdHScan},

		{name: "sadd", arity: -3, flags: wf, first: 1, last: 1, step: 1, group: groupSet, since: "1.0.0", summary: "Adds one or more members to a set.", run: cmdSAdd},
		{name: "srem", arity: -3, flags: wf, first: 1, last: 1, step: 1, group: groupSet, since: "1.0.0", summary: "Removes one or more members from a set.", run: cmdSRem},
		{name: "smembers", arity: 2, flags: ro, first: 1, last: 1, step: 1, group: groupSet, since: "1.0.0", summary: "Returns all members of a set.", run: cmdSMembers},
		{name: "sismember", arity: 3, flags: rof, first: 1, last: 1, step: 1, group: groupSet, since: "1.0.0", summary: "Determines whether a member belongs to a set.", run: cmdSIsMember},
		{name: "smismember", arity: -3, flags: rof, first: 1, last: 1, step: 1, group: groupSet, since: "6.2.0", summary: "Determines whether multiple members belong to a set.", run: cmdSMIsMember},
		{name: "scard", arity: 2, flags: rof, first: 1, last: 1, step: 1, group: groupSet, since: "1.0.0", summary: "Returns the number of members in a set.", run: cmdHLen},
		{name: "spop", arity: -2, flags: wf, first: 1, last: 1, step: 1, group: groupSet, since: "1.0.0", summary: "Returns and removes random members from a set, at the key's leader.", run: cmdSPop},
		{name: "srandmember", arity: -2, flags: ro, first: 1, last: 1, step: 1, group: groupSet, since: "1.0.0", summary: "Returns one or more random members from a set.", run: cmdSRandMember},
		{name: "smove", arity: 4, flags: wf, first: 1, last: 2, step: 1, group: groupSet, since: "1.0.0", summary: "Moves a member from one set to another (keys in one slot).", run: cmdSMove},
		{name: "sinter", arity: -2, flags: ro, first: 1, last: -1, step: 1, group: groupSet, since: "1.0.0", summary: "Returns the intersect of multiple sets.", run: cmdSInter},
		{name: "sunion", arity: -2, flags: ro, first: 1, last: -1, step: 1, group: groupSet, since: "1.0.0", summary: "Returns the union of multiple sets.", run: cmdSInter},
		{name: "sdiff", arity: -2, flags: ro, first: 1, last: -1, step: 1, group: groupSet, since: "1.0.0", summary: "Returns the difference of multiple sets.", run: cmdSInter},
		{name: "sintercard", arity: -3, flags: ro, group: groupSet, since: "7.0.0", summary: "Returns the number of members of the intersect of multiple sets.", run: cmdSInterCard},
		{name: "sinterstore", arity: -3, flags: w, first: 1, last: -1, step: 1, group: groupSet, since: "1.0.0", summary: "Stores the intersect of multiple sets in a key (keys in one slot).", run: cmdSInterStore},
		{name: "sunionstore", arity: -3, flags: w, first: 1, last: -1, step: 1, group: groupSet, since: "1.0.0", summary: "Stores the union of multiple sets in a key (keys in one slot).", run: cmdSInterStore},
		{name: "sdiffstore", arity: -3, flags: w, first: 1, last: -1, step: 1, group: groupSet, since: "1.0.0", summary: "Stores the difference of multiple sets in a key (keys in one slot).", run: cmdSInterStore},
		{name: "sscan", arity: -3, flags: ro, first: 1, last: 1, step: 1, group: groupSet, since: "2.0.0", summary: "Iterates over members of a set.", run: cmdHScan},
	}
}

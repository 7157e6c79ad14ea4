package resp

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// A hash or a set is a container: a header (the key's own object, whose
// sibling kind says hash or set and whose removal clock says which
// elements a whole-container removal took) and one object per field or
// member under its element name (replica.ElementName). This file reads
// and writes containers for the hash and set commands.

// elementType is the element-name type byte of a container kind.
func elementType(k replica.Kind) byte {
	if k == replica.KindSet {
		return replica.ElementMember
	}
	return replica.ElementField
}

// typeName is TYPE's answer for a value of kind k.
func typeName(k replica.Kind) string {
	switch k {
	case replica.KindHash:
		return "hash"
	case replica.KindSet:
		return "set"
	}
	return "string"
}

// header is what a container command learned of its key's header.
type header struct {
	// removed is the header's removal clock: element siblings it covers
	// read as deleted.
	removed replica.Clock
	// gone is set when the header says the container expired: every
	// element reads as absent until a write re-creates it.
	gone bool
}

// readHeader reads key's header at R for a command on a container of kind
// typ: coord.ErrWrongType when the key holds a value of another type.
func (s *Server) readHeader(ctx context.Context, pl *coord.Pipelined, key []byte, typ replica.Kind) (header, error) {
	o, err := s.coord.GetIn(ctx, pl, key, 0)
	if err != nil {
		return header{}, err
	}
	return headerOf(o, typ, s.coord.Now())
}

// headerOf judges a header object read for a command on kind typ.
func headerOf(o replica.Object, typ replica.Kind, now int64) (header, error) {
	h := header{removed: o.Removed}
	if v, ok := o.Resolve(now); ok {
		if v.Kind != typ {
			return h, coord.ErrWrongType
		}
		return h, nil
	}
	for _, sib := range o.Siblings {
		if !sib.Tombstone && sib.Kind == typ {
			h.gone = true // expired, and no write re-created it since
		}
	}
	return h, nil
}

// live reads an element object as it stands under h: its value, or false.
func (h header) live(o replica.Object, now int64) (replica.Value, bool) {
	if h.gone {
		return replica.Value{}, false
	}
	return o.Uncovered(h.removed).Resolve(now)
}

// element reads one field or member of key: the header and the element
// are read at once.
func (s *Server) element(r *reply, key []byte, typ replica.Kind, id []byte) (replica.Value, bool, error) {
	name := replica.ElementName(key, elementType(typ), replica.ElementID(id))
	ahead := &coord.Pipelined{Read: s.coord.Prefetch(r.ctx, name)}
	h, err := s.readHeader(r.ctx, r.pl, key, typ)
	if err != nil {
		return replica.Value{}, false, err
	}
	o, err := s.coord.GetIn(r.ctx, ahead, name, 0)
	if err != nil {
		return replica.Value{}, false, err
	}
	v, ok := h.live(o, s.coord.Now())
	return v, ok, nil
}

// elem is one live field or member.
type elem struct {
	id    []byte // the field or member
	hash  uint64 // its place in the container's order (replica.IDHash)
	value []byte // a field's value (a counter's in decimal)
}

// elements reads every live element of key's container, in hash order.
// It reads the elements in chunks (coord.Elements); nothing else holds the
// whole container at once.
func (s *Server) elements(r *reply, key []byte, typ replica.Kind) ([]elem, error) {
	h, err := s.readHeader(r.ctx, r.pl, key, typ)
	if err != nil || h.gone {
		return nil, err
	}
	els, _, _, err := s.elementsFrom(r, key, typ, h, nil, nil, math.MaxInt)
	return els, err
}

// count answers HLEN and SCARD: from the replicas' tallies when a read
// quorum of them agrees, else by reading the elements.
func (s *Server) count(r *reply, key []byte, typ replica.Kind) (int64, error) {
	h, err := s.readHeader(r.ctx, r.pl, key, typ)
	if err != nil || h.gone {
		return 0, err
	}
	t, agreed, err := s.coord.Count(r.ctx, key, elementType(typ))
	if err != nil || agreed {
		return t.Live, err
	}
	els, _, _, err := s.elementsFrom(r, key, typ, h, nil, nil, math.MaxInt)
	return int64(len(els)), err
}

// elementsFrom reads the live elements of key's container under header h
// whose element ids sort after after (nil: from the first) and before
// before (nil: to the end), until it has at least want of them. It
// answers where the read stopped: the id to resume after, and whether
// elements may follow.
func (s *Server) elementsFrom(r *reply, key []byte, typ replica.Kind, h header, after, before []byte, want int) (els []elem, last []byte, more bool, err error) {
	now := s.coord.Now()
	for {
		kos, more, err := s.coord.Elements(r.ctx, key, elementType(typ), after, min(want, coord.ElementChunk))
		if err != nil {
			return nil, nil, false, err
		}
		for _, ko := range kos {
			if before != nil && bytes.Compare(ko.Key, before) >= 0 {
				return els, after, false, nil
			}
			after = ko.Key
			member, hash, ok := replica.MemberOf(ko.Key)
			if !ok {
				continue
			}
			if v, ok := h.live(ko.Object, now); ok {
				if els == nil {
					els = make([]elem, 0, min(want, len(kos)))
				}
				els = append(els, elem{member, hash, v.Bytes})
			}
		}
		if !more || len(kos) == 0 || len(els) >= want {
			return els, after, more, nil
		}
	}
}

// sample reads the live elements SPOP, SRANDMEMBER and HRANDFIELD pick n
// of: all of them when the container fits in one chunk, so that every
// pick is uniform; otherwise at least max(n, 64) from a random place in
// its hash order, wrapping around at the end, at the cost of those
// elements rather than the container (each element's chance then
// follows the gap before its hash: random, not exactly uniform).
func (s *Server) sample(r *reply, key []byte, typ replica.Kind, n int) ([]elem, error) {
	h, err := s.readHeader(r.ctx, r.pl, key, typ)
	if err != nil || h.gone {
		return nil, err
	}
	t, agreed, err := s.coord.Count(r.ctx, key, elementType(typ))
	switch {
	case err != nil || (agreed && t.Live == 0):
		return nil, err
	case !agreed || t.Total <= 2*coord.ElementChunk:
		// Small, tombstones counted: read it all, for uniform picks.
		all, _, more, err := s.elementsFrom(r, key, typ, h, nil, nil, coord.ElementChunk)
		if err != nil || !more {
			return all, err
		}
	}
	want := max(n, 64)
	start := binary.BigEndian.AppendUint64(nil, rand.Uint64())
	els, _, _, err := s.elementsFrom(r, key, typ, h, start, nil, want)
	if err != nil || len(els) >= want {
		return els, err
	}
	wrapped, _, _, err := s.elementsFrom(r, key, typ, h, nil, start, want-len(els))
	return append(els, wrapped...), err
}

// creating runs a command that adds to the container key of type typ as
// a transaction at the key's slot's leader (atLeader) when this node does
// not hold key as such a container yet, outside a transaction: the header
// that makes key a container and its first elements then reach every
// replica as one write, never the header alone. It reports whether it ran
// the command so, and else whether this node holds the container (the
// command then writes its elements alone).
func (s *Server) creating(c *client, args [][]byte, key []byte, typ replica.Kind, r *reply) (ran, exists bool) {
	if s.coord.HasContainer(key, typ) {
		return false, true
	}
	if c.inExec {
		return false, false
	}
	if err := r.pl.Block(); err != nil {
		fail(r, err) // a pipeline runs it again, not in line
		return true, false
	}
	return s.atLeader(c, args, [][]byte{key}, r), false
}

// addElements makes key a container of typ, if it is not, and writes
// each id with its value (vals nil: empty values, a set's members). It
// answers how many ids were new: absent at the coordinating replica, which
// is exact whenever that replica holds the container's latest writes (it
// is one of the key's replicas and has been up). cond IfAbsent writes only
// new ids (HSETNX). With exists the caller found the container here
// already.
func (s *Server) addElements(r *reply, key []byte, typ replica.Kind, ids, vals [][]byte, cond coord.Cond, exists bool) (int64, error) {
	if !exists {
		if err := s.coord.Container(r.ctx, r.pl, key, typ); err != nil {
			return 0, err
		}
	}
	ids, vals = lastOfEach(ids, vals)
	added := make([]bool, len(ids))
	errs := make([]error, len(ids))
	t := elementType(typ)
	s.each(len(ids), func(i int) {
		op := coord.Op{Kind: coord.Put, Cond: cond}
		if vals != nil {
			op.Value = vals[i]
		}
		res, err := s.writeIn(r, replica.ElementName(key, t, replica.ElementID(ids[i])), op)
		added[i], errs[i] = res.Written && !res.HadOld, err
	})
	var n int64
	for i := range ids {
		if errs[i] != nil {
			return n, errs[i]
		}
		if added[i] {
			n++
		}
	}
	return n, nil
}

// lastOfEach drops repeated ids, keeping the value of each one's last
// occurrence (vals may be nil): HSET h a 1 a 2 sets a to 2, as in Redis,
// and writes it once.
func lastOfEach(ids, vals [][]byte) ([][]byte, [][]byte) {
	at := make(map[string]int, len(ids))
	var outIDs, outVals [][]byte
	for i, id := range ids {
		j, seen := at[string(id)]
		if !seen {
			at[string(id)] = len(outIDs)
			outIDs = append(outIDs, id)
			if vals != nil {
				outVals = append(outVals, vals[i])
			}
			continue
		}
		if vals != nil {
			outVals[j] = vals[i]
		}
	}
	return outIDs, outVals
}

// removeElements deletes ids from key's container (a tombstone with each
// element's observed clock as context) and answers how many were there. A
// container left with no live element is deleted, as Redis deletes an
// emptied hash or set.
func (s *Server) removeElements(r *reply, key []byte, typ replica.Kind, ids [][]byte) (int64, error) {
	removed, err := s.removeEach(r, key, typ, ids)
	var n int64
	for _, ok := range removed {
		n += b2i(ok)
	}
	return n, err
}

// removeEach is removeElements answering, for each id, whether it was
// there and is now removed.
func (s *Server) removeEach(r *reply, key []byte, typ replica.Kind, ids [][]byte) ([]bool, error) {
	removed := make([]bool, len(ids))
	h, err := s.readHeader(r.ctx, r.pl, key, typ)
	if err != nil || h.gone {
		return removed, err
	}
	errs := make([]error, len(ids))
	t := elementType(typ)
	s.each(len(ids), func(i int) {
		if i > 0 && slices.ContainsFunc(ids[:i], func(id []byte) bool { return bytes.Equal(id, ids[i]) }) {
			return // HDEL h a a deletes a once
		}
		res, err := s.writeIn(r, replica.ElementName(key, t, replica.ElementID(ids[i])), coord.Op{Kind: coord.Delete})
		removed[i], errs[i] = res.Written, err
	})
	for _, err := range errs {
		if err != nil {
			return removed, err
		}
	}
	if slices.Contains(removed, true) {
		return removed, s.dropIfEmpty(r, key, typ)
	}
	return removed, nil
}

// dropIfEmpty deletes key's header when its container has no live element
// left. The removal clock is the join of the elements read (all deleted
// or covered), so replicas can drop their tombstones and an element added
// concurrently, which the read did not see, survives.
func (s *Server) dropIfEmpty(r *reply, key []byte, typ replica.Kind) error {
	h, err := s.readHeader(r.ctx, nil, key, typ)
	if err != nil {
		return err
	}
	if t, agreed, err := s.coord.Count(r.ctx, key, elementType(typ)); err != nil || (agreed && t.Live > 0) {
		return err // elements are left: nothing to read
	}
	var seen replica.Clock
	now := s.coord.Now()
	var after []byte
	for {
		kos, more, err := s.coord.Elements(r.ctx, key, elementType(typ), after, coord.ElementChunk)
		if err != nil {
			return err
		}
		for _, ko := range kos {
			if _, ok := h.live(ko.Object, now); ok {
				return nil
			}
			seen = seen.Join(ko.Object.Clock)
		}
		if !more || len(kos) == 0 {
			break
		}
		after = kos[len(kos)-1].Key
	}
	if len(seen) == 0 {
		seen = h.removed // nothing to cover: the header's own removal stands
	}
	if len(seen) == 0 {
		return nil
	}
	_, err = s.writeIn(r, key, coord.Op{Kind: coord.Delete, Type: typ, Removed: seen})
	return err
}

// containerKind reads what key holds: its type's kind and whether it
// exists. A container whose header was deleted while an element was added
// concurrently (add-wins) exists by its elements alone.
func (s *Server) containerKind(r *reply, key []byte) (replica.Kind, bool, error) {
	o, err := s.coord.GetIn(r.ctx, r.pl, key, 0)
	if err != nil {
		return 0, false, err
	}
	if v, ok := o.Resolve(s.coord.Now()); ok {
		return v.Kind, true, nil
	}
	if len(o.Removed) == 0 {
		return 0, false, nil
	}
	for _, typ := range []replica.Kind{replica.KindHash, replica.KindSet} {
		h, _ := headerOf(o, typ, s.coord.Now())
		if h.gone {
			continue
		}
		els, _, _, err := s.elementsFrom(r, key, typ, h, nil, nil, 1)
		if err != nil {
			return 0, false, err
		}
		if len(els) > 0 {
			return typ, true, nil
		}
	}
	return 0, false, nil
}

// reservedKey reports whether a client's key would name a container
// element: such keys are refused, so element names never collide with
// keys.
func reservedKey(keys [][]byte) bool {
	for _, k := range keys {
		if bytes.HasPrefix(k, []byte(replica.ElementMark)) {
			return true
		}
	}
	return false
}

// errReservedKey refuses a key that begins with replica.ElementMark.
var errReservedKey = "ERR keys beginning with the bytes " + strings.TrimSpace(quoteBytes(replica.ElementMark)) + " are reserved for container elements"

func quoteBytes(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c < 0x20 || c >= 0x7f {
			b.WriteString(`\x`)
			b.WriteByte("0123456789abcdef"[c>>4])
			b.WriteByte("0123456789abcdef"[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

package replica

import (
	"bytes"
	"encoding/binary"
)

// A container's elements are ordinary objects, each stored, replicated,
// hinted, repaired and reaped like a string, under an element name:
//
//	ElementMark | uvarint len(key) | key | type | element id
//
// An element name sorts right after its container's other elements and
// takes its container key's ring position (Position decodes it), so a
// container lives in one partition, one preference list and one handoff
// range with its header, which is the key's own object. Client keys that
// begin with ElementMark are refused at the client port, so a name is an
// element name exactly when it begins with the mark.
const ElementMark = "\xff\x00E\x00"

// The element types: the byte after the key in an element name.
const (
	ElementField  byte = 'h' // a hash field; the value is the field's
	ElementMember byte = 's' // a set member; the value is empty
)

// ElementName returns the name of element id of the container key, of the
// given element type.
func ElementName(key []byte, typ byte, id []byte) []byte {
	n := AppendElementPrefix(make([]byte, 0, len(ElementMark)+binary.MaxVarintLen32+len(key)+1+len(id)), key, typ)
	return append(n, id...)
}

// AppendElementPrefix appends what every element name of the container
// key and type begins with.
func AppendElementPrefix(dst, key []byte, typ byte) []byte {
	dst = append(dst, ElementMark...)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return append(dst, typ)
}

// IsElement reports whether name is an element name rather than a key.
func IsElement(name []byte) bool {
	return len(name) > len(ElementMark) && name[0] == ElementMark[0] && bytes.HasPrefix(name, []byte(ElementMark))
}

// SplitElement returns the container key, type and element id of an
// element name; ok is false for a key or a malformed name.
func SplitElement(name []byte) (key []byte, typ byte, id []byte, ok bool) {
	if !IsElement(name) {
		return nil, 0, nil, false
	}
	rest := name[len(ElementMark):]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n >= uint64(len(rest)-w) {
		return nil, 0, nil, false
	}
	rest = rest[w:]
	return rest[:n:n], rest[n], rest[n+1:], true
}

// containerKey returns the key whose ring position name takes: the
// container's key for an element name, name itself otherwise.
func containerKey(name []byte) []byte {
	if key, _, _, ok := SplitElement(name); ok {
		return key
	}
	return name
}

// IDLen is the length of the hash that begins a field's or member's
// element id.
const IDLen = 8

// ElementID is the element id of a hash field or a set member: 8 bytes of
// a hash of it, then the field or member itself. Elements are then stored
// in hash order, spread evenly over the id space whatever the names look
// like, so a random position picks a random element (SPOP, SRANDMEMBER,
// HRANDFIELD read a few elements, never the whole container) and a 64-bit
// position is a scan cursor (HSCAN, SSCAN).
func ElementID(member []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, IDLen+len(member)), IDHash(member)), member...)
}

// IDHash is the hash that orders a member's element id: FNV-1a, then a
// finalizer that spreads it over all 64 bits.
func IDHash(member []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range member {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// MemberOf returns the field or member of an element id made by
// ElementID, and its hash.
func MemberOf(id []byte) (member []byte, hash uint64, ok bool) {
	if len(id) < IDLen {
		return nil, 0, false
	}
	return id[IDLen:], binary.BigEndian.Uint64(id), true
}

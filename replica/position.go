package replica

import (
	"crypto/md5"
	"encoding/binary"
	"math/bits"
)

// Ring positions are the one place the arithmetic of the hash space lives:
// a key's position, the partition a position falls in, the range of a
// partition, and the lock stripe of a position. The ring (gossip), the
// store, the Merkle trees and the handoff all place keys with these.

// Slots is the number of Redis Cluster hash slots: a key's slot is
// CRC16(key) mod 16384, of the {tag} part only when the key has one.
const Slots = 16384

// slotBits is log2(Slots): a position's top bits are its slot.
const slotBits = 14

// Position returns key's place on the ring: its Redis Cluster slot in the
// top 14 bits, then the first 50 bits of md5(key) to spread keys within
// the slot. Objects are stored in position order, so a partition (the top
// bits of the position: a run of slots) is one contiguous key range in
// Pebble, and keys sharing a {tag} share a slot and so a partition. An
// element name (ElementName) takes its container key's position.
func Position(key []byte) uint64 {
	key = containerKey(key)
	sum := md5.Sum(key)
	return uint64(Slot(key))<<(64-slotBits) | binary.BigEndian.Uint64(sum[:8])>>slotBits
}

// LegacyPosition is where a key was placed before positions carried the
// slot: the first 8 bytes of md5(key). A data directory of that format is
// converted (store.go), and its keys may still sit on the replicas of
// their legacy positions until the cluster has moved them (the ring's
// Legacy flag).
func LegacyPosition(key []byte) uint64 {
	sum := md5.Sum(key)
	return binary.BigEndian.Uint64(sum[:8])
}

// PositionSlot returns the slot of a position.
func PositionSlot(pos uint64) int { return int(pos >> (64 - slotBits)) }

// SlotRange returns the slots [first, last] of partition p among q (a
// power of two of at most Slots).
func SlotRange(p, q int) (first, last int) {
	per := Slots / q
	return p * per, (p+1)*per - 1
}

// Slot returns key's Redis Cluster hash slot: CRC16 (XMODEM, as Redis
// computes it) of the key, or of the part between the first '{' and the
// next '}' when that part is not empty, mod 16384.
func Slot(key []byte) uint16 {
	for i, c := range key {
		if c != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j > i+1 {
					key = key[i+1 : j]
				}
				return crc16(key) & (Slots - 1)
			}
		}
		break
	}
	return crc16(key) & (Slots - 1)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), table-driven.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^c]
	}
	return crc
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// Partition returns the partition of pos among q partitions; q is a power of
// two, so the partition is the top log2(q) bits of the position.
func Partition(pos uint64, q int) int {
	if q <= 1 {
		return 0
	}
	return int(pos >> (64 - bitsFor(q)))
}

// PartitionStart returns the first ring position of partition p among q.
func PartitionStart(p, q int) uint64 {
	if q <= 1 {
		return 0
	}
	return uint64(p) << (64 - bitsFor(q))
}

// PartitionRange returns the ring positions [from, to) of partition p
// among q; to == 0 means the end of the ring.
func PartitionRange(p, q int) (from, to uint64) {
	from = PartitionStart(p, q)
	if p+1 < q {
		to = PartitionStart(p+1, q)
	}
	return from, to
}

// bitsFor returns log2(q) for a power of two q.
func bitsFor(q int) uint { return uint(bits.TrailingZeros64(uint64(q))) }

// Lock stripes: writes to a key take the lock of its stripe, the top
// StripeBits of its position, so that a stripe is a contiguous range and
// a range scan under its stripe's lock sees no write in progress; the
// Merkle trees are rebuilt stripe by stripe for the same reason.
const (
	StripeBits = 12
	Stripes    = 1 << StripeBits
)

// Stripe returns the lock stripe of pos.
func Stripe(pos uint64) uint64 { return pos >> (64 - StripeBits) }

// StripeRange returns the positions [from, to) of stripe st; to == 0
// means the end of the ring.
func StripeRange(st uint64) (from, to uint64) {
	from = st << (64 - StripeBits)
	if st+1 < Stripes {
		to = (st + 1) << (64 - StripeBits)
	}
	return from, to
}

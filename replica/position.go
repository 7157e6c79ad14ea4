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

// Position returns key's place on the ring: the first 8 bytes of md5(key),
// big-endian. Objects are stored in position order, so a partition (the top
// bits of the position) is one contiguous key range in Pebble.
func Position(key []byte) uint64 {
	sum := md5.Sum(key)
	return binary.BigEndian.Uint64(sum[:8])
}

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

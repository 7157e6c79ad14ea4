package replica

import (
	"crypto/md5"
	"encoding/binary"
)

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
func bitsFor(q int) uint {
	var b uint
	for 1<<b < q {
		b++
	}
	return b
}

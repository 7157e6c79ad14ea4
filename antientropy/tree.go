package antientropy

import (
	"github.com/dynakv/dynakv/replica"
)

// Tree shape. A partition's leaves are contiguous sub-ranges of its ring
// positions; there are about ringLeaves leaves on the whole ring (at least
// minLeafBits per partition), so the trees of all partitions take about
// the same memory whatever Q is.
const (
	ringLeafBits = 18 // about 262 144 leaves on the ring
	minLeafBits  = 4
	fanout       = 16 // children per inner node
	fanoutBits   = 4
)

// Shape is the fixed shape of every partition's tree for a ring of Q
// partitions; two replicas compare trees only of the same shape.
type Shape struct {
	QBits, LeafBits uint
}

// ShapeFor returns the tree shape for q partitions (a power of two).
func ShapeFor(q int) Shape {
	var qb uint
	for 1<<qb < q {
		qb++
	}
	lb := uint(minLeafBits)
	if ringLeafBits > qb+minLeafBits {
		lb = ringLeafBits - qb
	}
	return Shape{QBits: qb, LeafBits: lb}
}

// Leaves is the number of leaves per partition.
func (s Shape) Leaves() int { return 1 << s.LeafBits }

// Locate returns the partition and leaf of a ring position: the leaves of
// all partitions are the ring cut in Q×Leaves equal ranges.
func (s Shape) Locate(pos uint64) (partition, leaf int) {
	v := replica.Partition(pos, 1<<(s.QBits+s.LeafBits))
	return v >> s.LeafBits, v & (1<<s.LeafBits - 1)
}

// LeafRange returns the ring positions [from, to) of a leaf; to == 0 means
// the end of the ring.
func (s Shape) LeafRange(partition, leaf int) (from, to uint64) {
	return replica.PartitionRange(partition<<s.LeafBits|leaf, 1<<(s.QBits+s.LeafBits))
}

// Levels returns the number of levels of a tree: level 0 holds the leaves,
// the last level the root.
func (s Shape) Levels() int {
	n := 1
	for width := s.Leaves(); width > 1; width = (width + fanout - 1) / fanout {
		n++
	}
	return n
}

// HashKey is a key's contribution to its leaf: replica.HashKey, the hash
// of the key and its clock. Replicas holding the same writes for a key
// hold the same clock.
func HashKey(key []byte, clock replica.Clock) uint64 { return replica.HashKey(key, clock) }

// Tree is one partition's Merkle tree: every node holds the XOR of the key
// hashes below it, so adding or removing a key updates one path. It is not
// safe for concurrent use; Trees guards each.
type Tree struct {
	levels [][]uint64 // levels[0] are the leaves; the last level is the root
}

// NewTree returns an empty tree of shape s.
func NewTree(s Shape) *Tree {
	t := &Tree{}
	for width := s.Leaves(); ; width = (width + fanout - 1) / fanout {
		t.levels = append(t.levels, make([]uint64, width))
		if width == 1 {
			break
		}
	}
	return t
}

// Toggle XORs h into leaf and its path: adding a key's hash, or removing
// it (XOR is its own inverse).
func (t *Tree) Toggle(leaf int, h uint64) {
	for l := range t.levels {
		t.levels[l][leaf] ^= h
		leaf >>= fanoutBits
	}
}

// Leaf returns a leaf's hash.
func (t *Tree) Leaf(leaf int) uint64 { return t.levels[0][leaf] }

// Root returns the root hash.
func (t *Tree) Root() uint64 { return t.levels[len(t.levels)-1][0] }

// Node returns the hash of node i at level l.
func (t *Tree) Node(l, i int) uint64 { return t.levels[l][i] }

// Children returns the indexes at level l-1 of node i's children.
func (t *Tree) Children(l, i int) []int {
	var out []int
	for c := i * fanout; c < (i+1)*fanout && c < len(t.levels[l-1]); c++ {
		out = append(out, c)
	}
	return out
}

// Height is the number of levels.
func (t *Tree) Height() int { return len(t.levels) }

// Equal reports whether two trees hold the same hashes.
func (t *Tree) Equal(o *Tree) bool {
	if len(t.levels) != len(o.levels) {
		return false
	}
	for l := range t.levels {
		for i := range t.levels[l] {
			if t.levels[l][i] != o.levels[l][i] {
				return false
			}
		}
	}
	return true
}

// Bytes is the tree's memory for its hashes.
func (t *Tree) Bytes() int {
	n := 0
	for _, l := range t.levels {
		n += 8 * len(l)
	}
	return n
}

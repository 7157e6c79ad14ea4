package replica

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// keyFilter answers whether a ring position may have an object in the
// store: a no lets the first write of a key, or a read of a key that was
// never written, skip Pebble's lookup. That lookup is a search of the
// memtable's skiplist in random memory, before any sstable's own filter,
// and it costs more than the rest of such a write; RocksDB keeps a memtable
// filter for the same reason.
//
// It is a scalable Bloom filter: a series of blocked Bloom filters, each
// twice the size of the one before, the newest taking the adds. A set bit
// is never cleared, so a key removed from the store only costs a lookup
// that finds nothing. Adds and queries are lock-free; only growing takes a
// lock.
type keyFilter struct {
	layers atomic.Pointer[[]*filterLayer]
	grow   sync.Mutex
}

// filterLayer is one blocked Bloom filter: each position sets filterProbes
// bits in one 512-bit block, so a query touches one cache line.
type filterLayer struct {
	words    []atomic.Uint64
	blocks   uint64
	capacity int64
	added    atomic.Int64
}

const (
	filterBitsPerKey  = 10 // about 1% false positives per layer
	filterProbes      = 6
	filterBlockWords  = 8 // 512 bits: one cache line
	filterFirstLayer  = 1 << 20
	filterMinCapacity = 1 << 10
)

// newKeyFilter returns an empty filter whose first layer holds capacity
// positions before the next is added.
func newKeyFilter(capacity int64) *keyFilter {
	f := &keyFilter{}
	ls := []*filterLayer{newFilterLayer(max(capacity, filterMinCapacity))}
	f.layers.Store(&ls)
	return f
}

func newFilterLayer(capacity int64) *filterLayer {
	blocks := uint64(capacity*filterBitsPerKey+511) / 512
	return &filterLayer{
		words:    make([]atomic.Uint64, blocks*filterBlockWords),
		blocks:   blocks,
		capacity: capacity,
	}
}

// add records that pos has an object. It is called before the object is
// written, under the key's lock, so that no reader can find the object
// missing from the filter.
func (f *keyFilter) add(pos uint64) {
	for {
		ls := *f.layers.Load()
		last := ls[len(ls)-1]
		// Whoever finds the newest layer full grows the filter, not only
		// the add that filled it: that one may be descheduled meanwhile,
		// and the others would overfill the layer.
		if last.added.Load() >= last.capacity {
			f.growAfter(last)
			continue
		}
		last.set(pos)
		last.added.Add(1)
		return
	}
}

// growAfter adds a layer twice the size of full, unless one was added
// already.
func (f *keyFilter) growAfter(full *filterLayer) {
	f.grow.Lock()
	defer f.grow.Unlock()
	ls := *f.layers.Load()
	if ls[len(ls)-1] != full {
		return
	}
	next := append(ls[:len(ls):len(ls)], newFilterLayer(2*full.capacity))
	f.layers.Store(&next)
}

// mayContain reports whether pos may have an object; false is certain.
func (f *keyFilter) mayContain(pos uint64) bool {
	for _, l := range *f.layers.Load() {
		if l.has(pos) {
			return true
		}
	}
	return false
}

// block returns pos's block and the bits its probes are drawn from.
// Positions are already uniform hashes (md5 of the key): the block comes
// from pos's high bits, the probes from a remix of all of them, 9 bits
// each (3 for the word, 6 for the bit).
func (l *filterLayer) block(pos uint64) ([]atomic.Uint64, uint64) {
	b, _ := bits.Mul64(pos, l.blocks)
	return l.words[b*filterBlockWords : (b+1)*filterBlockWords], bits.RotateLeft64(pos*0x9e3779b97f4a7c15, 31)
}

func (l *filterLayer) set(pos uint64) {
	words, h := l.block(pos)
	for range filterProbes {
		w, bit := &words[h&(filterBlockWords-1)], uint64(1)<<((h>>3)&63)
		if w.Load()&bit == 0 {
			w.Or(bit)
		}
		h >>= 9
	}
}

func (l *filterLayer) has(pos uint64) bool {
	words, h := l.block(pos)
	for range filterProbes {
		if words[h&(filterBlockWords-1)].Load()&(uint64(1)<<((h>>3)&63)) == 0 {
			return false
		}
		h >>= 9
	}
	return true
}

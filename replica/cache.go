package replica

import (
	"bytes"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// objCache keeps the objects of recently used keys, so that reads and the
// read half of writes skip Pebble's memtable and block lookups. The store
// stays the truth: an entry changes only under its key's stripe lock,
// together with the store.
//
// An entry is the key followed by the object's encoding, in one
// allocation without pointers, found by the key's ring position (which the
// caller has computed already; an element's position mixed with a hash of
// its name, since a container's elements share its position) and
// confirmed by the key. A hit decodes the
// object (about 200 ns and two small allocations, its clock and sibling
// slices; its values alias the entry, which is never modified). Against
// keeping decoded objects this holds about 190 bytes per 100-byte value
// instead of 340, so the same memory holds 1.8 times the keys, and the
// garbage collector marks one pointer per entry instead of scanning half a
// dozen objects. Two keys at the same position share a stripe lock and a
// slot; the second evicts the first.
//
// It is sharded by ring position and bounded in bytes; eviction is CLOCK
// over Go's randomly ordered map iteration.
type objCache struct {
	shards   [cacheShards]cacheShard
	maxShard int64 // bytes per shard
}

const cacheShards = 256

// entryOverhead is what an entry costs beyond its bytes: its map slot
// (position, slice header, flags) at the map's load factor, and the
// rounding of its allocation to a size class.
const entryOverhead = 64

type cacheShard struct {
	mu    sync.Mutex
	m     map[uint64]cacheEntry
	bytes int64
}

type cacheEntry struct {
	b    []byte // the key, then the object's encoding
	pos  uint64 // the key's ring position
	klen uint32
	used bool
}

// slotOf returns the map slot of key's entry: its position, or for an
// element name the position mixed with a hash of the name, so that a
// container's header and elements, which share a position, do not evict
// one another at every write.
func slotOf(pos uint64, key []byte) uint64 {
	if IsElement(key) {
		return pos ^ xxhash.Sum64(key)
	}
	return pos
}

func (e cacheEntry) size() int64 { return int64(cap(e.b)) + entryOverhead }

func newObjCache(maxBytes int64) *objCache {
	c := &objCache{maxShard: maxBytes / cacheShards}
	for i := range c.shards {
		c.shards[i].m = map[uint64]cacheEntry{}
	}
	return c
}

func (c *objCache) shard(pos uint64) *cacheShard { return &c.shards[pos%cacheShards] }

// get returns key's cached object.
func (c *objCache) get(pos uint64, key []byte) (Object, bool) {
	if c.maxShard <= 0 {
		return Object{}, false
	}
	slot := slotOf(pos, key)
	sh := c.shard(slot)
	sh.mu.Lock()
	e, ok := sh.m[slot]
	if !ok || !bytes.Equal(e.b[:e.klen], key) {
		sh.mu.Unlock()
		return Object{}, false
	}
	if !e.used {
		e.used = true
		sh.m[slot] = e
	}
	sh.mu.Unlock()
	o, err := DecodeObject(e.b[e.klen:])
	if err != nil {
		return Object{}, false // the store encoded it; cannot happen, and Pebble has it anyway
	}
	return o, true
}

// put caches enc, the encoding of key's object, copying it (and key) into
// an allocation of the entry's own; the caller holds key's stripe lock.
func (c *objCache) put(pos uint64, key, enc []byte) {
	if c.maxShard <= 0 {
		return
	}
	b := make([]byte, len(key)+len(enc))
	copy(b, key)
	copy(b[len(key):], enc)
	e := cacheEntry{b: b, pos: pos, klen: uint32(len(key))}
	slot := slotOf(pos, key)
	sh := c.shard(slot)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.m[slot]; ok {
		sh.bytes -= old.size()
		e.used = true
	}
	sh.m[slot] = e
	sh.bytes += e.size()
	sh.evictLocked(c.maxShard)
}

// evictLocked drops entries not used since the last sweep until the shard
// fits, clearing the used mark of those it passes over.
func (sh *cacheShard) evictLocked(max int64) {
	for pass := 0; sh.bytes > max && pass < 2; pass++ {
		for p, e := range sh.m {
			if sh.bytes <= max {
				return
			}
			if e.used {
				e.used = false
				sh.m[p] = e
				continue
			}
			delete(sh.m, p)
			sh.bytes -= e.size()
		}
	}
}

// del forgets key; the caller holds key's stripe lock. Whichever key holds
// the slot goes: the slot is key's to fill next.
func (c *objCache) del(pos uint64, key []byte) {
	slot := slotOf(pos, key)
	sh := c.shard(slot)
	sh.mu.Lock()
	if e, ok := sh.m[slot]; ok {
		delete(sh.m, slot)
		sh.bytes -= e.size()
	}
	sh.mu.Unlock()
}

// delRange forgets every key with a position in [from, to) (to == 0: the
// end of the ring); the caller holds the range's stripe locks.
func (c *objCache) delRange(from, to uint64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for slot, e := range sh.m {
			if e.pos >= from && (to == 0 || e.pos < to) {
				delete(sh.m, slot)
				sh.bytes -= e.size()
			}
		}
		sh.mu.Unlock()
	}
}

// clear forgets everything.
func (c *objCache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.m = map[uint64]cacheEntry{}
		sh.bytes = 0
		sh.mu.Unlock()
	}
}

package replica

import "sync"

// objCache keeps the decoded objects of recently used keys, so that reads
// and the read half of writes skip Pebble's memtable and block lookups. The
// store stays the truth: an entry changes only under its key's stripe lock,
// together with the store, and objects in it are never modified.
//
// It is sharded by ring position and bounded in bytes; eviction is CLOCK
// over Go's randomly ordered map iteration.
type objCache struct {
	shards   [cacheShards]cacheShard
	maxShard int64 // bytes per shard
}

const cacheShards = 256

type cacheShard struct {
	mu    sync.Mutex
	m     map[string]*cacheEntry
	bytes int64
}

type cacheEntry struct {
	obj  Object
	pos  uint64
	size int64
	used bool
}

func newObjCache(maxBytes int64) *objCache {
	c := &objCache{maxShard: maxBytes / cacheShards}
	for i := range c.shards {
		c.shards[i].m = map[string]*cacheEntry{}
	}
	return c
}

func (c *objCache) shard(pos uint64) *cacheShard { return &c.shards[pos%cacheShards] }

// get returns key's cached object.
func (c *objCache) get(pos uint64, key []byte) (Object, bool) {
	if c.maxShard <= 0 {
		return Object{}, false
	}
	sh := c.shard(pos)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[string(key)]
	if !ok {
		return Object{}, false
	}
	e.used = true
	return e.obj, true // put replaces e.obj under the lock
}

// put caches o for key; the caller holds key's stripe lock.
func (c *objCache) put(pos uint64, key []byte, o Object) {
	if c.maxShard <= 0 {
		return
	}
	size := objectSize(key, o)
	sh := c.shard(pos)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[string(key)]; ok {
		sh.bytes += size - e.size
		e.obj, e.size, e.used = o, size, true
	} else {
		sh.m[string(key)] = &cacheEntry{obj: o, pos: pos, size: size}
		sh.bytes += size
	}
	sh.evictLocked(c.maxShard)
}

// evictLocked drops entries not used since the last sweep until the shard
// fits, clearing the used mark of those it passes over.
func (sh *cacheShard) evictLocked(max int64) {
	for pass := 0; sh.bytes > max && pass < 2; pass++ {
		for k, e := range sh.m {
			if sh.bytes <= max {
				return
			}
			if e.used {
				e.used = false
				continue
			}
			delete(sh.m, k)
			sh.bytes -= e.size
		}
	}
}

// del forgets key; the caller holds key's stripe lock.
func (c *objCache) del(pos uint64, key []byte) {
	sh := c.shard(pos)
	sh.mu.Lock()
	if e, ok := sh.m[string(key)]; ok {
		delete(sh.m, string(key))
		sh.bytes -= e.size
	}
	sh.mu.Unlock()
}

// delRange forgets every key with a position in [from, to) (to == 0: the
// end of the ring); the caller holds the range's stripe locks.
func (c *objCache) delRange(from, to uint64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.pos >= from && (to == 0 || e.pos < to) {
				delete(sh.m, k)
				sh.bytes -= e.size
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
		sh.m = map[string]*cacheEntry{}
		sh.bytes = 0
		sh.mu.Unlock()
	}
}

// owned returns o with its values copied into one allocation of their
// own. A written object's values are often slices of the request that
// carried them (the front end parses commands without copying), and the
// cache keeps an object for long: holding such a slice would keep the
// request's whole read buffer alive.
func owned(o Object) Object {
	n := 0
	for _, s := range o.Siblings {
		n += len(s.Value)
	}
	vals := make([]byte, 0, n)
	sibs := make([]Sibling, len(o.Siblings))
	for i, s := range o.Siblings {
		at := len(vals)
		vals = append(vals, s.Value...)
		if s.Value != nil {
			s.Value = vals[at:len(vals):len(vals)]
		}
		sibs[i] = s
	}
	return Object{Clock: o.Clock, Siblings: sibs}
}

// objectSize estimates the memory an entry takes: the key and values, and
// the structures around them.
func objectSize(key []byte, o Object) int64 {
	n := 128 + len(key) + 24*len(o.Clock)
	for _, e := range o.Clock {
		n += len(e.Actor)
	}
	for _, s := range o.Siblings {
		n += 80 + len(s.Value)
	}
	return int64(n)
}

package replica

import (
	"fmt"
	"testing"
)

func cached(t *testing.T, c *objCache, pos uint64, key string) (string, bool) {
	t.Helper()
	o, ok := c.get(pos, []byte(key))
	if !ok {
		return "", false
	}
	if len(o.Siblings) != 1 {
		t.Fatalf("cached %q: %d siblings", key, len(o.Siblings))
	}
	return string(o.Siblings[0].Value), true
}

func one(v string) []byte {
	return AppendObject(nil, Object{Clock: Clock{{"a", 1}}, Siblings: []Sibling{{Dot: Dot{"a", 1}, Value: []byte(v)}}})
}

// Two keys at one ring position take turns in its slot; neither ever reads
// as the other.
func TestCacheConfirmsKey(t *testing.T) {
	c := newObjCache(1 << 20)
	c.put(7, []byte("a"), one("va"))
	if v, ok := cached(t, c, 7, "a"); !ok || v != "va" {
		t.Fatalf("a = %q %v", v, ok)
	}
	if _, ok := cached(t, c, 7, "b"); ok {
		t.Fatal("b read a's object")
	}
	c.put(7, []byte("b"), one("vb"))
	if _, ok := cached(t, c, 7, "a"); ok {
		t.Fatal("a still cached after b took its slot")
	}
	if v, ok := cached(t, c, 7, "b"); !ok || v != "vb" {
		t.Fatalf("b = %q %v", v, ok)
	}
	c.del(7, []byte("b"))
	if _, ok := cached(t, c, 7, "b"); ok {
		t.Fatal("b cached after del")
	}
	if sh := c.shard(7); sh.bytes != 0 || len(sh.m) != 0 {
		t.Fatalf("shard holds %d bytes, %d entries after del", sh.bytes, len(sh.m))
	}
}

// The cache owns what it keeps: the caller's key and encoding buffers may
// be reused at once, and what a hit returns is the caller's to change.
func TestCacheCopies(t *testing.T) {
	c := newObjCache(1 << 20)
	key, enc := []byte("key"), one("value")
	c.put(1, key, enc)
	copy(key, "xxx")
	clear(enc)
	if v, ok := cached(t, c, 1, "key"); !ok || v != "value" {
		t.Fatalf("key = %q %v after its buffers were reused", v, ok)
	}
	o, _ := c.get(1, []byte("key"))
	o.Siblings[0].Dot.Counter = 99
	o.Clock[0].Counter = 99
	if again, _ := c.get(1, []byte("key")); again.Siblings[0].Dot.Counter != 1 || again.Clock[0].Counter != 1 {
		t.Fatal("a change to a returned object reached the cache")
	}
	tomb := AppendObject(nil, Object{Clock: Clock{{"a", 2}}, Siblings: []Sibling{{Dot: Dot{"a", 2}, Tombstone: true}}})
	c.put(2, nil, tomb)
	got, ok := c.get(2, []byte{})
	if !ok || len(got.Siblings[0].Value) != 0 || !got.Siblings[0].Tombstone {
		t.Fatalf("empty key's tombstone = %+v %v", got, ok)
	}
}

// The byte bound holds, whatever is put; delRange forgets exactly its
// positions.
func TestCacheBounds(t *testing.T) {
	c := newObjCache(cacheShards * 4096)
	for i := range 20000 {
		c.put(uint64(i), fmt.Appendf(nil, "k%d", i), one("v"))
	}
	for i := range c.shards {
		sh := &c.shards[i]
		if sh.bytes > c.maxShard {
			t.Fatalf("shard %d holds %d bytes, bound %d", i, sh.bytes, c.maxShard)
		}
		var sum int64
		for _, e := range sh.m {
			sum += e.size()
		}
		if sum != sh.bytes {
			t.Fatalf("shard %d counts %d bytes, holds %d", i, sh.bytes, sum)
		}
	}
	c.clear()
	for i := range 100 {
		c.put(uint64(i), fmt.Appendf(nil, "k%d", i), one("v"))
	}
	c.delRange(10, 20)
	for i := range 100 {
		_, ok := cached(t, c, uint64(i), fmt.Sprintf("k%d", i))
		if want := i < 10 || i >= 20; ok != want {
			t.Fatalf("position %d cached = %v after delRange(10, 20)", i, ok)
		}
	}
}

// A container's header and its elements share a ring position but not a
// slot: writing an element does not evict the header every element write
// reads (the cost of HSET was a Pebble read of the header per write), and
// dropping a position range drops the elements too.
func TestCacheKeepsHeaderBesideElements(t *testing.T) {
	c := newObjCache(1 << 20)
	key := []byte("h")
	pos := Position(key)
	c.put(pos, key, one("header"))
	for i := range 10 {
		c.put(pos, ElementName(key, ElementField, ElementID(fmt.Appendf(nil, "f%d", i))), one("field"))
	}
	if v, ok := cached(t, c, pos, "h"); !ok || v != "header" {
		t.Fatalf("header = %q %v after element writes", v, ok)
	}
	f3 := string(ElementName(key, ElementField, ElementID([]byte("f3"))))
	if v, ok := cached(t, c, pos, f3); !ok || v != "field" {
		t.Fatalf("element = %q %v", v, ok)
	}
	c.delRange(pos, pos+1)
	if _, ok := cached(t, c, pos, f3); ok {
		t.Fatal("an element outlived the drop of its position")
	}
	if _, ok := cached(t, c, pos, "h"); ok {
		t.Fatal("the header outlived the drop of its position")
	}
}

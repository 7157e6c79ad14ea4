package replica

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestElementNames(t *testing.T) {
	for _, key := range []string{"", "k", "{user1}:cart", string(make([]byte, 300)), "\xff\x00E"} {
		name := ElementName([]byte(key), ElementField, []byte("f\x00x"))
		k, typ, id, ok := SplitElement(name)
		if !ok || string(k) != key || typ != ElementField || string(id) != "f\x00x" {
			t.Fatalf("%q: split %q %c %q %v", key, k, typ, id, ok)
		}
		if !IsElement(name) || IsElement([]byte(key)) {
			t.Fatalf("%q: IsElement wrong", key)
		}
		if Position(name) != Position([]byte(key)) {
			t.Fatalf("%q: an element is not at its container's position", key)
		}
	}
	for _, bad := range []string{ElementMark, ElementMark + "\x05ab", ElementMark + "\x80"} {
		if _, _, _, ok := SplitElement([]byte(bad)); ok {
			t.Fatalf("%q split as an element name", bad)
		}
	}
}

// containerReplica is one replica's copy of a container: its header and
// its element objects, each kept settled under the header's removal
// clock, as the store keeps them.
type containerReplica struct {
	header Object
	elems  map[string]Object
}

func (c *containerReplica) settle() {
	for id, e := range c.elems {
		if e = Settle(c.header.Removed, e); e.Empty() {
			delete(c.elems, id)
		} else {
			c.elems[id] = e
		}
	}
}

// receive merges one object of another replica, as a merge, a hint or an
// anti-entropy exchange delivers it: "" is the header.
func (c *containerReplica) receive(id string, o Object) {
	if id == "" {
		c.header = Sync(c.header, o)
		c.settle()
		return
	}
	if e := Settle(c.header.Removed, Sync(c.elems[id], o)); !e.Empty() {
		c.elems[id] = e
	} else {
		delete(c.elems, id)
	}
}

// visible is what the container reads as: its live elements.
func (c *containerReplica) visible() []string {
	var out []string
	for id, e := range c.elems {
		if _, ok := e.Uncovered(c.header.Removed).Resolve(0); ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// TestContainerConverges runs random histories of element adds and
// removes, whole-container removals and partial exchanges (one object at a
// time, in any order) on three replicas, then delivers everything
// everywhere in a random order: every replica must read the same
// elements, whatever the order, and an element added after a removal that
// did not observe it must survive (add-wins).
func TestContainerConverges(t *testing.T) {
	ids := []string{"a", "b", "c", "d"}
	for seed := uint64(1); seed <= 400; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		reps := make([]*containerReplica, 3)
		for i := range reps {
			reps[i] = &containerReplica{elems: map[string]Object{}}
		}
		n := int64(0)
		counters := make([]uint64, len(reps))
		mint := func(i int) Dot {
			counters[i]++
			return Dot{fmt.Sprintf("r%d", i), counters[i]}
		}
		type survivor struct {
			id  string
			dot Dot
		}
		var mustSurvive []survivor
		for range 60 {
			i := rng.IntN(len(reps))
			r := reps[i]
			n++
			switch rng.IntN(6) {
			case 0, 1: // SADD / HSET of one element at i
				id := ids[rng.IntN(len(ids))]
				dot := mint(i)
				e := Update(r.elems[id], r.elems[id].Context(), Sibling{Time: n}, dot)
				r.elems[id] = e
				mustSurvive = append(mustSurvive, survivor{id, dot})
			case 2: // SREM / HDEL at i: a tombstone over what i has seen
				id := ids[rng.IntN(len(ids))]
				if e, ok := r.elems[id]; ok {
					r.elems[id] = Update(e, e.Context(), Sibling{Time: n, Tombstone: true}, mint(i))
				}
			case 3: // DEL at i: removal clock from the elements of i and one other
				j := rng.IntN(len(reps))
				var rc Clock
				for _, rr := range []*containerReplica{r, reps[j]} {
					for _, e := range rr.elems {
						rc = rc.Join(e.Clock)
					}
				}
				h := Update(r.header, r.header.Context(), Sibling{Time: n, Tombstone: true}, mint(i))
				h.Removed = h.Removed.Join(rc)
				r.header = h
				r.settle()
			default: // i receives one object from j
				j := rng.IntN(len(reps))
				keys := append([]string{""}, slices.Sorted(maps.Keys(reps[j].elems))...)
				id := keys[rng.IntN(len(keys))]
				o := reps[j].header
				if id != "" {
					o = reps[j].elems[id]
				}
				r.receive(id, o)
			}
		}
		// Everything everywhere, each replica in its own order.
		var all []struct {
			id string
			o  Object
		}
		for _, r := range reps {
			all = append(all, struct {
				id string
				o  Object
			}{"", r.header})
			for id, e := range r.elems {
				all = append(all, struct {
					id string
					o  Object
				}{id, e})
			}
		}
		var want []string
		var wantHeader Object
		for k, r := range reps {
			order := rng.Perm(len(all))
			for _, x := range order {
				r.receive(all[x].id, all[x].o)
			}
			if k == 0 {
				want, wantHeader = r.visible(), r.header
				continue
			}
			if got := r.visible(); !slices.Equal(got, want) {
				t.Fatalf("seed %d: replica %d reads %v, replica 0 %v", seed, k, got, want)
			}
		}
		// An add no removal observed is kept: its dot is not covered by the
		// merged removal clock, and some replica still holds it or a write
		// that saw it.
		for _, s := range mustSurvive {
			if wantHeader.Removed.Covers(s.dot) {
				continue
			}
			e := reps[0].elems[s.id]
			if !e.Clock.Covers(s.dot) {
				t.Fatalf("seed %d: element %s lost add %v that no removal covered", seed, s.id, s.dot)
			}
		}
	}
}

// TestStoreDropsCoveredElements: a header whose removal clock grows drops
// the elements it covers in the same batch; an element that arrives
// afterwards covered is not stored; one not covered survives; the
// container clock and chunked reads see exactly what is stored.
func TestStoreDropsCoveredElements(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	defer s.Close()
	key := []byte("cart")
	var written []Object
	for i := range 5 {
		name := ElementName(key, ElementMember, fmt.Appendf(nil, "m%d", i))
		o, err := s.Update(context.Background(), name, func(cur Object) (Object, bool, error) {
			return Update(cur, cur.Context(), Sibling{Time: 1}, mustMint(s)), true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		written = append(written, o)
	}
	prefix := AppendElementPrefix(nil, key, ElementMember)
	page1, err := s.Elements(prefix, nil, 3)
	if err != nil || len(page1) != 3 {
		t.Fatalf("first page: %d %v", len(page1), err)
	}
	page2, err := s.Elements(prefix, page1[2].Key, 3)
	if err != nil || len(page2) != 2 || string(page2[1].Key) != string(ElementName(key, ElementMember, []byte("m4"))) {
		t.Fatalf("second page: %d %v", len(page2), err)
	}
	cc, err := s.ContainerClock(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	// DEL observed the first three elements only.
	removed := written[0].Clock.Join(written[1].Clock).Join(written[2].Clock)
	if !cc.Descends(removed) {
		t.Fatalf("container clock %v misses %v", cc, removed)
	}
	if _, err := s.Merge(key, Object{Clock: Clock{{"x", 1}}, Siblings: []Sibling{{Dot: Dot{"x", 1}, Tombstone: true}}, Removed: removed}); err != nil {
		t.Fatal(err)
	}
	left, err := s.Elements(prefix, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 {
		t.Fatalf("%d elements left after the removal, want 2 (the unobserved ones)", len(left))
	}
	// A replica that had not heard of the removal sends m0 back: dropped.
	if _, err := s.Merge(ElementName(key, ElementMember, []byte("m0")), written[0]); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.Get(ElementName(key, ElementMember, []byte("m0"))); !o.Empty() {
		t.Fatalf("a covered element came back: %+v", o)
	}
	// The key count sees the header alone, never its elements.
	if keys, _ := s.KeyCount(); keys != 0 {
		t.Fatalf("%d live keys, want 0 (the header is a tombstone)", keys)
	}
	// The tally counts the two elements left, and a tombstone written over
	// one of them takes it out of the count but not out of the digest.
	tl, err := s.ContainerTally(key, ElementMember)
	if err != nil || tl.Live != 2 || tl.Total != 2 {
		t.Fatalf("tally %+v %v, want 2 live of 2", tl, err)
	}
	m3 := ElementName(key, ElementMember, []byte("m3"))
	if _, err := s.Update(context.Background(), m3, func(cur Object) (Object, bool, error) {
		return Update(cur, cur.Context(), Sibling{Time: 2, Tombstone: true}, mustMint(s)), true, nil
	}); err != nil {
		t.Fatal(err)
	}
	tl2, _ := s.ContainerTally(key, ElementMember)
	if tl2.Live != 1 || tl2.Total != 2 || tl2.Digest == tl.Digest {
		t.Fatalf("after a tombstone: tally %+v (digest changed %v), want 1 live of 2 and a new digest", tl2, tl2.Digest != tl.Digest)
	}
	if other, _ := s.ContainerTally(key, ElementField); other.Total != 0 {
		t.Fatalf("the set's members were counted as hash fields: %+v", other)
	}
}

// TestTallyRebuiltAtOpen: the tallies a store keeps as elements change
// equal the ones it rebuilds from its data when it opens again.
func TestTallyRebuiltAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, FsyncNo)
	key := []byte("h")
	for i := range 50 {
		name := ElementName(key, ElementField, ElementID(fmt.Appendf(nil, "f%d", i)))
		if _, err := s.Update(context.Background(), name, func(cur Object) (Object, bool, error) {
			return Update(cur, cur.Context(), Sibling{Time: 1, Tombstone: i%5 == 0}, mustMint(s)), true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	tl, err := s.ContainerTally(key, ElementField)
	if err != nil || tl.Live != 40 || tl.Total != 50 {
		t.Fatalf("tally %+v %v, want 40 live of 50", tl, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, FsyncNo)
	defer s.Close()
	tl2, err := s.ContainerTally(key, ElementField)
	if err != nil || tl2 != tl {
		t.Fatalf("rebuilt tally %+v, kept %+v", tl2, tl)
	}
}

// TestContainerBucketsKept: a large container's bucket digests, kept up
// to date from the first time they are asked for, equal the ones read
// from scratch from its elements after the store reopens; a small
// container has none kept.
func TestContainerBucketsKept(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, FsyncNo)
	key := []byte("big")
	write := func(i int, v string) {
		name := ElementName(key, ElementField, ElementID(fmt.Appendf(nil, "f%d", i)))
		if _, err := s.Update(context.Background(), name, func(cur Object) (Object, bool, error) {
			return Update(cur, cur.Context(), Sibling{Time: 1, Value: []byte(v), Tombstone: v == ""}, mustMint(s)), true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range bucketsFrom + 10 {
		write(i, "v")
	}
	prefix := AppendElementPrefix(nil, key, ElementField)
	if _, ok, err := s.ContainerBuckets(prefix); !ok || err != nil {
		t.Fatalf("no buckets for %d elements: %v", bucketsFrom+10, err)
	}
	for i := range 300 {
		write(i*7, map[bool]string{true: "", false: "w"}[i%3 == 0])
	}
	for i := range 50 {
		write(bucketsFrom+100+i, "new")
	}
	kept, _, _ := s.ContainerBuckets(prefix)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, FsyncNo)
	defer s.Close()
	read, ok, err := s.ContainerBuckets(prefix)
	if !ok || err != nil || !slices.Equal(kept, read) {
		t.Fatalf("kept buckets differ from the ones read after reopening (ok %v, err %v)", ok, err)
	}
	small := AppendElementPrefix(nil, []byte("small"), ElementField)
	if _, ok, _ := s.ContainerBuckets(small); ok {
		t.Fatal("buckets for a container that does not exist")
	}
}

// TestScanLockedKeptSkipsLargeContainers: a leaf scan hands a large
// container's elements over as one digest, equal to the XOR of the
// hashes the full scan reads, and reads every other key.
func TestScanLockedKeptSkipsLargeContainers(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	defer s.Close()
	key := []byte("{k}big")
	for i := range bucketsFrom {
		name := ElementName(key, ElementMember, ElementID(fmt.Appendf(nil, "m%d", i)))
		if _, err := s.Update(context.Background(), name, func(cur Object) (Object, bool, error) {
			return Update(cur, cur.Context(), Sibling{Time: 1}, mustMint(s)), true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"{k}a", "{k}z"} {
		if _, err := s.Update(context.Background(), []byte(k), func(cur Object) (Object, bool, error) {
			return Update(cur, cur.Context(), Sibling{Time: 1, Value: []byte("v")}, mustMint(s)), true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	from := Position(key) &^ (1<<50 - 1)
	to := from + 1<<50
	var full uint64
	var keys int
	if err := s.ScanLocked(from, to, func(_ uint64, name []byte, o Object) {
		if IsElement(name) {
			full ^= HashKey(name, o.Clock)
		} else {
			keys++
		}
	}, nil); err != nil {
		t.Fatal(err)
	}
	var kept uint64
	var groups, keptKeys int
	if err := s.ScanLockedKept(from, to, func(_ uint64, name []byte, o Object) {
		if IsElement(name) {
			t.Fatalf("element %q read", name)
		}
		keptKeys++
	}, func(prefix []byte, digest uint64) {
		groups++
		kept ^= digest
	}, nil); err != nil {
		t.Fatal(err)
	}
	if groups != 1 || kept != full || keptKeys != keys || keys != 2 {
		t.Fatalf("groups %d, digest equal %v, keys %d of %d", groups, kept == full, keptKeys, keys)
	}
}

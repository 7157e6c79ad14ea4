package replica

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
)

// The filter never forgets a position, while it grows under concurrent
// adds, and says no to most positions it was not given.
func TestKeyFilter(t *testing.T) {
	f := newKeyFilter(filterMinCapacity)
	const writers, each = 4, 20000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				pos := Position(binary.BigEndian.AppendUint32([]byte{byte(w)}, uint32(i)))
				f.add(pos)
				if !f.mayContain(pos) {
					t.Errorf("position %x missing right after its add", pos)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(*f.layers.Load()); n < 5 {
		t.Fatalf("%d layers after %d adds from a first layer of %d", n, writers*each, filterMinCapacity)
	}
	for w := range writers {
		for i := range each {
			if pos := Position(binary.BigEndian.AppendUint32([]byte{byte(w)}, uint32(i))); !f.mayContain(pos) {
				t.Fatalf("position %x of writer %d lost", pos, w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	fp := 0
	const probes = 100000
	for range probes {
		if f.mayContain(r.Uint64()) {
			fp++
		}
	}
	// Each layer is about 1% false positive; seven layers a few percent.
	// No layer takes much more than it was sized for, whichever writer is
	// descheduled when one fills.
	for i, l := range *f.layers.Load() {
		if n := l.added.Load(); n > l.capacity+writers {
			t.Fatalf("layer %d holds %d positions, sized for %d", i, n, l.capacity)
		}
	}
	if rate := float64(fp) / probes; rate > 0.08 {
		t.Fatalf("false positive rate %.3f", rate)
	}
	t.Logf("%d layers, false positive rate %.4f", len(*f.layers.Load()), float64(fp)/probes)
}

// A key the store never held is answered without Pebble, and one it holds
// is found: written, or brought back by a merge.
func TestStoreSkipsLookupOfUnwrittenKeys(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	defer s.Close()
	if s.filter.mayContain(Position([]byte("a"))) {
		t.Fatal("an empty store's filter has key a")
	}
	write(t, s, "a", "1", 0)
	if !s.filter.mayContain(Position([]byte("a"))) {
		t.Fatal("a written key is not in the filter")
	}
	remote, _ := updateAs(Object{}, nil, Sibling{Value: []byte("2"), Time: 1}, "other")
	if _, err := s.Merge([]byte("b"), remote); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		o, err := s.Get([]byte(k))
		if err != nil || o.Empty() {
			t.Fatalf("Get(%s) = %v, %v", k, o, err)
		}
	}
}

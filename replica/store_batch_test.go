package replica

import (
	"context"
	"fmt"
	"testing"
)

// TestMergeAllSettlesUnderTheBatchHeader: a transaction that added a
// member and then deleted its set reaches a replica as one batch, the
// element before the header: the element is settled under the removal
// clock the header brings, not the stored one, so it is not stored; an
// element the removal did not observe is; the tally and the key count
// agree with what is stored, and a second delivery changes nothing.
func TestMergeAllSettlesUnderTheBatchHeader(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncAlways)
	defer s.Close()
	key := []byte("{t}tags")
	other := []byte("{t}count")
	added := Update(Object{}, nil, Sibling{Time: 1}, Dot{"a", 1})
	kept := Update(Object{}, nil, Sibling{Time: 1}, Dot{"b", 7})
	header := Update(Object{}, nil, Sibling{Time: 1, Tombstone: true}, Dot{"a", 2})
	header.Removed = Clock{{"a", 1}}
	counter := Update(Object{}, nil, Sibling{Time: 1, Value: []byte("1")}, Dot{"a", 3})
	m1 := ElementName(key, ElementMember, ElementID([]byte("m1")))
	m2 := ElementName(key, ElementMember, ElementID([]byte("m2")))
	batch := []KeyObject{{m1, added}, {m2, kept}, {key, header}, {other, counter}}
	var p Pending
	if err := s.MergeAll(&p, batch); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.Get(m1); !o.Empty() {
		t.Fatalf("the element the batch's removal covers was stored: %+v", o)
	}
	if o, _ := s.Get(m2); !o.Equal(kept) {
		t.Fatalf("the element the removal did not observe: %+v", o)
	}
	if o, _ := s.Get(other); !o.Equal(counter) {
		t.Fatalf("the batch's other key: %+v", o)
	}
	tl, err := s.ContainerTally(key, ElementMember)
	if err != nil || tl.Live != 1 || tl.Total != 1 {
		t.Fatalf("tally %+v %v, want 1 live of 1", tl, err)
	}
	if keys, _ := s.KeyCount(); keys != 1 {
		t.Fatalf("%d live keys, want 1 (the counter; the set's header is a tombstone)", keys)
	}
	if err := s.MergeAll(nil, batch); err != nil {
		t.Fatal(err)
	}
	if tl2, _ := s.ContainerTally(key, ElementMember); tl2 != tl {
		t.Fatalf("a second delivery changed the tally: %+v, was %+v", tl2, tl)
	}
}

// TestMergeAllDropsStoredElements: a header in a batch whose removal
// grows drops the stored elements it covers, once: the tally counts each
// element once even when the batch brings a newer version of a covered
// element too.
func TestMergeAllDropsStoredElements(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	defer s.Close()
	key := []byte("h")
	var names [][]byte
	var clocks Clock
	for i := range 4 {
		name := ElementName(key, ElementField, ElementID(fmt.Appendf(nil, "f%d", i)))
		o, err := s.Update(context.Background(), name, func(cur Object) (Object, bool, error) {
			return Update(cur, cur.Context(), Sibling{Time: 1, Value: []byte("v")}, mustMint(s)), true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		clocks = clocks.Join(o.Clock)
	}
	header := Update(Object{}, nil, Sibling{Time: 2, Tombstone: true}, Dot{"z", 1})
	header.Removed = clocks
	// f0 rewritten after the removal, in the same batch.
	f0, _ := s.Get(names[0])
	newer := Update(f0, f0.Context(), Sibling{Time: 3, Value: []byte("new")}, Dot{"z", 2})
	if err := s.MergeAll(nil, []KeyObject{{names[0], newer}, {key, header}}); err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		o, _ := s.Get(name)
		if (i == 0) == o.Empty() {
			t.Fatalf("element %d after the batch: %+v", i, o)
		}
	}
	tl, _ := s.ContainerTally(key, ElementField)
	if tl.Live != 1 || tl.Total != 1 {
		t.Fatalf("tally %+v, want 1 live of 1", tl)
	}
}

// TestHintAllDeliveredWhole: a batch's hints are kept in one write and
// come in one page of Hints even when the page's limit falls inside
// them; a second batch to the same keys merges into the hints.
func TestHintAllDeliveredWhole(t *testing.T) {
	s := openStore(t, t.TempDir(), FsyncNo)
	defer s.Close()
	var batch []KeyObject
	for i := range 5 {
		batch = append(batch, KeyObject{fmt.Appendf(nil, "{slot}k%d", i), Update(Object{}, nil, Sibling{Time: 1, Value: []byte("v")}, Dot{"a", uint64(i + 1)})})
	}
	if err := s.HintAll("n2", batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Hint("n2", []byte("elsewhere"), batch[0].Object); err != nil {
		t.Fatal(err)
	}
	if st := s.HintTargets()["n2"]; st.Count != 6 {
		t.Fatalf("%d hints held, want 6", st.Count)
	}
	var pages [][]Hint
	var after []byte
	for {
		page, err := s.Hints("n2", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages = append(pages, page)
		after = page[len(page)-1].Key
	}
	whole := false
	for _, page := range pages {
		n := 0
		for _, h := range page {
			if Slot(h.Key) == Slot([]byte("{slot}")) {
				n++
			}
		}
		if n != 0 && n != 5 {
			t.Fatalf("a page held %d of the batch's 5 hints", n)
		}
		whole = whole || n == 5
	}
	if !whole {
		t.Fatalf("the batch's hints were not read: %d pages", len(pages))
	}
	newer := Update(batch[1].Object, batch[1].Object.Context(), Sibling{Time: 2, Value: []byte("w")}, Dot{"a", 9})
	if err := s.HintAll("n2", []KeyObject{{batch[1].Key, newer}}); err != nil {
		t.Fatal(err)
	}
	if st := s.HintTargets()["n2"]; st.Count != 6 {
		t.Fatalf("%d hints after a merge into one, want 6", st.Count)
	}
	if o, _ := s.Read(batch[1].Key); !o.Equal(newer) {
		t.Fatalf("the merged hint reads %+v", o)
	}
}

package replica

import (
	"context"
	"fmt"
	"testing"
)

func benchObject() Object {
	o, _ := updateAs(Object{}, nil, Sibling{Value: make([]byte, 100), Time: 1}, "n1#abcdefgh")
	o, _ = updateAs(o, o.Context(), Sibling{Value: make([]byte, 100), Time: 2}, "n2#abcdefgh")
	return o
}

func BenchmarkEncodeObject(b *testing.B) {
	o := benchObject()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendObject(buf[:0], o)
	}
}

func BenchmarkDecodeObject(b *testing.B) {
	enc := AppendObject(nil, benchObject())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeObject(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdate(b *testing.B) {
	o := benchObject()
	s := Sibling{Value: make([]byte, 100), Time: 3}
	b.ReportAllocs()
	for b.Loop() {
		Update(o, o.Context(), s, Dot{"n1#abcdefgh", 1 << 40})
	}
}

func BenchmarkSync(b *testing.B) {
	a := benchObject()
	c, _ := updateAs(a, nil, Sibling{Value: make([]byte, 100), Time: 3}, "n3#abcdefgh")
	b.ReportAllocs()
	for b.Loop() {
		Sync(a, c)
	}
}

// BenchmarkStoreUpdate is the Pebble write of a SET: read, update, write,
// under each fsync policy.
func BenchmarkStoreUpdate(b *testing.B) {
	for _, f := range []Fsync{FsyncNo, FsyncEverySec, FsyncAlways} {
		b.Run(fmt.Sprint(f), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{NodeID: "n1", Fsync: f, ObjectCache: 32 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			val := make([]byte, 100)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				key := fmt.Appendf(nil, "key:%d", i%100000)
				i++
				_, err := s.Update(context.Background(), key, func(cur Object) (Object, bool, error) {
					next := Update(cur, cur.Context(), Sibling{Value: val, Time: int64(i)}, mustMint(s))
					return next, true, nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

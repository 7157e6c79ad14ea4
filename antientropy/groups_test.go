package antientropy

import (
	"context"
	"fmt"
	"testing"

	"github.com/dynakv/dynakv/replica"
)

// fillHash writes n fields of the hash key on a and gives b the same
// objects, as replication would.
func fillHash(t testing.TB, a, b *node, key string, n int) {
	t.Helper()
	for i := range n {
		name := string(replica.ElementName([]byte(key), replica.ElementField, replica.ElementID(fmt.Appendf(nil, "field:%d", i))))
		a.write(t, name, "v", false)
		copyKey(t, a, b, name)
	}
}

// TestExchangeOneFieldOfALargeHash: replicas of a 20 000-field hash that
// differ in one field repair it by descending into the container's
// buckets, moving a few kilobytes rather than the hash's (name, clock)
// list; a field only one side holds is found the same way.
func TestExchangeOneFieldOfALargeHash(t *testing.T) {
	const fields = 20000
	a, b := newNode(t, 16, "a"), newNode(t, 16, "b")
	fillHash(t, a, b, "big", fields)
	changed := string(replica.ElementName([]byte("big"), replica.ElementField, replica.ElementID([]byte("field:123"))))
	a.write(t, changed, "new", false)
	added := string(replica.ElementName([]byte("big"), replica.ElementField, replica.ElementID([]byte("field:new"))))
	b.write(t, added, "x", false)
	p, _ := a.trees.Shape().Locate(replica.Position([]byte("big")))
	remote := &MemRemote{Trees: b.trees, Store: b.store}
	res, err := Exchange(context.Background(), a.trees, a.store, remote, p, ExchangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pushed != 1 || res.Pulled != 1 {
		t.Fatalf("pushed %d, pulled %d; want 1 and 1", res.Pushed, res.Pulled)
	}
	if got := b.get(t, changed); !got.Equal(a.get(t, changed)) {
		t.Fatal("the changed field did not reach the other replica")
	}
	if got := a.get(t, added); got.Empty() {
		t.Fatal("the added field did not come over")
	}
	bytes := remote.Bytes.Load()
	naive := 0
	for i := range fields {
		naive += len(replica.ElementName([]byte("big"), replica.ElementField, replica.ElementID(fmt.Appendf(nil, "field:%d", i)))) + 12
	}
	t.Logf("one field changed and one added in a %d-field hash: %d bytes exchanged (the leaf's (name, clock) list alone: about %d)", fields, bytes, naive)
	if bytes > 64<<10 {
		t.Fatalf("%d bytes exchanged for two fields", bytes)
	}
	res, err = Exchange(context.Background(), a.trees, a.store, remote, p, ExchangeOptions{})
	if err != nil || !res.Agreed {
		t.Fatalf("second exchange: %+v %v", res, err)
	}
}

// BenchmarkExchangeOneFieldMillion measures the bytes an exchange moves,
// and its time, when one field of a 1 000 000-field hash changed on one
// replica (run it with -benchtime=3x: filling the two stores takes most
// of a minute).
func BenchmarkExchangeOneFieldMillion(b *testing.B) {
	const fields = 1000000
	x, y := newNode(b, 256, "a"), newNode(b, 256, "b")
	fillHash(b, x, y, "big", fields)
	p, _ := x.trees.Shape().Locate(replica.Position([]byte("big")))
	// The first exchange reads the hash on both sides to start its kept
	// bucket digests; the ones timed find them kept.
	x.write(b, string(replica.ElementName([]byte("big"), replica.ElementField, replica.ElementID([]byte("field:warm")))), "w", false)
	if _, err := Exchange(context.Background(), x.trees, x.store, &MemRemote{Trees: y.trees, Store: y.store}, p, ExchangeOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		x.write(b, string(replica.ElementName([]byte("big"), replica.ElementField, replica.ElementID(fmt.Appendf(nil, "field:%d", i)))), "changed", false)
		remote := &MemRemote{Trees: y.trees, Store: y.store}
		res, err := Exchange(context.Background(), x.trees, x.store, remote, p, ExchangeOptions{})
		if err != nil || res.Pushed != 1 {
			b.Fatalf("%+v %v", res, err)
		}
		b.ReportMetric(float64(remote.Bytes.Load()), "bytes/exchange")
	}
}

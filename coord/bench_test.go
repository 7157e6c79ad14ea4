package coord

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// benchCluster is three coordinators (N=3, R=2, W=2) over Pebble stores
// on the in-memory transport, closed when the benchmark ends.
func benchCluster(b *testing.B) []*Coordinator {
	b.Helper()
	net := NewMemNetwork(1)
	ids := []string{"n1", "n2", "n3"}
	owners := gossip.Assign(nil, ids, 64, 3)
	log := slog.New(slog.DiscardHandler)
	var coords []*Coordinator
	for _, id := range ids {
		s, err := replica.Open(b.TempDir(), replica.Options{NodeID: id, Fsync: replica.FsyncNo, ObjectCache: 32 << 20, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		c := New(s, net.Transport(id), staticPlacement{owners, 3}, Options{Self: id, N: 3, R: 2, W: 2, Timeout: time.Second, Logger: log})
		net.Add(id, s, c)
		coords = append(coords, c)
	}
	return coords
}

// BenchmarkWriteFanout is a SET through a 3-node cluster on the in-memory
// transport: the coordinator's write, sent to the other replicas and
// answered at W=2.
func BenchmarkWriteFanout(b *testing.B) {
	coords := benchCluster(b)
	val := make([]byte, 100)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		key := fmt.Appendf(nil, "key:%d", i%10000)
		i++
		if _, err := coords[i%3].Write(context.Background(), key, Op{Kind: Put, Value: val}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range coords {
		_ = c.Wait(context.Background())
	}
}

// BenchmarkReadQuorum is a GET at R=2 through the same cluster.
func BenchmarkReadQuorum(b *testing.B) {
	coords := benchCluster(b)
	for i := range 1000 {
		coords[0].Write(context.Background(), fmt.Appendf(nil, "key:%d", i), Op{Kind: Put, Value: []byte("v")})
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := coords[i%3].Get(context.Background(), fmt.Appendf(nil, "key:%d", i%1000), 0); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range coords {
		_ = c.Wait(context.Background())
	}
}

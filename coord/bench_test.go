package coord

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/peer"
	"github.com/dynakv/dynakv/replica"
)

// precomputed is a staticPlacement whose preference lists are computed
// once, as gossip.Cluster's are, so that benchmarks measure the write and
// not the test ring's allocations.
type precomputed struct {
	staticPlacement
	lists [][]string
}

func newPrecomputed(owners []string, n int) precomputed {
	p := precomputed{staticPlacement: staticPlacement{owners, n}}
	for part := range owners {
		p.lists = append(p.lists, gossip.Preference(owners, part, len(owners)))
	}
	return p
}

func (p precomputed) Preference(pos uint64) ([]string, []string, []string) {
	all := p.lists[replica.Partition(pos, len(p.owners))]
	return all[:p.n], all[p.n:], nil
}

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
		c := New(s, net.Transport(id), newPrecomputed(owners, 3), Options{Self: id, N: 3, R: 2, W: 2, Timeout: time.Second, Logger: log})
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

// BenchmarkWriteFanoutNet is BenchmarkWriteFanout over the real peer
// protocol on loopback: each node's PeerServer and a shared-nothing Peers
// client per coordinator, written to by 50 concurrent callers as
// redis-benchmark's clients would.
func BenchmarkWriteFanoutNet(b *testing.B) {
	ids := []string{"n1", "n2", "n3"}
	owners := gossip.Assign(nil, ids, 64, 3)
	log := slog.New(slog.DiscardHandler)
	addrs := map[string]string{}
	stores := map[string]*replica.Store{}
	for _, id := range ids {
		s, err := replica.Open(b.TempDir(), replica.Options{NodeID: id, Fsync: replica.FsyncNo, ObjectCache: 32 << 20, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ps := peer.NewServer(s, "", log)
		go ps.Serve(ln)
		b.Cleanup(func() { ps.Close(context.Background()) })
		addrs[id], stores[id] = ln.Addr().String(), s
	}
	var coords []*Coordinator
	for _, id := range ids {
		peers := peer.NewClient("", log)
		b.Cleanup(func() { peers.Close() })
		tr := NewNetTransport(peers, func(n string) (string, bool) { a, ok := addrs[n]; return a, ok })
		coords = append(coords, New(stores[id], tr, newPrecomputed(owners, 3), Options{Self: id, N: 3, R: 2, W: 2, Timeout: time.Second, Logger: log}))
	}
	val := make([]byte, 100)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(25) // 50 callers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			key := fmt.Appendf(nil, "key:%d", i%100000)
			if _, err := coords[0].Write(context.Background(), key, Op{Kind: Put, Value: val}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	for _, c := range coords {
		_ = c.Wait(context.Background())
	}
}

package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// testCluster is a cluster of coordinators over real stores on a
// MemNetwork, with a fixed ring.
type testCluster struct {
	t      *testing.T
	net    *MemNetwork
	ids    []string
	owners []string
	n      int
	nodes  map[string]*testNode
}

type testNode struct {
	store *replica.Store
	coord *Coordinator
}

// staticPlacement is a fixed ring; every node is up.
type staticPlacement struct {
	owners []string
	n      int
}

func (p staticPlacement) Preference(pos uint64) ([]string, []string, []string) {
	all := gossip.Preference(p.owners, replica.Partition(pos, len(p.owners)), len(p.owners))
	return all[:p.n], all[p.n:], nil
}

func (p staticPlacement) Up(string) bool { return true }

func (p staticPlacement) Partitions() int { return len(p.owners) }

func (p staticPlacement) Nodes() []string { return gossip.Ring{Owners: p.owners}.Members() }

// Legacy is false: these rings place keys by slot positions.
func (p staticPlacement) Legacy() bool { return false }

// Zone is "" and SpreadAcks false: these rings have no zones.
func (p staticPlacement) Zone(string) string { return "" }

// SpreadAcks implements Placement.
func (p staticPlacement) SpreadAcks() bool { return false }

// ContextKey is one key for every node, as a cluster shares one.
func (p staticPlacement) ContextKey() []byte { return []byte("coord test context key") }

func (p staticPlacement) Sole() string {
	if m := p.Nodes(); len(m) == 1 {
		return m[0]
	}
	return ""
}

func newTestCluster(t *testing.T, seed uint64, nodes, n, r, w int, timeout time.Duration) *testCluster {
	t.Helper()
	t.Logf("seed %d", seed)
	tc := &testCluster{t: t, net: NewMemNetwork(seed), n: n, nodes: map[string]*testNode{}}
	for i := range nodes {
		tc.ids = append(tc.ids, fmt.Sprintf("n%d", i+1))
	}
	tc.owners = gossip.Assign(nil, tc.ids, 64, n)
	log := slog.New(slog.DiscardHandler)
	for _, id := range tc.ids {
		store, err := replica.Open(t.TempDir(), replica.Options{NodeID: id, Fsync: replica.FsyncNo, CacheSize: 8 << 20, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		c := New(store, tc.net.Transport(id), staticPlacement{tc.owners, n},
			Options{Self: id, N: n, R: r, W: w, Timeout: timeout, Logger: log})
		tc.net.Add(id, store, c)
		tc.nodes[id] = &testNode{store, c}
		t.Cleanup(func() {
			_ = c.Wait(context.Background())
			store.Close()
		})
	}
	return tc
}

// primaries returns the key's replicas in preference order.
func (tc *testCluster) primaries(key string) []string {
	p, _, _ := staticPlacement{tc.owners, tc.n}.Preference(replica.Position([]byte(key)))
	return p
}

// outsider returns a node that is not a replica of key.
func (tc *testCluster) outsider(key string) string {
	for _, id := range tc.ids {
		if !slices.Contains(tc.primaries(key), id) {
			return id
		}
	}
	tc.t.Fatalf("every node replicates %s", key)
	return ""
}

func (tc *testCluster) put(via, key, value string, op Op) (Result, error) {
	op.Kind, op.Value = Put, []byte(value)
	return tc.nodes[via].coord.Write(context.Background(), []byte(key), op)
}

// local returns the live values node holds for key, sorted.
func (tc *testCluster) local(node, key string) []string {
	o, err := tc.nodes[node].store.Get([]byte(key))
	if err != nil {
		tc.t.Fatal(err)
	}
	var vs []string
	for _, s := range o.Live(time.Now().UnixMilli()) {
		vs = append(vs, string(s.Value))
	}
	slices.Sort(vs)
	return vs
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestQuorumCounting(t *testing.T) {
	tc := newTestCluster(t, 1, 3, 3, 2, 2, 200*time.Millisecond)
	key := "k"
	p := tc.primaries(key)
	tc.net.Partition([]string{p[0], p[1]}, []string{p[2]})
	if _, err := tc.put(p[0], key, "v1", Op{}); err != nil {
		t.Fatalf("W=2 with one replica cut off: %v", err)
	}
	if _, err := tc.put(p[0], key, "v2", Op{W: 3}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("W=3 with one replica cut off: %v, want ErrUnavailable", err)
	}
	if _, err := tc.nodes[p[0]].coord.Get(context.Background(), []byte(key), 3); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("R=3 with one replica cut off: %v, want ErrUnavailable", err)
	}
	o, err := tc.nodes[p[0]].coord.Get(context.Background(), []byte(key), 2)
	if err != nil {
		t.Fatalf("R=2: %v", err)
	}
	if s, _ := o.Resolve(time.Now().UnixMilli()); string(s.Bytes) != "v2" {
		t.Fatalf("R=2 read %q: the failed W=3 write still reached two replicas and must be read", s.Bytes)
	}
	if _, err := tc.nodes[p[0]].coord.Get(context.Background(), []byte(key), 4); !errors.Is(err, ErrBadQuorum) {
		t.Fatalf("R=4 > N: %v, want ErrBadQuorum", err)
	}
}

func TestUnavailableWhenMostReplicasDrop(t *testing.T) {
	tc := newTestCluster(t, 2, 3, 3, 2, 2, time.Second)
	tc.net.SetDrop(1)
	start := time.Now()
	_, err := tc.put(tc.primaries("x")[0], "x", "v", Op{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with every peer refusing: %v", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatalf("refused peers should fail the write at once, took %v", time.Since(start))
	}
}

func TestForwarding(t *testing.T) {
	tc := newTestCluster(t, 3, 5, 3, 2, 2, time.Second)
	for i := range 50 {
		key := fmt.Sprintf("key%d", i)
		via := tc.outsider(key)
		if _, err := tc.put(via, key, "v", Op{}); err != nil {
			t.Fatalf("write via %s: %v", via, err)
		}
		if got := tc.local(via, key); len(got) != 0 {
			t.Fatalf("%s is not a replica of %s but stored %v", via, key, got)
		}
		acked := 0
		for _, p := range tc.primaries(key) {
			if slices.Equal(tc.local(p, key), []string{"v"}) {
				acked++
			}
		}
		if acked < 2 {
			t.Fatalf("%s is on %d replicas, want at least W=2", key, acked)
		}
	}
	// The first primary cut off: the forwarder cannot know whether it got
	// the write, so it answers UNAVAILABLE rather than run it elsewhere
	// too; the next write goes to the next primary.
	key := "key0"
	p := tc.primaries(key)
	via := tc.outsider(key)
	tc.net.Partition([]string{via}, []string{p[0]})
	if _, err := tc.put(via, key, "v2", Op{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with the first primary cut off from the forwarder: %v, want UNAVAILABLE", err)
	}
	if _, err := tc.put(via, key, "v3", Op{}); err != nil {
		t.Fatalf("the next write, with the first primary known to have failed: %v", err)
	}
	// A primary that refuses (off the network) provably got nothing: the
	// same write goes on to the next at once.
	key = "key1"
	p = tc.primaries(key)
	via = tc.outsider(key)
	tc.net.Remove(p[0])
	if _, err := tc.put(via, key, "v2", Op{}); err != nil {
		t.Fatalf("write with the first primary refusing: %v", err)
	}
}

func TestSiblingsFromTwoCoordinators(t *testing.T) {
	tc := newTestCluster(t, 4, 3, 3, 2, 2, time.Second)
	key := "cart"
	p := tc.primaries(key)
	if _, err := tc.put(p[0], key, "base", Op{}); err != nil {
		t.Fatal(err)
	}
	read, err := tc.nodes[p[0]].coord.Get(context.Background(), []byte(key), 3)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, via := range []string{p[0], p[1]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := Op{Context: read.Context(), HasContext: true}
			if _, err := tc.put(via, key, fmt.Sprintf("from-%d", i), op); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, via := range tc.ids {
		o, err := tc.nodes[via].coord.Get(context.Background(), []byte(key), 3)
		if err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, s := range o.Live(time.Now().UnixMilli()) {
			vs = append(vs, string(s.Value))
		}
		slices.Sort(vs)
		if !slices.Equal(vs, []string{"from-0", "from-1"}) {
			t.Fatalf("read via %s: %v, want both concurrent writes", via, vs)
		}
	}
}

func TestPartitionedReplicaCatchesUpByReadRepair(t *testing.T) {
	tc := newTestCluster(t, 5, 3, 3, 2, 2, 200*time.Millisecond)
	tc.net.SetDelay(2 * time.Millisecond)
	key := "k"
	p := tc.primaries(key)
	tc.net.Partition([]string{p[0], p[1]}, []string{p[2]})
	for i := range 5 {
		if _, err := tc.put(p[0], key, fmt.Sprint(i), Op{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := tc.local(p[2], key); len(got) != 0 {
		t.Fatalf("cut-off replica got %v", got)
	}
	tc.net.Heal()
	before := tc.nodes[p[0]].coord.ReadRepairs()
	if _, err := tc.nodes[p[0]].coord.Get(context.Background(), []byte(key), 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "read repair of the stale replica", func() bool {
		return slices.Equal(tc.local(p[2], key), []string{"4"})
	})
	// The repair counts once its merge is acknowledged, just after the
	// replica has stored it.
	eventually(t, "read_repairs to count the repair", func() bool {
		return tc.nodes[p[0]].coord.ReadRepairs() > before
	})
}

func TestConditionalWriteDecidesOnQuorumRead(t *testing.T) {
	tc := newTestCluster(t, 6, 3, 3, 2, 2, time.Second)
	key := "lock"
	p := tc.primaries(key)
	// The value reaches p[1] and p[2] only; p[0] has never seen it.
	tc.net.Partition([]string{p[0]}, []string{p[1], p[2]})
	if _, err := tc.put(p[1], key, "held", Op{}); err != nil {
		t.Fatal(err)
	}
	tc.net.Heal()
	res, err := tc.put(p[0], key, "mine", Op{Cond: IfAbsent})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written {
		t.Fatal("NX wrote over a value the quorum read should have seen")
	}
}

// Increments made through different nodes while they are partitioned all
// count once the replicas meet.
func TestCountersConvergeAcrossAPartition(t *testing.T) {
	tc := newTestCluster(t, 21, 3, 3, 2, 1, 200*time.Millisecond)
	key := []byte("hits")
	p := tc.primaries("hits")
	tc.net.Partition([]string{p[0]}, []string{p[1], p[2]})
	for range 5 {
		if _, err := tc.nodes[p[0]].coord.Write(context.Background(), key, Op{Kind: Incr, Delta: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := tc.nodes[p[1]].coord.Write(context.Background(), key, Op{Kind: Incr, Delta: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tc.nodes[p[2]].coord.Write(context.Background(), key, Op{Kind: Incr, Delta: -2}); err != nil {
		t.Fatal(err)
	}
	tc.net.Heal()
	o, err := tc.nodes[p[0]].coord.Get(context.Background(), key, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := o.Resolve(time.Now().UnixMilli()); string(v.Bytes) != "33" {
		t.Fatalf("after the partition healed: %s, want 5+30-2 = 33", v.Bytes)
	}
	// An INCR replies with what its read quorum saw, which need not be
	// every replica yet; what must hold is that nothing is lost.
	if _, err := tc.nodes[p[1]].coord.Write(context.Background(), key, Op{Kind: Incr, Delta: 1}); err != nil {
		t.Fatal(err)
	}
	o, err = tc.nodes[p[2]].coord.Get(context.Background(), key, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := o.Resolve(time.Now().UnixMilli()); string(v.Bytes) != "34" {
		t.Fatalf("after one more INCR: %s, want 34", v.Bytes)
	}
}

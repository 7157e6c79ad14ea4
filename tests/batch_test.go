package tests

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
	"github.com/redis/go-redis/v9"
)

// TestTransactionsReachReplicasWhole: a transaction's writes reach each
// other replica as one write, stored in one Pebble batch, or kept whole
// as hints. A writer runs MULTI SET {acct}a i, SET {acct}b i, SADD
// {acct}s i, EXEC, over and over through the node that is not a replica
// of the slot's first two; a replica other than the slot's leader is
// SIGKILLed at random moments and, before it restarts, its data
// directory is opened here: {acct}a and {acct}b must hold the same
// number i, and the set member i and none above it (older members may
// still be on their way as hints). With the writes sent
// one by one (before the group write), a kill between two of them left
// the replica with a = i and b = i-1. Then every acknowledged transaction
// must read back, whole, through every node.
func TestTransactionsReachReplicasWhole(t *testing.T) {
	// Under fsync always a write is on disk before it is acknowledged,
	// so what a killed replica holds is exactly what it had applied.
	nodes := StartCluster(t, 3, "[storage]\nfsync = \"always\"\n")
	pf := preflist(t, nodes[0], "{acct}a")
	byID := map[string]*Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	victim := byID[pf[1]]
	via := byID[pf[2]]
	stop := make(chan struct{})
	var acked atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rdb := via.Redis()
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := rdb.TxPipelined(c, func(p redis.Pipeliner) error {
				p.Set(c, "{acct}a", i, 0)
				p.Set(c, "{acct}b", i, 0)
				p.SAdd(c, "{acct}s", i)
				return nil
			})
			if err == nil {
				acked.Store(i)
			}
			// A new hash each time: its header and first field are one
			// write too.
			rdb.HSet(c, "{acct}h"+strconv.FormatInt(i, 10), "f", i)
			cancel()
		}
	}()
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 8 {
		// Long enough for the others to see the victim up again and send
		// it writes, not hints.
		time.Sleep(time.Duration(1500+rng.IntN(500)) * time.Millisecond)
		victim.Kill()
		a, b, top, members := readStored(t, victim, acked.Load()+1)
		t.Logf("round %d: killed %s at a=%d b=%d, members %d (the highest %d); %d acknowledged", round, victim.ID, a, b, members, top, acked.Load())
		if a != b || top != a {
			t.Fatalf("%s stored part of a transaction: a=%d b=%d, highest member %d", victim.ID, a, b, top)
		}
		victim.Start()
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	last := acked.Load()
	if last < 10 {
		t.Fatalf("only %d transactions acknowledged", last)
	}
	for _, n := range nodes {
		rdb := n.Redis()
		deadline := time.Now().Add(20 * time.Second)
		for {
			a, _ := rdb.Get(ctx(t), "{acct}a").Int64()
			b, _ := rdb.Get(ctx(t), "{acct}b").Int64()
			card, _ := rdb.SCard(ctx(t), "{acct}s").Result()
			if a >= last && a == b && card == a {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s reads a=%d b=%d, %d members; %d acknowledged", n.ID, a, b, card, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// readStored opens a stopped node's data directory and returns what its
// replica holds of {acct}a and {acct}b, and the highest member of
// {acct}s and how many it has. It fails the test if a hash {acct}h1 to
// {acct}h<hashes> is there without its field.
func readStored(t *testing.T, n *Node, hashes int64) (a, b, top, members int64) {
	t.Helper()
	s, err := replica.Open(filepath.Join(n.Dir, "data"), replica.Options{NodeID: n.ID, Fsync: replica.FsyncNo,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open %s's store: %v", n.ID, err)
	}
	defer s.Close()
	value := func(key string) int64 {
		o, err := s.Get([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		v, ok := o.Resolve(time.Now().UnixMilli())
		if !ok {
			return 0
		}
		x, err := strconv.ParseInt(string(v.Bytes), 10, 64)
		if err != nil {
			t.Fatalf("%s holds %q", key, v.Bytes)
		}
		return x
	}
	a, b = value("{acct}a"), value("{acct}b")
	for i := int64(1); i <= hashes; i++ {
		key := []byte("{acct}h" + strconv.FormatInt(i, 10))
		h, err := s.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		if h.Empty() {
			continue
		}
		f, err := s.Get(replica.ElementName(key, replica.ElementField, replica.ElementID([]byte("f"))))
		if err != nil {
			t.Fatal(err)
		}
		if f.Empty() {
			t.Fatalf("%s holds the hash %s without its field", n.ID, key)
		}
	}
	prefix := replica.AppendElementPrefix(nil, []byte("{acct}s"), replica.ElementMember)
	els, err := s.Elements(prefix, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range els {
		if _, ok := e.Object.Resolve(0); !ok {
			continue
		}
		_, _, id, _ := replica.SplitElement(e.Key)
		m, err := strconv.ParseInt(string(id[replica.IDLen:]), 10, 64)
		if err != nil {
			t.Fatalf("member %q", id)
		}
		top, members = max(top, m), members+1
	}
	return a, b, top, members
}

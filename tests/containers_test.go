package tests

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestContainersConvergeUnderPartition cuts a 3-node cluster (R = W = 1,
// so both sides take writes) into {n1} and {n2, n3} with iptables and
// makes conflicting container writes on each side, then heals it and
// waits for every node to read the same:
//   - DEL of a set on n1's side, SADD of a new member on the other: the
//     new member survives (add-wins), the members the DEL observed are gone;
//   - HSET of one field on both sides: the later write is what every node
//     reads;
//   - HINCRBY of one field on both sides: both increments count.
func TestContainersConvergeUnderPartition(t *testing.T) {
	fw := newFirewall(t)
	nodes := startNetCluster(t, 3, "[replication]\nr = 1\nw = 1\n[antientropy]\ninterval = \"2s\"\n")
	c := ctx(t)
	a, b := nodes[0].Redis(), nodes[1].Redis()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.SAdd(c, "tags", "red", "green", "blue").Err())
	must(a.HSet(c, "cart", "sku", "1", "n", "10").Err())
	// Every node holds the set and the hash before the cut.
	waitAll(t, nodes, 30*time.Second, "the writes before the cut", func(rdb *redis.Client) (string, error) {
		ms, err := rdb.SMembers(c, "tags").Result()
		slices.Sort(ms)
		h, err2 := rdb.HGetAll(c, "cart").Result()
		return fmt.Sprint(ms, h), errorsJoin(err, err2)
	}, "[blue green red] map[n:10 sku:1]")

	fw.split(nodes[:1], nodes[1:])
	must(a.Del(c, "tags").Err())
	must(b.SAdd(c, "tags", "yellow").Err())
	must(a.HSet(c, "cart", "sku", "from-n1").Err())
	time.Sleep(20 * time.Millisecond) // the other side's write is the later one
	must(b.HSet(c, "cart", "sku", "from-n2").Err())
	must(a.HIncrBy(c, "cart", "n", 5).Err())
	must(b.HIncrBy(c, "cart", "n", 7).Err())
	// Each side reads its own writes while cut off.
	if ms, _ := a.SMembers(c, "tags").Result(); len(ms) != 0 {
		t.Fatalf("n1 reads %v after its DEL", ms)
	}
	fw.heal()

	waitAll(t, nodes, 90*time.Second, "convergence after healing", func(rdb *redis.Client) (string, error) {
		ms, err := rdb.SMembers(c, "tags").Result()
		slices.Sort(ms)
		h, err2 := rdb.HGetAll(c, "cart").Result()
		return fmt.Sprint(ms, h), errorsJoin(err, err2)
	}, "[yellow] map[n:22 sku:from-n2]")
	t.Log("after healing every node reads tags = [yellow] (DEL on n1, SADD yellow on n2: add-wins), " +
		"cart.sku = from-n2 (the later of two concurrent HSETs), cart.n = 22 (10 + 5 on n1 + 7 on n2)")
}

// waitAll polls read on every node until each answers want, and fails
// after timeout with what each answered last.
func waitAll(t *testing.T, nodes []*Node, timeout time.Duration, what string, read func(*redis.Client) (string, error), want string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got []string
		ok := true
		for _, n := range nodes {
			v, err := read(n.Redis())
			if err != nil {
				v = "error: " + err.Error()
			}
			got = append(got, n.ID+": "+v)
			ok = ok && v == want
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want %s on every node within %v, got\n%s", what, want, timeout, strings.Join(got, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestSetAddsSurviveKills is the cart test with sets: clients SADD unique
// members to a handful of sets through every node while nodes are killed
// with SIGKILL and restarted one after another; once all run again, every
// acknowledged member is in its set, read through every node.
func TestSetAddsSurviveKills(t *testing.T) {
	nodes := StartCluster(t, 3, "[antientropy]\ninterval = \"2s\"\n")
	const sets = 5
	var mu sync.Mutex
	acked := map[string][]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := map[string]int{}
	for w := range 8 {
		wg.Add(1)
		// Each writer dials through clients of its own: the harness's
		// client of a node (its PING after a restart, waitRing) is not to
		// share a pool that the writers' failed dials marked broken.
		clients := make([]*redis.Client, len(nodes))
		for i, n := range nodes {
			clients[i] = redis.NewClient(&redis.Options{Addr: n.Client, Protocol: 2, MaxRetries: -1})
			defer clients[i].Close()
		}
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("basket:%d", rng.IntN(sets))
				member := fmt.Sprintf("w%d-%d", w, i)
				rdb := clients[rng.IntN(len(clients))]
				if err := rdb.SAdd(ctx(t), key, member).Err(); err != nil {
					mu.Lock()
					errs[errKind(err)]++
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[key] = append(acked[key], member)
				mu.Unlock()
			}
		}()
	}
	for round := range 3 {
		time.Sleep(1500 * time.Millisecond)
		victim := nodes[round%len(nodes)]
		victim.Kill()
		time.Sleep(1500 * time.Millisecond)
		victim.Start()
		waitRing(t, nodes, 3)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	total := 0
	for _, ms := range acked {
		total += len(ms)
	}
	if total == 0 {
		t.Fatal("no SADD was acknowledged")
	}
	waitHintsDrained(t, nodes, 60*time.Second)
	for _, n := range nodes {
		for key, ms := range acked {
			got, err := n.Redis().SMembers(ctx(t), key).Result()
			if err != nil {
				t.Fatalf("SMEMBERS %s on %s: %v", key, n.ID, err)
			}
			have := map[string]bool{}
			for _, m := range got {
				have[m] = true
			}
			for _, m := range ms {
				if !have[m] {
					t.Fatalf("%s on %s: acknowledged member %s missing (%d of %d read)", key, n.ID, m, len(got), len(ms))
				}
			}
			if len(got) != len(ms) {
				t.Logf("%s on %s: %d members read, %d acknowledged (the rest answered an error and landed anyway)", key, n.ID, len(got), len(ms))
			}
		}
	}
	t.Logf("%d acknowledged SADDs over %d sets, 3 kill -9 and restarts: none lost, read through every node; errors %v", total, sets, errs)
}

// TestExpiredContainerStaysGone: a hash that expires reads as absent
// through every node, anti-entropy turns its header into a tombstone
// whose removal clock takes the fields written before the expiry (INFO
// expired_keys counts it), and a hash re-created under the same key holds
// only its new fields, never the expired ones.
func TestExpiredContainerStaysGone(t *testing.T) {
	nodes := StartCluster(t, 3, "[antientropy]\ninterval = \"1s\"\n")
	c := ctx(t)
	a, b := nodes[0].Redis(), nodes[1].Redis()
	if err := a.HSet(c, "session", "user", "ann", "cart", "3").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.SAdd(c, "seen", "x", "y").Err(); err != nil {
		t.Fatal(err)
	}
	a.PExpire(c, "session", 300*time.Millisecond)
	a.PExpire(c, "seen", 300*time.Millisecond)
	time.Sleep(400 * time.Millisecond)
	for _, n := range nodes {
		if v, err := n.Redis().HGetAll(c, "session").Result(); err != nil || len(v) != 0 {
			t.Fatalf("%s reads the expired hash as %v %v", n.ID, v, err)
		}
		if v, _ := n.Redis().Exists(c, "session", "seen").Result(); v != 0 {
			t.Fatalf("%s: EXISTS of the expired keys = %d", n.ID, v)
		}
	}
	// Anti-entropy turns both headers into tombstones (counted where each
	// is made), which exchanges then carry to the other replicas.
	deadline := time.Now().Add(30 * time.Second)
	for sumInfo(t, nodes, "expired_keys") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("expired_keys %d after 30 s, want 2", sumInfo(t, nodes, "expired_keys"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // three exchange rounds
	for _, n := range nodes {
		if v, err := n.Redis().HGetAll(c, "session").Result(); err != nil || len(v) != 0 {
			t.Fatalf("%s reads %v %v after the expiry's tombstone: expired fields came back", n.ID, v, err)
		}
		if v, err := n.Redis().Type(c, "seen").Result(); err != nil || v != "none" {
			t.Fatalf("%s: TYPE seen = %q %v", n.ID, v, err)
		}
	}
	if err := b.HSet(c, "session", "user", "bob").Err(); err != nil {
		t.Fatal(err)
	}
	waitAll(t, nodes, 10*time.Second, "the re-created hash", func(rdb *redis.Client) (string, error) {
		v, err := rdb.HGetAll(c, "session").Result()
		return fmt.Sprint(v), err
	}, "map[user:bob]")
	// SET over the hash replaces it whole: once the string is deleted, a
	// hash made again under the key holds only its own fields.
	if err := a.Set(c, "session", "plain", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(c, "session").Result(); err != nil || v != "plain" {
		t.Fatalf("GET after SET over a hash: %q %v", v, err)
	}
	if err := b.Del(c, "session").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.HSet(c, "session", "n", "1").Err(); err != nil {
		t.Fatal(err)
	}
	waitAll(t, nodes, 10*time.Second, "a hash made after SET over the old one", func(rdb *redis.Client) (string, error) {
		v, err := rdb.HGetAll(c, "session").Result()
		return fmt.Sprint(v), err
	}, "map[n:1]")
}

package tests

import (
	"bufio"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartCluster starts size nodes: the first founds the cluster, the others
// join it through the first. It returns once every node shows the same
// committed ring with all of them.
func StartCluster(t *testing.T, size int, extra string) []*Node {
	return StartClusterQ(t, size, 0, extra)
}

// StartClusterQ is StartCluster with q partitions (0: the default).
func StartClusterQ(t *testing.T, size, q int, extra string) []*Node {
	return startNodes(t, size, extra, func(_ int, n *Node) { n.Partitions = q })
}

// startNodes is StartCluster with setup called on node i before it
// starts, to give it a zone, an address or a partition count.
func startNodes(t *testing.T, size int, extra string, setup func(i int, n *Node)) []*Node {
	t.Helper()
	var nodes []*Node
	name := uniqueName(t)
	for i := range size {
		n := NewNode(t, fmt.Sprintf("n%d", i+1), extra)
		n.ClusterName = name
		if i > 0 {
			n.Seeds = []string{nodes[0].Gossip}
		}
		setup(i, n)
		n.Start()
		nodes = append(nodes, n)
	}
	waitRing(t, nodes, size)
	return nodes
}

// ringOf returns what DYN.RING says on n: the epoch and each node's
// partition count.
func ringOf(t *testing.T, n *Node) (uint64, map[string]int64) {
	t.Helper()
	v, err := n.Redis().Do(ctx(t), "DYN.RING").Slice()
	if err != nil {
		t.Fatalf("DYN.RING on %s: %v", n.ID, err)
	}
	counts := map[string]int64{}
	for _, e := range v[1:] {
		pair := e.([]any)
		counts[pair[0].(string)] = pair[1].(int64)
	}
	return uint64(v[0].(int64)), counts
}

// waitRing waits until every node in nodes shows the same ring epoch with
// want members, each owning partitions: a committed ring.
func waitRing(t *testing.T, nodes []*Node, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		epochs := map[uint64]bool{}
		ok := true
		for _, n := range nodes {
			epoch, counts := ringOf(t, n)
			epochs[epoch] = true
			owning := 0
			for _, c := range counts {
				if c > 0 {
					owning++
				}
			}
			ok = ok && owning == want && len(counts) == want
		}
		if ok && len(epochs) == 1 {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				e, c := ringOf(t, n)
				t.Logf("%s: epoch %d %v", n.ID, e, c)
			}
			t.Fatalf("the ring did not settle on %d members", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func preflist(t *testing.T, n *Node, key string) []string {
	t.Helper()
	v, err := n.Redis().Do(ctx(t), "DYN.PREFLIST", key).Slice()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range v {
		ids = append(ids, e.([]any)[0].(string))
	}
	return ids
}

func TestClusterReadsAndPreflists(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			nodes := StartCluster(t, size, "")
			c := ctx(t)
			for i := range 50 {
				key := fmt.Sprintf("k%d", i)
				via := nodes[i%size]
				if err := via.Redis().Set(c, key, fmt.Sprint(i), 0).Err(); err != nil {
					t.Fatalf("SET %s via %s: %v", key, via.ID, err)
				}
				for _, n := range nodes {
					if v, err := n.Redis().Get(c, key).Result(); err != nil || v != fmt.Sprint(i) {
						t.Fatalf("GET %s via %s = %q, %v", key, n.ID, v, err)
					}
				}
				want := preflist(t, nodes[0], key)
				if len(want) != 3 || len(slices.Compact(slices.Sorted(slices.Values(want)))) != 3 {
					t.Fatalf("DYN.PREFLIST %s = %v, want 3 distinct nodes", key, want)
				}
				for _, n := range nodes[1:] {
					if got := preflist(t, n, key); !slices.Equal(got, want) {
						t.Fatalf("DYN.PREFLIST %s: %s says %v, %s says %v", key, nodes[0].ID, want, n.ID, got)
					}
				}
			}
			members, err := nodes[0].Redis().Do(c, "DYN.MEMBERS").Slice()
			if err != nil || len(members) != size {
				t.Fatalf("DYN.MEMBERS = %v, %v", members, err)
			}
			for _, m := range members {
				if row := m.([]any); len(row) != 6 || row[4] != "alive" {
					t.Fatalf("DYN.MEMBERS row %v", row)
				}
			}
			info, _ := nodes[1].Redis().Info(c, "cluster").Result()
			if !strings.Contains(info, fmt.Sprintf("members_alive:%d", size)) || !strings.Contains(info, "node_id:n2") {
				t.Fatalf("INFO cluster on n2:\n%s", info)
			}
		})
	}
}

func TestClusterConcurrentDPUTsAreSiblings(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	key := "cart"
	if err := nodes[0].Redis().Set(c, key, "base", 0).Err(); err != nil {
		t.Fatal(err)
	}
	seen, _, err := dget(c, nodes[0].Redis(), key, 3)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, n := range nodes[:2] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Redis().Do(c, "DPUT", key, seen, fmt.Sprintf("from-%s", n.ID)).Err(); err != nil {
				t.Errorf("DPUT %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	var last string
	for _, n := range nodes {
		ctxt, sibs, err := dget(c, n.Redis(), key, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := items(sibs); !slices.Equal(got, []string{"from-n1", "from-n2"}) {
			t.Fatalf("DGET via %s = %v, want both siblings", n.ID, got)
		}
		last = ctxt
	}
	if err := nodes[2].Redis().Do(c, "DPUT", key, last, "merged").Err(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if _, sibs, err := dget(c, n.Redis(), key, 3); err != nil || len(sibs) != 1 || sibs[0] != "merged" {
			t.Fatalf("after the merge, DGET via %s = %v, %v", n.ID, sibs, err)
		}
	}
}

func TestClusterShoppingCart(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	load := newCartLoad(t, nodes, 4)
	load.run(16, 25, nil)()
	if errs := load.errorSummary(); len(errs) > 0 {
		t.Fatalf("adds failed on a healthy cluster: %v", errs)
	}
	load.verify(nodes, 3)
}

func TestClusterSurvivesKill9(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	victim := nodes[2]
	victim.Kill()
	for i := range 100 {
		key := fmt.Sprintf("k%d", i)
		via := nodes[i%2]
		if err := via.Redis().Set(c, key, fmt.Sprintf("v%d", i), 0).Err(); err != nil {
			t.Fatalf("SET with one of three down: %v", err)
		}
		if v, err := nodes[(i+1)%2].Redis().Get(c, key).Result(); err != nil || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("GET with one of three down: %q, %v", v, err)
		}
	}
	err := nodes[0].Redis().Do(c, "DPUT", "probe", "", "x", "W", "3").Err()
	if !errIs(err, "UNAVAILABLE") {
		t.Fatalf("DPUT W 3 with a node down: %v, want -UNAVAILABLE", err)
	}
	victim.Start()
	for i := range 100 {
		if _, _, err := dget(c, victim.Redis(), fmt.Sprintf("k%d", i), 0); err != nil {
			t.Fatalf("read through the restarted node: %v", err)
		}
	}
	// Read repair runs after the reply: wait until it has reached the node.
	nodes[0].Stop()
	nodes[1].Stop()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 100; i++ {
		key := fmt.Sprintf("k%d", i)
		_, sibs, err := dget(c, victim.Redis(), key, 1)
		if err == nil && len(sibs) == 1 && sibs[0] == fmt.Sprintf("v%d", i) {
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s alone with R 1: %s = %v, %v; read repair did not bring it up to date", victim.ID, key, sibs, err)
		}
		time.Sleep(20 * time.Millisecond)
		i--
	}
}

func TestClusterJoinKeepsEveryKey(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	const keys = 10000
	loadKeys(t, nodes[0], keys)
	joiner := NewNode(t, "n4", "")
	joiner.ClusterName = nodes[0].ClusterName
	joiner.Seeds = []string{nodes[1].Gossip}
	joiner.Start()
	nodes = append(nodes, joiner)
	waitRing(t, nodes, 4)
	_, counts := ringOf(t, nodes[0])
	if counts["n4"] < 256/4-1 || counts["n4"] > 256/4+1 {
		t.Fatalf("n4 owns %d partitions, want its share of 256: %v", counts["n4"], counts)
	}
	for _, via := range []*Node{joiner, nodes[0]} {
		checkKeysR(t, via, keys, 3)
	}
}

func TestDemo(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(binary, "demo", "--nodes", "3", "--port", strconv.Itoa(port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := regexp.MustCompile(`client (127\.0\.0\.1:\d+)`)
	var addrs []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "stop with") {
		if m := addr.FindStringSubmatch(sc.Text()); m != nil {
			addrs = append(addrs, m[1])
		}
	}
	if len(addrs) != 3 {
		t.Fatalf("demo printed %v", addrs)
	}
	for _, a := range addrs {
		rc := dialRaw(t, a)
		rc.cmd("PING")
		if got := rc.line(); got != "+PONG" {
			t.Fatalf("PING %s: %q", a, got)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo did not stop cleanly: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not stop after SIGINT")
	}
}

// loadKeys writes key:i = value-i for i < count through n, pipelined.
func loadKeys(t *testing.T, n *Node, count int) {
	t.Helper()
	c := ctx(t)
	pipe := n.Redis().Pipeline()
	for i := range count {
		pipe.Set(c, fmt.Sprintf("key:%d", i), fmt.Sprintf("value-%d", i), 0)
		if i%500 == 499 || i == count-1 {
			if _, err := pipe.Exec(c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkKeysR reads key:i for i < count through n with DGET R r, pipelined,
// and requires the one value loadKeys wrote.
func checkKeysR(t *testing.T, n *Node, count, r int) {
	t.Helper()
	c := ctx(t)
	const batch = 1000 // each pipeline's replies must arrive within the read timeout, even under -race
	for start := 0; start < count; start += batch {
		pipe := n.Redis().Pipeline()
		var cmds []*redis.Cmd
		for i := start; i < min(start+batch, count); i++ {
			cmds = append(cmds, pipe.Do(c, "DGET", fmt.Sprintf("key:%d", i), "R", r))
		}
		_, _ = pipe.Exec(c)
		for j, cmd := range cmds {
			i := start + j
			v, err := cmd.Slice()
			if err != nil || len(v) != 2 || len(v[1].([]any)) != 1 || v[1].([]any)[0] != fmt.Sprintf("value-%d", i) {
				t.Fatalf("DGET key:%d R %d through %s = %v, %v", i, r, n.ID, v, err)
			}
		}
	}
}

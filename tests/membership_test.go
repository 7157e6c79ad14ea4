package tests

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynakv/dynakv/peer"
	"github.com/dynakv/dynakv/replica"
	"github.com/redis/go-redis/v9"
)

// joinNode starts a node that joins the cluster of nodes[0].
func joinNode(t *testing.T, nodes []*Node, id, extra string) *Node {
	t.Helper()
	n := NewNode(t, id, extra)
	n.ClusterName = nodes[0].ClusterName
	n.Seeds = []string{nodes[0].Gossip}
	n.Start()
	return n
}

func without(nodes []*Node, drop ...*Node) []*Node {
	var out []*Node
	for _, n := range nodes {
		if !slices.Contains(drop, n) {
			out = append(out, n)
		}
	}
	return out
}

// peerRead reads a key's object straight from a node's peer port: what
// that replica alone holds.
func peerRead(t *testing.T, n *Node, key string) replica.Object {
	t.Helper()
	opts := &redis.Options{Addr: n.Peer, Protocol: 2, DisableIdentity: true, Password: clusterSecret(n)}
	if n.Netns != "" {
		opts.Dialer = netnsDialer(n.Netns)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	v, err := c.Do(ctx(t), peer.CmdGet, key).Text()
	if err != nil {
		t.Fatalf("peer read of %s on %s: %v", key, n.ID, err)
	}
	if v == "" {
		return replica.Object{}
	}
	o, err := replica.DecodeObject([]byte(v))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// clusterSecret is the security.cluster_secret in n's config, if any.
func clusterSecret(n *Node) string {
	m := regexp.MustCompile(`cluster_secret = "([^"]*)"`).FindStringSubmatch(n.Extra)
	if m == nil {
		return ""
	}
	return m[1]
}

// itemsOf is the union of a cart object's live siblings' items.
func itemsOf(o replica.Object) []string {
	var sibs []any
	for _, s := range o.Live(time.Now().UnixMilli()) {
		sibs = append(sibs, string(s.Value))
	}
	return items(sibs)
}

// byID finds nodes by id.
func byID(nodes []*Node, id string) *Node {
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// TestMembershipChangesUnderLoad grows a cluster from 3 to 5 nodes, has
// one leave and one forgotten after kill -9, all under the shopping-cart
// load: no acknowledged add is lost, preference lists name live nodes that
// each hold the latest value, and partitions stay balanced.
func TestMembershipChangesUnderLoad(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	load := newCartLoad(t, nodes, 8)
	stop := make(chan struct{})
	wait := load.run(16, 0, stop)
	c := ctx(t)
	time.Sleep(2 * time.Second)

	t.Log("grow 3 -> 5")
	all := append(slices.Clone(nodes), joinNode(t, nodes, "n4", ""), joinNode(t, nodes, "n5", ""))
	load.setNodes(all)
	waitRing(t, all, 5)

	t.Log("DYN.LEAVE n2")
	leaver := byID(all, "n2")
	remaining := without(all, leaver)
	load.setNodes(remaining)
	if err := leaver.Redis().Do(c, "DYN.LEAVE").Err(); err != nil {
		t.Fatalf("DYN.LEAVE: %v", err)
	}
	if err := leaver.Wait(120 * time.Second); err != nil {
		t.Fatalf("the node that left did not exit cleanly: %v\n%s", err, leaver.Logs())
	}
	waitRing(t, remaining, 4)

	t.Log("kill -9 n3, DYN.FORGET n3")
	victim := byID(remaining, "n3")
	final := without(remaining, victim)
	load.setNodes(final)
	victim.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := final[0].Redis().Do(c, "DYN.FORGET", "n3").Err()
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "alive") || time.Now().After(deadline) {
			t.Fatalf("DYN.FORGET n3: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // gossip has not declared it dead yet
	}
	waitRing(t, final, 3)
	time.Sleep(2 * time.Second)
	close(stop)
	wait()
	waitHintsDrained(t, final, 60*time.Second)
	load.verify(final, 0)

	// Every cart's preference list names N distinct live nodes, and each of
	// them alone holds every acknowledged item.
	c = ctx(t) // a fresh deadline: the changes above may have taken a while
	for _, n := range final {
		n.Redis().Do(c, "DYN.REPAIR")
	}
	for i := range load.carts {
		cart := cartKey(i)
		v, err := final[0].Redis().Do(c, "DYN.PREFLIST", cart).Slice()
		if err != nil || len(v) != 3 {
			t.Fatalf("DYN.PREFLIST %s = %v, %v", cart, v, err)
		}
		var ids []string
		for _, e := range v {
			row := e.([]any)
			if row[1] != "up" || byID(final, row[0].(string)) == nil {
				t.Fatalf("DYN.PREFLIST %s lists %v, not a live member", cart, row)
			}
			ids = append(ids, row[0].(string))
		}
		if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 3 {
			t.Fatalf("DYN.PREFLIST %s repeats a node: %v", cart, ids)
		}
		want := load.acked[cart]
		for _, id := range ids {
			deadline := time.Now().Add(60 * time.Second)
			for {
				have := itemsOf(peerRead(t, byID(final, id), cart))
				missing := 0
				for _, it := range want {
					if _, ok := slices.BinarySearch(have, it); !ok {
						missing++
					}
				}
				if missing == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s alone lacks %d of the %d acknowledged items of %s", id, missing, len(want), cart)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	_, counts := ringOf(t, final[0])
	for id, n := range counts {
		if n < 256/3 || n > 256/3+1 {
			t.Fatalf("%s owns %d partitions, not within one of 256/3: %v", id, n, counts)
		}
	}
}

// TestHandoffResumesAfterReceiverRestart kills a joining node in the
// middle of taking in its partitions: after it is back the transfer
// resumes and completes, and every key is still there.
func TestHandoffResumesAfterReceiverRestart(t *testing.T) {
	extra := "[handoff]\ntransfer_rate = 3000\n"
	nodes := StartCluster(t, 3, extra)
	const keys = 20000
	loadKeys(t, nodes[0], keys)
	joiner := joinNode(t, nodes, "n4", extra)
	deadline := time.Now().Add(30 * time.Second)
	for infoInt(t, joiner, "handoff_partitions_pending") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the joiner never started its transfer")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // some partitions done, most not
	pendingBefore := infoInt(t, joiner, "handoff_partitions_pending")
	joiner.Kill()
	joiner.Start()
	all := append(slices.Clone(nodes), joiner)
	waitRing(t, all, 4)
	if !strings.Contains(joiner.Logs(), "resuming handoff") {
		t.Fatalf("the restarted node did not resume (pending before the kill: %d):\n%s", pendingBefore, joiner.Logs())
	}
	for _, n := range all {
		checkKeysR(t, n, keys, 3)
	}
}

// latencyProbe runs one client doing a GET and a SET in a loop and keeps
// every latency.
type latencyProbe struct {
	mu   sync.Mutex
	lats []time.Duration
	errs int
}

func (p *latencyProbe) run(n *Node, stop <-chan struct{}) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		rdb := redis.NewClient(&redis.Options{Addr: n.Client, Protocol: 2})
		defer rdb.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			key := fmt.Sprintf("probe:%d", i%1000)
			err := rdb.Get(c, key).Err()
			if err == nil || err == redis.Nil {
				err = rdb.Set(c, key, "x", 0).Err()
			}
			cancel()
			p.mu.Lock()
			p.lats = append(p.lats, time.Since(start)/2)
			if err != nil {
				p.errs++
			}
			p.mu.Unlock()
		}
	}()
	return func() { <-done }
}

func (p *latencyProbe) p99() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lats) == 0 {
		return 0
	}
	s := slices.Clone(p.lats)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)*99/100]
}

// TestJoinLeaveTiming loads DYNAKV_LEAVE_KEYS keys (default 10 000) into
// three nodes, has a fourth join and then leave, and reports the objects
// the join moved against the ideal, the time the leave took until the
// node had handed everything over and exited, and the request p99 before
// and during the leave.
func TestJoinLeaveTiming(t *testing.T) {
	keys := 10000
	if s := os.Getenv("DYNAKV_LEAVE_KEYS"); s != "" {
		keys, _ = strconv.Atoi(s)
	}
	extra := "[handoff]\ntransfer_rate = 100000\n"
	nodes := StartCluster(t, 3, extra)
	loadKeys(t, nodes[0], keys)
	leaver := joinNode(t, nodes, "n4", extra)
	nodes = append(nodes, leaver)
	waitRing(t, nodes, 4)
	m := regexp.MustCompile(`msg="handoff done".* objects=(\d+)`).FindStringSubmatch(leaver.Logs())
	if m == nil {
		t.Fatalf("no handoff done in the joiner's log:\n%s", leaver.Logs())
	}
	moved, _ := strconv.Atoi(m[1])
	ideal := keys * 3 / 4 // N=3 of 4 nodes: the joiner's share of the replicas
	t.Logf("join of a 4th node to %d keys (N=3): %d objects moved, ideal %d (%.2fx)", keys, moved, ideal, float64(moved)/float64(ideal))

	var before, during latencyProbe
	stop := make(chan struct{})
	wait := before.run(nodes[0], stop)
	time.Sleep(3 * time.Second)
	close(stop)
	wait()
	stop = make(chan struct{})
	wait = during.run(nodes[0], stop)
	start := time.Now()
	if err := leaver.Redis().Do(ctx(t), "DYN.LEAVE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := leaver.Wait(300 * time.Second); err != nil {
		t.Fatalf("leave: %v", err)
	}
	took := time.Since(start)
	close(stop)
	wait()
	waitRing(t, nodes[:3], 3)
	checkKeysR(t, nodes[0], keys, 3)
	t.Logf("leave of a node of 4 holding about %d keys (N=3): %v; request p99 %v before, %v during (%d requests, %d errors)",
		ideal, took.Round(time.Millisecond), before.p99(), during.p99(), len(during.lats), during.errs)
}

// TestMembershipRefusals checks that ring changes that cannot be done
// safely are refused with an error that says why, and change nothing.
func TestMembershipRefusals(t *testing.T) {
	extra := "[handoff]\ntransfer_rate = 500\n"
	nodes := StartCluster(t, 4, extra)
	c := ctx(t)
	loadKeys(t, nodes[0], 5000)

	refused := func(n *Node, want string, args ...any) {
		t.Helper()
		err := n.Redis().Do(c, args...).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "ERR") || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v on %s = %v, want an -ERR saying %q", args, n.ID, err, want)
		}
	}
	refused(nodes[0], "alive", "DYN.FORGET", "n2")
	refused(nodes[0], "not a member", "DYN.FORGET", "n9")
	refused(nodes[0], "wrong number", "DYN.FORGET")

	// n4 leaves slowly; a second change while it does is refused.
	if err := nodes[3].Redis().Do(c, "DYN.LEAVE").Err(); err != nil {
		t.Fatalf("DYN.LEAVE n4: %v", err)
	}
	refused(nodes[2], "in progress", "DYN.LEAVE")
	refused(nodes[3], "in progress", "DYN.LEAVE")
	v, err := nodes[0].Redis().Do(c, "DYN.RING").Slice()
	if err != nil {
		t.Fatal(err)
	}
	transfers := map[string]string{}
	for _, e := range v[1:] {
		if row := e.([]any); len(row) == 4 {
			transfers[row[0].(string)] = row[3].(string)
		}
	}
	if len(transfers) != 4 || transfers["n4"] != "none" {
		t.Fatalf("DYN.RING during the leave shows no transfers in flight: %v", v)
	}
	if err := nodes[3].Wait(120 * time.Second); err != nil {
		t.Fatalf("n4 did not leave: %v", err)
	}
	rest := nodes[:3]
	waitRing(t, rest, 3)

	// Three nodes with N=3: none may go.
	epochBefore, _ := ringOf(t, nodes[0])
	refused(nodes[1], "fewer than N=3", "DYN.LEAVE")
	nodes[2].Kill()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := nodes[0].Redis().Do(c, "DYN.FORGET", "n3").Err()
		if err != nil && strings.Contains(err.Error(), "fewer than N=3") {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("DYN.FORGET n3 with 3 nodes = %v, want too few nodes", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	epoch, counts := ringOf(t, nodes[0])
	if epoch != epochBefore || len(counts) != 3 {
		t.Fatalf("a refused change changed the ring (epoch %d): %v", epoch, counts)
	}
}

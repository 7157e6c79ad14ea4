package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
	"github.com/redis/go-redis/v9"
)

// Redis Cluster's slots on the Dynamo ring: cluster-aware clients find the
// ring with CLUSTER SLOTS/NODES and send each request straight to a
// replica of its key.

// keyPerSlot returns a key of every hash slot.
func keyPerSlot() []string {
	keys := make([]string, replica.Slots)
	left := replica.Slots
	for i := 0; left > 0; i++ {
		k := "slot:" + strconv.Itoa(i)
		if s := replica.Slot([]byte(k)); keys[s] == "" {
			keys[s] = k
			left--
		}
	}
	return keys
}

// clusterClient returns a go-redis cluster client that starts from addr.
func clusterClient(t *testing.T, addrs ...string) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// checkSlotsCovered requires CLUSTER SLOTS through n to cover every slot
// once, each run with the N nodes (or all of a smaller cluster) of its
// preference list, and returns the nodes heading runs.
func checkSlotsCovered(t *testing.T, n *Node, replicas int) map[string]bool {
	t.Helper()
	slots, err := n.Redis().ClusterSlots(ctx(t)).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS on %s: %v", n.ID, err)
	}
	next := 0
	masters := map[string]bool{}
	for _, s := range slots {
		if s.Start != next || s.End < s.Start {
			t.Fatalf("CLUSTER SLOTS on %s: a run %d-%d after slot %d", n.ID, s.Start, s.End, next-1)
		}
		if len(s.Nodes) != replicas {
			t.Fatalf("CLUSTER SLOTS on %s: run %d-%d has %d nodes, want %d", n.ID, s.Start, s.End, len(s.Nodes), replicas)
		}
		masters[s.Nodes[0].Addr] = true
		next = s.End + 1
	}
	if next != replica.Slots {
		t.Fatalf("CLUSTER SLOTS on %s covers slots up to %d", n.ID, next-1)
	}
	return masters
}

// TestClusterClients: go-redis's ClusterClient against a 3-node and a
// 5-node cluster: every slot covered, its writes read back through every
// node; after a join the slots follow; after a node's death a new client
// writes every slot.
func TestClusterClients(t *testing.T) {
	keys := keyPerSlot()
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			nodes := StartClusterQ(t, size, 64, "")
			masters := checkSlotsCovered(t, nodes[0], 3)
			if len(masters) != size {
				t.Fatalf("%d nodes head runs of slots, want all %d", len(masters), size)
			}
			cc := clusterClient(t, nodes[0].Client)
			c := ctx(t)
			for i := 0; i < len(keys); i += 37 {
				if err := cc.Set(c, keys[i], "v"+keys[i], 0).Err(); err != nil {
					t.Fatalf("cluster client SET %s (slot %d): %v", keys[i], i, err)
				}
			}
			for _, n := range nodes {
				for i := 0; i < len(keys); i += 37 {
					if v, err := n.Redis().Get(c, keys[i]).Result(); err != nil || v != "v"+keys[i] {
						t.Fatalf("GET %s through %s = %q, %v", keys[i], n.ID, v, err)
					}
				}
			}
			if size != 3 {
				return
			}
			// A join: the slots follow the ring.
			n4 := joinNode(t, nodes, "n4", "")
			nodes = append(nodes, n4)
			waitRing(t, nodes, 4)
			if masters := checkSlotsCovered(t, nodes[0], 3); !masters[n4.Client] {
				t.Fatalf("after the join n4 heads no run of slots: %v", masters)
			}
			if out := nodes[1].Redis().ClusterNodes(c).Val(); !strings.Contains(out, n4.Client) {
				t.Fatalf("CLUSTER NODES after the join lacks n4:\n%s", out)
			}
			// A node's death: once gossip has it dead, a new client
			// writes every slot.
			victim := nodes[1]
			victim.Kill()
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(nodes[0].Redis().ClusterNodes(c).Val(), victim.Client+"@0 master,fail") {
				if time.Now().After(deadline) {
					t.Fatalf("CLUSTER NODES never shows %s failed:\n%s", victim.ID, nodes[0].Redis().ClusterNodes(c).Val())
				}
				time.Sleep(200 * time.Millisecond)
			}
			fresh := clusterClient(t, nodes[0].Client)
			pipe := fresh.Pipeline()
			for _, k := range keys {
				pipe.Set(c, k, "after "+k, 0)
			}
			cmds, err := pipe.Exec(c)
			if err != nil {
				failed := 0
				for _, cmd := range cmds {
					if cmd.Err() != nil {
						failed++
					}
				}
				t.Fatalf("writing every slot with %s dead: %d of %d failed: %v", victim.ID, failed, len(keys), err)
			}
			for i := 0; i < len(keys); i += 101 {
				if v, err := nodes[2].Redis().Get(c, keys[i]).Result(); err != nil || v != "after "+keys[i] {
					t.Fatalf("GET %s = %q, %v", keys[i], v, err)
				}
			}
		})
	}
}

// startRedisServer starts a real redis-server on a free port with args
// (no persistence) and returns a client of it; the test's cleanup kills it.
func startRedisServer(t *testing.T, args ...string) *redis.Client {
	t.Helper()
	server := needTool(t, "redis-server")
	dir := t.TempDir()
	port := freePort(t)
	args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--save", "", "--appendonly", "no"}, args...)
	cmd := exec.Command(server, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	real := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Protocol: 2})
	t.Cleanup(func() { real.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for real.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return real
}

// TestClusterToolsAndKeySlot: redis-cli -c and redis-benchmark --cluster
// work against the cluster, and CLUSTER KEYSLOT agrees with a real
// redis-server in cluster mode, hash tags included.
func TestClusterToolsAndKeySlot(t *testing.T) {
	nodes := StartClusterQ(t, 3, 16, "")
	cli := needTool(t, "redis-cli")
	for i := range 20 {
		key := fmt.Sprintf("cli:%d", i)
		host, port, _ := net.SplitHostPort(nodes[i%3].Client)
		out, err := exec.Command(cli, "-c", "-h", host, "-p", port, "SET", key, "v").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "OK" {
			t.Fatalf("redis-cli -c SET %s: %v %s", key, err, out)
		}
	}
	bench := needTool(t, "redis-benchmark")
	host, port, _ := net.SplitHostPort(nodes[0].Client)
	out, err := exec.Command(bench, "--cluster", "-h", host, "-p", port, "-t", "set,get", "-n", "3000", "-q").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "GET:") || !strings.Contains(string(out), "requests per second") {
		t.Fatalf("redis-benchmark --cluster: %v\n%s", err, out)
	}
	t.Logf("redis-benchmark --cluster: %s", lastLines(string(out), 2))

	real := startRedisServer(t, "--cluster-enabled", "yes")
	c := ctx(t)
	keys := []string{"", "a", "foo", "somekey", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}",
		"{", "}", "{}", "x{y", "é", strings.Repeat("k", 300)}
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("key:%d", i), fmt.Sprintf("{tag%d}:x", i%7))
	}
	for _, k := range keys {
		want, err := real.ClusterKeySlot(c, k).Result()
		if err != nil {
			t.Fatalf("redis-server CLUSTER KEYSLOT %q: %v", k, err)
		}
		got, err := nodes[1].Redis().ClusterKeySlot(c, k).Result()
		if err != nil || got != want {
			t.Fatalf("CLUSTER KEYSLOT %q = %d, %v; redis-server says %d", k, got, err, want)
		}
	}
	// COUNTKEYSINSLOT and GETKEYSINSLOT find the keys redis-cli wrote.
	slot := replica.Slot([]byte("cli:3"))
	n, err := nodes[2].Redis().ClusterCountKeysInSlot(c, int(slot)).Result()
	if err != nil || n < 1 {
		t.Fatalf("CLUSTER COUNTKEYSINSLOT %d = %d, %v", slot, n, err)
	}
	got, err := nodes[0].Redis().ClusterGetKeysInSlot(c, int(slot), 10).Result()
	if err != nil || !strings.Contains(strings.Join(got, " "), "cli:3") {
		t.Fatalf("CLUSTER GETKEYSINSLOT %d = %v, %v", slot, got, err)
	}
	if os.Getenv("DYNAKV_KEEP_LOGS") != "" {
		t.Log(nodes[0].Redis().ClusterNodes(c).Val())
	}
}

// lastLines returns the last n non-empty lines of s.
func lastLines(s string, n int) string {
	ls := lines(s)
	return strings.Join(ls[max(0, len(ls)-n):], " | ")
}

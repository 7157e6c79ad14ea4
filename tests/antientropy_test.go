package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAntiEntropyRebuildsALostDisk wipes a node's data directory and
// brings every key back with DYN.REPAIR alone (the round interval is an
// hour, and nothing reads through the node meanwhile).
func TestAntiEntropyRebuildsALostDisk(t *testing.T) {
	nodes := StartCluster(t, 3, "[antientropy]\ninterval = \"1h\"\n")
	c := ctx(t)
	const keys = 10000
	loadKeys(t, nodes[0], keys)
	victim := nodes[2]
	victim.Stop()
	if err := os.RemoveAll(filepath.Join(victim.Dir, "data")); err != nil {
		t.Fatal(err)
	}
	victim.Start()
	waitRing(t, nodes, 3)
	if n, err := victim.Redis().DBSize(c).Result(); err != nil || n != 0 {
		t.Fatalf("wiped node holds %d keys, %v", n, err)
	}
	start := time.Now()
	if err := victim.Redis().Do(c, "DYN.REPAIR").Err(); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := victim.Redis().DBSize(c).Result()
		if err == nil && n == keys {
			break
		}
		if time.Since(start) > 120*time.Second {
			t.Fatalf("after DYN.REPAIR the node holds %d of %d keys", n, keys)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("DYN.REPAIR restored %d keys in %v (ae_keys_repaired %d)", keys, time.Since(start).Round(time.Millisecond), infoInt(t, victim, "ae_keys_repaired"))
	nodes[0].Stop()
	nodes[1].Stop()
	checkKeysR(t, victim, keys, 1)
}

// TestDeletedKeyStaysDeleted deletes a key while one replica is down for
// longer than the grace period (its hint expires), brings the replica
// back, and lets anti-entropy and reaping run: the value never returns.
func TestDeletedKeyStaysDeleted(t *testing.T) {
	extra := "[antientropy]\ninterval = \"300ms\"\ntombstone_grace = \"2s\"\n"
	nodes := StartClusterQ(t, 3, 16, extra)
	c := ctx(t)
	for i := range 20 {
		if err := nodes[0].Redis().Set(c, fmt.Sprintf("doomed:%d", i), "value", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	victim := nodes[2]
	// The third replica of a write is sent after the quorum answers: wait
	// until the victim holds every key, so that each replica has 20
	// tombstones to reap. (A replica that never had a key does not get its
	// old tombstone; it has nothing to reap.)
	for i := range 20 {
		deadline := time.Now().Add(30 * time.Second)
		for peerRead(t, victim, fmt.Sprintf("doomed:%d", i)).Empty() {
			if time.Now().After(deadline) {
				t.Fatalf("doomed:%d never reached %s", i, victim.ID)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	victim.Kill()
	for i := range 20 {
		if n, err := nodes[0].Redis().Del(c, fmt.Sprintf("doomed:%d", i)).Result(); err != nil || n != 1 {
			t.Fatalf("DEL with a replica down: %d, %v", n, err)
		}
	}
	time.Sleep(3 * time.Second) // past the grace period: hints expire
	victim.Start()
	deadline := time.Now().Add(60 * time.Second)
	for sumInfo(t, nodes, "ae_tombstones_reaped") < 3*20 {
		if time.Now().After(deadline) {
			for _, n := range nodes {
				t.Logf("%s: reaped %d, exchanges %d, repaired %d", n.ID, infoInt(t, n, "ae_tombstones_reaped"),
					infoInt(t, n, "ae_exchanges"), infoInt(t, n, "ae_keys_repaired"))
			}
			t.Fatalf("tombstones reaped: %d, want every replica's 20", sumInfo(t, nodes, "ae_tombstones_reaped"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // more rounds after the reaping
	c = ctx(t)                  // a fresh deadline for the reads below
	if n := sumInfo(t, nodes, "ae_tombstones_reaped"); n != 3*20 {
		t.Fatalf("%d tombstones reaped, want each replica to reap each once", n)
	}
	for _, n := range nodes {
		for i := range 20 {
			key := fmt.Sprintf("doomed:%d", i)
			_, sibs, err := dget(c, n.Redis(), key, 3)
			if err != nil || len(sibs) != 0 {
				t.Fatalf("%s through %s after reaping: %v, %v: the deleted value came back", key, n.ID, sibs, err)
			}
		}
	}
	t.Logf("reaped %d tombstones; ae_exchanges %d", sumInfo(t, nodes, "ae_tombstones_reaped"), sumInfo(t, nodes, "ae_exchanges"))
}

// TestExpiredKeysCounted: values that expire are turned into tombstones
// by anti-entropy, and INFO's expired_keys counts them on each replica.
func TestExpiredKeysCounted(t *testing.T) {
	nodes := StartCluster(t, 3, "[antientropy]\ninterval = \"300ms\"\n")
	c := ctx(t)
	for i := range 5 {
		if err := nodes[0].Redis().Set(c, fmt.Sprintf("short:%d", i), "v", 100*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for sumInfo(t, nodes, "expired_keys") < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("expired_keys over the cluster: %d after 30 s, want 5 or more", sumInfo(t, nodes, "expired_keys"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("expired_keys over the 3 replicas: %d", sumInfo(t, nodes, "expired_keys"))
}

package tests

import (
	"encoding/base64"
	binenc "encoding/binary"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests hold the rule that a dot is never minted twice and that a
// forwarded write is never run twice: each reproduces a way acknowledged
// writes were lost or counted twice, with real processes.

// restartAll stops every node cleanly and starts it again on its data.
func restartAll(t *testing.T, nodes []*Node) {
	t.Helper()
	for _, n := range nodes {
		n.Stop()
	}
	for _, n := range nodes {
		n.Start()
	}
	waitRing(t, nodes, len(nodes))
}

// TestRewriteAfterTombstonePurge: a node that reaped a key's tombstone
// while its peers still hold it writes the key again. Its new write must
// not reuse a dot the tombstone's clock covers: every node reads the new
// value, before and after a restart of every node.
func TestRewriteAfterTombstonePurge(t *testing.T) {
	extra := "[antientropy]\ninterval = \"1h\"\ntombstone_grace = \"2s\"\n"
	nodes := StartClusterQ(t, 3, 16, extra)
	n1 := nodes[0]
	c := ctx(t)
	const keys = 20
	for i := range keys {
		key := fmt.Sprintf("purged:%d", i)
		if err := n1.Redis().Set(c, key, "old", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Every replica holds every key before the delete, so that each ends
	// with the tombstone.
	for _, n := range nodes {
		for i := range keys {
			key := fmt.Sprintf("purged:%d", i)
			deadline := time.Now().Add(30 * time.Second)
			for peerRead(t, n, key).Empty() {
				if time.Now().After(deadline) {
					t.Fatalf("%s never reached %s", key, n.ID)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	for i := range keys {
		if err := n1.Redis().Del(c, fmt.Sprintf("purged:%d", i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		for i := range keys {
			key := fmt.Sprintf("purged:%d", i)
			deadline := time.Now().Add(30 * time.Second)
			for o := peerRead(t, n, key); len(o.Siblings) != 1 || !o.Siblings[0].Tombstone; o = peerRead(t, n, key) {
				if time.Now().After(deadline) {
					t.Fatalf("the tombstone of %s never reached %s: %+v", key, n.ID, o)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	time.Sleep(2500 * time.Millisecond) // past the grace period
	if err := n1.Redis().Do(c, "DYN.REPAIR").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for infoInt(t, n1, "ae_tombstones_reaped") < keys {
		if time.Now().After(deadline) {
			t.Fatalf("n1 reaped %d tombstones, want %d", infoInt(t, n1, "ae_tombstones_reaped"), keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := sumInfo(t, nodes[1:], "ae_tombstones_reaped"); got != 0 {
		t.Fatalf("the other nodes reaped %d tombstones; the test needs them to keep theirs", got)
	}
	for i := range keys {
		if err := n1.Redis().Set(c, fmt.Sprintf("purged:%d", i), "new", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		// Replication is asynchronous past W: give every node a few
		// seconds, then count what each still misses.
		misses := 0
		deadline := time.Now().Add(5 * time.Second)
		for {
			misses = 0
			for _, n := range nodes {
				for i := range keys {
					if v, err := n.Redis().Get(c, fmt.Sprintf("purged:%d", i)).Result(); err != nil || v != "new" {
						misses++
					}
				}
			}
			if misses == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if misses > 0 {
			t.Fatalf("%s: %d of %d reads missed the acknowledged rewrite", when, misses, len(nodes)*keys)
		}
	}
	check("after the rewrite")
	restartAll(t, nodes)
	c = ctx(t)
	check("after a restart of every node")
}

// TestForwardedIncrCountedOnce: a client's node forwards an INCR to a
// primary that is paused. The forwarder must not run the increment again
// elsewhere when it cannot know whether the paused node got it, and the
// paused node must not run it late when it resumes: the counter moves by
// at most one, and by exactly one if the client was told OK.
func TestForwardedIncrCountedOnce(t *testing.T) {
	nodes := StartClusterQ(t, 4, 16, "")
	c := ctx(t)
	n4 := nodes[3]
	// A key replicated on n1-n3, so that n4 forwards it.
	key := ""
	var prefs []string
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("counter:%d", i)
		if p := preflist(t, n4, k); !strings.Contains(strings.Join(p, ","), "n4") {
			key, prefs = k, p
		}
	}
	if err := n4.Redis().IncrBy(c, key, 10).Err(); err != nil {
		t.Fatal(err)
	}
	waitValueEverywhere(t, nodes, key, "10")
	paused := []*Node{byID(nodes, prefs[0]), byID(nodes, prefs[1])}
	for _, n := range paused {
		n.Signal(syscall.SIGSTOP)
	}
	res, err := n4.Redis().Incr(c, key).Result()
	t.Logf("INCR with %s and %s paused: %d, %v", prefs[0], prefs[1], res, err)
	time.Sleep(3 * time.Second)
	for _, n := range paused {
		n.Signal(syscall.SIGCONT)
	}
	// Let every replica converge, then read each node at R=N.
	time.Sleep(2 * time.Second)
	for _, n := range nodes {
		if err := n.Redis().Do(c, "DYN.REPAIR").Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	values := map[string]bool{}
	for _, n := range nodes {
		_, sibs, err := dget(c, n.Redis(), key, 3)
		if err != nil {
			t.Fatalf("DGET through %s: %v", n.ID, err)
		}
		v, err := n.Redis().Get(c, key).Result()
		if err != nil {
			t.Fatalf("GET through %s: %v", n.ID, err)
		}
		t.Logf("%s: GET %s, siblings %v", n.ID, v, sibs)
		values[v] = true
	}
	if len(values) != 1 {
		t.Fatalf("nodes disagree on the counter: %v", values)
	}
	switch {
	case err == nil && !values["11"]:
		t.Fatalf("INCR answered %d but the counter reads %v, want 11", res, values)
	case err != nil && !values["10"] && !values["11"]:
		t.Fatalf("INCR answered %v and the counter reads %v: the increment counted more than once", err, values)
	}
	restartAll(t, nodes)
	for _, n := range nodes {
		v, err := n.Redis().Get(ctx(t), key).Result()
		if err != nil || !values[v] {
			t.Fatalf("after a restart %s reads %q, %v, want %v", n.ID, v, err, values)
		}
	}
}

// waitValueEverywhere waits until every node holds the value for key in its
// own replica (or hint), read through the peer port.
func waitValueEverywhere(t *testing.T, nodes []*Node, key, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			v, err := n.Redis().Do(ctx(t), "GET", key).Text()
			if err == nil && v == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s reads %q, %v; want %q", n.ID, v, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestContextSealedToKey: a DPUT with a context taken from another key, or
// with one byte of its context changed, or with a context made up by the
// client (the old unsealed form, with a counter at the top of its range),
// answers -ERR invalid context and changes nothing; the node keeps serving
// the key and restarts.
func TestContextSealedToKey(t *testing.T) {
	nodes := StartClusterQ(t, 3, 16, "")
	c := ctx(t)
	rdb := nodes[0].Redis()
	for _, k := range []string{"sealed:a", "sealed:b"} {
		if err := rdb.Set(c, k, k+"-value", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ctxA, _, err := dget(c, rdb, "sealed:a", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctxB, sibsB, err := dget(c, rdb, "sealed:b", 0)
	if err != nil {
		t.Fatal(err)
	}
	altered := []byte(ctxA)
	altered[len(altered)/2] ^= 1
	if altered[len(altered)/2] == '-' || altered[len(altered)/2] == '_' {
		altered[len(altered)/2] = 'A'
	}
	// What a client could send before contexts were sealed: a version-1
	// clock naming a node's actor with the largest counter.
	forged := []byte{1, 1}
	actor := "n1#aaaaaaaa"
	forged = binenc.AppendUvarint(forged, uint64(len(actor)))
	forged = append(forged, actor...)
	forged = binenc.AppendUvarint(forged, 1<<64-1)
	cases := map[string]struct{ key, ctx string }{
		"another key's context": {"sealed:b", ctxA},
		"one byte changed":      {"sealed:a", string(altered)},
		"a forged counter":      {"sealed:a", base64.RawURLEncoding.EncodeToString(forged)},
		"not base64":            {"sealed:a", "!!!"},
	}
	for name, tc := range cases {
		err := rdb.Do(c, "DPUT", tc.key, tc.ctx, "intruder").Err()
		if err == nil || err.Error() != "ERR invalid context" {
			t.Errorf("%s: DPUT answered %v, want ERR invalid context", name, err)
		}
	}
	for _, n := range nodes {
		for _, k := range []string{"sealed:a", "sealed:b"} {
			_, sibs, err := dget(c, n.Redis(), k, 3)
			if err != nil || len(sibs) != 1 || sibs[0] != k+"-value" {
				t.Fatalf("%s through %s after refused DPUTs: %v, %v", k, n.ID, sibs, err)
			}
		}
	}
	// The genuine context still works, and the node keeps serving.
	if err := rdb.Do(c, "DPUT", "sealed:b", ctxB, "sealed:b-next").Err(); err != nil {
		t.Fatalf("DPUT with its own context: %v (siblings were %v)", err, sibsB)
	}
	restartAll(t, nodes)
	for _, n := range nodes {
		_, sibs, err := dget(ctx(t), n.Redis(), "sealed:b", 3)
		if err != nil || len(sibs) != 1 || sibs[0] != "sealed:b-next" {
			t.Fatalf("sealed:b through %s after a restart: %v, %v", n.ID, sibs, err)
		}
	}
}

// TestSetNXOneWinner: two clients send SET lock x NX PX 5000 to two
// different nodes at the same moment, every node up. The write decides on
// the current value, so both go to the key's first healthy primary: in
// every round exactly one wins.
func TestSetNXOneWinner(t *testing.T) {
	nodes := StartClusterQ(t, 3, 16, "")
	const rounds = 100
	failures := 0
	for round := range rounds {
		key := fmt.Sprintf("lock:%d", round)
		a, b := nodes[round%3], nodes[(round+1)%3]
		var wg sync.WaitGroup
		start := make(chan struct{})
		oks := make([]bool, 2)
		errs := make([]error, 2)
		for i, n := range []*Node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, err := n.Redis().SetNX(ctx(t), key, fmt.Sprintf("client%d", i), 5*time.Second).Result()
				oks[i], errs[i] = ok, err
			}()
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v, %v", round, errs[0], errs[1])
		}
		if oks[0] == oks[1] {
			failures++
			t.Logf("round %d (%s, %s): both answered %v", round, a.ID, b.ID, oks[0])
		}
	}
	if failures > 0 {
		t.Fatalf("%d of %d rounds did not have exactly one winner", failures, rounds)
	}
}

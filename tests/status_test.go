package tests

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// transferRow matches a row of `dynakv status`'s transfer table for n4:
// NODE TRANSFER PARTITIONS COPIED OF-ABOUT RATE TIME-LEFT.
var transferRow = regexp.MustCompile(`(?m)^n4\s+receiving\s+(\d+)/(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/s\s+(\S+)`)

// TestStatusDuringJoin runs `dynakv status` against a real node while a
// fourth node joins under the cart load with a throttled transfer: it
// shows every member, the change in progress with n4 receiving (objects
// copied of about how many, a rate and a time left), then no change once
// the ring settles; and the hints a node keeps while a replica is down.
func TestStatusDuringJoin(t *testing.T) {
	const extra = "[handoff]\ntransfer_rate = 3000\n"
	nodes := StartCluster(t, 3, extra)
	loadKeys(t, nodes[0], 20000)
	load := newCartLoad(t, nodes, 8)
	stop := make(chan struct{})
	wait := load.run(4, 0, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wait()
		}
	}()

	n4 := joinNode(t, nodes, "n4", extra)
	nodes = append(nodes, n4)
	var during string
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out := runDynakv(t, nodes[0].Dir, "status", "--addr", nodes[0].Client)
		if code != 0 {
			t.Fatalf("dynakv status exited %d:\n%s", code, out)
		}
		if m := transferRow.FindStringSubmatch(out); m != nil {
			copied, _ := strconv.Atoi(m[3])
			about, _ := strconv.Atoi(m[4])
			if copied >= 3000 && about >= 10000 {
				during = out
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dynakv status never showed n4 receiving with progress; last:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{"asked n1", "ring change in progress:", "MEMBER", "n1 ", "n2 ", "n3 ", "n4 "} {
		if !strings.Contains(during, want) {
			t.Fatalf("dynakv status during the join lacks %q:\n%s", want, during)
		}
	}
	t.Logf("dynakv status during the join of n4 under load:\n%s", during)

	waitRing(t, nodes, 4)
	close(stop)
	wait()
	load.verify(nodes, 2)
	_, after := runDynakv(t, nodes[0].Dir, "status", "--addr", nodes[0].Client)
	if !strings.Contains(after, "no ring change in progress") {
		t.Fatalf("after the join, dynakv status says:\n%s", after)
	}

	// A replica down: the writes it misses are kept as hints, per target.
	nodes[2].Kill()
	c := ctx(t)
	for i := range 200 {
		if err := nodes[0].Redis().Set(c, fmt.Sprintf("hinted:%d", i), "v", 0).Err(); err != nil {
			t.Fatalf("SET with n3 down: %v", err)
		}
	}
	_, hinted := runDynakv(t, nodes[0].Dir, "status", "--addr", nodes[0].Client)
	if !regexp.MustCompile(`(?m)^n3\s+[1-9]\d*\s+[1-9]\d*\s+`).MatchString(hinted) {
		t.Fatalf("with n3 down, dynakv status shows no hints for it:\n%s", hinted)
	}
	t.Logf("dynakv status with n3 down:\n%s", hinted)

	if code, out := runDynakv(t, nodes[0].Dir, "status", "--addr", "127.0.0.1:1"); code != 1 || !strings.Contains(out, "127.0.0.1:1") {
		t.Fatalf("dynakv status of a closed port exited %d: %s", code, out)
	}
}

package tests

import (
	"syscall"
	"testing"
	"time"
)

// TestKillEveryNodeMidLoad kills every node of a 3-node cluster with
// kill -9 in the middle of the shopping-cart load, under fsync always and
// everysec, and restarts them: not one acknowledged add is lost. (A kill
// of the process keeps what reached the operating system, so everysec
// loses nothing here either; what it may lose is the last second before a
// crash of the machine, which a process kill cannot show.)
func TestKillEveryNodeMidLoad(t *testing.T) {
	for _, fsync := range []string{"always", "everysec"} {
		t.Run(fsync, func(t *testing.T) {
			nodes := StartCluster(t, 3, "[storage]\nfsync = \""+fsync+"\"\n")
			load := newCartLoad(t, nodes, 20)
			stop := make(chan struct{})
			wait := load.run(12, 0, stop)
			time.Sleep(3 * time.Second)
			for _, n := range nodes {
				n.Kill()
			}
			close(stop)
			wait()
			if load.ackedCount() == 0 {
				t.Fatal("no add was acknowledged before the crash")
			}
			for _, n := range nodes {
				n.Start()
			}
			waitRing(t, nodes, 3)
			load.verify(nodes, 2)
		})
	}
}

// TestStopEveryNodeAtOnce sends SIGTERM to every node of a cluster at the
// same moment: each still shuts down cleanly and exits 0, although no one
// is left to acknowledge its gossip leave.
func TestStopEveryNodeAtOnce(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	loadKeys(t, nodes[0], 500)
	for _, n := range nodes {
		n.Signal(syscall.SIGTERM)
	}
	for _, n := range nodes {
		if err := n.Wait(60 * time.Second); err != nil {
			t.Fatalf("%s after SIGTERM: %v\n%s", n.ID, err, n.LogTail(20))
		}
	}
	for _, n := range nodes {
		n.Start()
	}
	waitRing(t, nodes, 3)
	checkKeysR(t, nodes[1], 500, 3)
}

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCheckpointRestore backs a node of a 3-node cluster up with
// DYN.CHECKPOINT while it serves, loses its disk, restores it from the
// checkpoint and has anti-entropy bring it up to date: it holds every key,
// those written after the checkpoint included, and mints under a new actor.
func TestCheckpointRestore(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	const keys = 2000
	loadKeys(t, nodes[0], keys)
	n3 := nodes[2]
	dir, err := n3.Redis().Do(c, "DYN.CHECKPOINT").Text()
	if err != nil {
		t.Fatalf("DYN.CHECKPOINT: %v", err)
	}
	if want := filepath.Join(n3.Dir, "data.checkpoints"); filepath.Dir(dir) != want {
		t.Fatalf("checkpoint in %s, want under %s", dir, want)
	}
	for i := range 200 {
		if err := nodes[0].Redis().Set(c, fmt.Sprintf("after:%d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	n3.Stop()
	data := filepath.Join(n3.Dir, "data")
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, data); err != nil {
		t.Fatal(err)
	}
	n3.Start()
	waitRing(t, nodes, 3)
	actors := regexp.MustCompile(`msg="node started".* actor=(\S+)`).FindAllStringSubmatch(n3.Logs(), -1)
	if len(actors) != 2 || actors[0][1] == actors[1][1] {
		t.Fatalf("the restored node should mint under a new actor; started with %v", actors)
	}
	for _, n := range nodes {
		if err := n.Redis().Do(c, "DYN.REPAIR").Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range keys {
		key := fmt.Sprintf("key:%d", i)
		if got := itemsOf(peerRead(t, n3, key)); len(got) != 1 || got[0] != fmt.Sprintf("value-%d", i) {
			t.Fatalf("restored %s holds %v for %s", n3.ID, got, key)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < 200; {
		if got := itemsOf(peerRead(t, n3, fmt.Sprintf("after:%d", i))); strings.Join(got, "") == "v" {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("anti-entropy did not bring after:%d to the restored node", i)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package tests

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// zonesABC puts node i in zone a, b or c in turn: n1 a, n2 b, n3 c, n4 a...
func zonesABC(i int, n *Node) { n.Zone = string(rune('a' + i%3)) }

// zonesOf returns each member's zone as DYN.MEMBERS on n shows it.
func zonesOf(t *testing.T, n *Node) map[string]string {
	t.Helper()
	rows, err := n.Redis().Do(ctx(t), "DYN.MEMBERS").Slice()
	if err != nil {
		t.Fatalf("DYN.MEMBERS on %s: %v", n.ID, err)
	}
	out := map[string]string{}
	for _, r := range rows {
		row := r.([]any)
		if len(row) != 6 {
			t.Fatalf("DYN.MEMBERS row %v: want 6 fields", row)
		}
		out[row[0].(string)] = row[5].(string)
	}
	return out
}

// inZone returns the nodes of zone z.
func inZone(nodes []*Node, z string) []*Node {
	var out []*Node
	for _, n := range nodes {
		if n.Zone == z {
			out = append(out, n)
		}
	}
	return out
}

// notInZone returns the nodes outside zone z.
func notInZone(nodes []*Node, z string) []*Node {
	var out []*Node
	for _, n := range nodes {
		if n.Zone != z {
			out = append(out, n)
		}
	}
	return out
}

// waitSpread waits until every node reports a committed ring whose every
// partition has its primaries in distinct zones (INFO
// zone_spread_violations 0 and no ring change in progress).
func waitSpread(t *testing.T, nodes []*Node) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		bad := int64(0)
		for _, n := range nodes {
			bad += infoInt(t, n, "zone_spread_violations") + infoInt(t, n, "ring_change_in_progress")
		}
		if bad == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				t.Logf("%s: zone_spread_violations %d, ring_change_in_progress %d", n.ID,
					infoInt(t, n, "zone_spread_violations"), infoInt(t, n, "ring_change_in_progress"))
			}
			t.Fatal("the ring did not reach full zone spread")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAlive waits until every node's gossip shows every node alive.
func waitAlive(t *testing.T, nodes []*Node) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for sumInfo(t, nodes, "members_alive") != int64(len(nodes)*len(nodes)) {
		if time.Now().After(deadline) {
			t.Fatal("gossip did not see every node alive within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPreflistZones requires the preference list of keys key:0... on n
// to name three nodes in three zones, as every node's DYN.MEMBERS shows
// the zones.
func checkPreflistZones(t *testing.T, nodes []*Node, keys int) {
	t.Helper()
	zones := zonesOf(t, nodes[0])
	for _, n := range nodes {
		if want := n.Zone; zones[n.ID] != want {
			t.Fatalf("DYN.MEMBERS on %s: %s is in zone %q, want %q", nodes[0].ID, n.ID, zones[n.ID], want)
		}
	}
	for i := range keys {
		key := fmt.Sprintf("key:%d", i)
		pl := preflist(t, nodes[i%len(nodes)], key)
		var zs []string
		for _, id := range pl {
			zs = append(zs, zones[id])
		}
		if len(pl) != 3 || len(slices.Compact(slices.Sorted(slices.Values(zs)))) != 3 {
			t.Fatalf("DYN.PREFLIST %s = %v in zones %v, want 3 nodes in 3 zones", key, pl, zs)
		}
	}
}

// TestZoneLoss runs the shopping cart on six nodes in three zones (N=3
// R=2 W=2) and kills both nodes of one zone with SIGKILL: every key keeps
// a copy in each of the other two zones, so reads and writes go on, and
// after the zone returns no acknowledged add is lost.
func TestZoneLoss(t *testing.T) {
	nodes := startNodes(t, 6, "[antientropy]\ninterval = \"2s\"\n", zonesABC)
	waitSpread(t, nodes)
	checkPreflistZones(t, nodes, 300)

	load := newCartLoad(t, nodes, 20)
	stop := make(chan struct{})
	wait := load.run(10, 0, stop)
	time.Sleep(2 * time.Second)
	lostZone, rest := inZone(nodes, "c"), notInZone(nodes, "c")
	before := load.ackedCount()
	for _, n := range lostZone {
		n.Kill()
	}
	killed := time.Now()
	load.setNodes(rest)
	// With zone c gone, plain writes and reads at R=2/W=2 through every
	// surviving node must succeed.
	c := ctx(t)
	for i := range 100 {
		key := fmt.Sprintf("zone-down:%d", i)
		if err := rest[i%len(rest)].Redis().Set(c, key, fmt.Sprint(i), 0).Err(); err != nil {
			t.Fatalf("SET %s with zone c down: %v", key, err)
		}
		if v, err := rest[(i+1)%len(rest)].Redis().Get(c, key).Result(); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("GET %s with zone c down = %q, %v", key, v, err)
		}
	}
	time.Sleep(6 * time.Second)
	during := load.ackedCount() - before
	down := time.Since(killed)
	close(stop)
	wait()
	if during == 0 {
		t.Fatalf("no add was acknowledged in the %v zone c was down: %v", down.Round(time.Second), load.errorSummary())
	}
	for _, n := range lostZone {
		n.Start()
	}
	waitRing(t, nodes, 6)
	drained := waitHintsDrained(t, nodes, 90*time.Second)
	deadline := time.Now().Add(120 * time.Second)
	for !load.converged(t, nodes) {
		if time.Now().After(deadline) {
			t.Fatal("the replicas did not converge within 120 s of zone c's return")
		}
		time.Sleep(250 * time.Millisecond)
	}
	load.verify(nodes, 2)
	t.Logf("zone c down %v: %d adds acknowledged before, %d while it was down (%.0f/s), hints drained %v after its return",
		down.Round(100*time.Millisecond), before, during, float64(during)/down.Seconds(), drained.Round(10*time.Millisecond))
}

// TestZoneCut cuts one zone off from the other two with iptables (each
// node on its own loopback address) while clients write through all six
// nodes: both sides take writes, and after the heal every replica holds
// every acknowledged add and the next add merges the siblings.
func TestZoneCut(t *testing.T) {
	fw := newFirewall(t)
	nodes := startNodes(t, 6, "[antientropy]\ninterval = \"2s\"\n", func(i int, n *Node) {
		ownHost(i, n)
		zonesABC(i, n)
	})
	waitSpread(t, nodes)
	alone, rest := inZone(nodes, "a"), notInZone(nodes, "a")

	load := newCartLoad(t, nodes, 20)
	stop := make(chan struct{})
	wait := load.run(12, 0, stop)
	time.Sleep(time.Second)
	aloneBefore, restBefore := load.ackedVia(alone), load.ackedVia(rest)
	fw.split(alone, rest)
	time.Sleep(10 * time.Second)
	aloneDuring, restDuring := load.ackedVia(alone)-aloneBefore, load.ackedVia(rest)-restBefore
	close(stop)
	wait()
	fw.heal()
	if aloneDuring == 0 || restDuring == 0 {
		t.Fatalf("during the cut zone a acknowledged %d adds and zones b and c %d: both sides must take writes (errors %v)",
			aloneDuring, restDuring, load.errorSummary())
	}
	healed := time.Now()
	deadline := healed.Add(120 * time.Second)
	for !load.converged(t, nodes) {
		if time.Now().After(deadline) {
			t.Fatal("the replicas did not converge within 120 s of healing")
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(healed)
	// Reads through every node at R=3 hear the primaries once gossip on
	// every node has seen the heal; until then a node reads the nodes it
	// believes up, fallbacks among them (a sloppy read).
	waitAlive(t, nodes)
	waitHintsDrained(t, nodes, 60*time.Second)
	load.verify(nodes, 3)
	maxAfter := 0
	for i := range load.carts {
		sibs, _ := mergeCart(t, nodes[i%len(nodes)], nodes[0], cartKey(i))
		maxAfter = max(maxAfter, sibs)
	}
	if maxAfter != 1 {
		t.Fatalf("a cart still has %d siblings after merging adds", maxAfter)
	}
	t.Logf("zone a cut off 10 s: it acknowledged %d adds, zones b and c %d; largest sibling count %d; converged %v after healing; errors %v",
		aloneDuring, restDuring, load.maxSiblings, took.Round(10*time.Millisecond), load.errorSummary())
}

// TestZoneJoinAndMove starts three nodes in two zones, then joins a node
// in a third zone and restarts a node in another zone: each is a ring
// change that moves partitions until every key's replicas span the
// three zones, and every key stays readable with R=3 throughout.
func TestZoneJoinAndMove(t *testing.T) {
	two := []string{"a", "b", "a"}
	nodes := startNodes(t, 3, "", func(i int, n *Node) { n.Zone = two[i] })
	waitSpread(t, nodes) // two zones: each partition's replicas span both
	const keys = 3000
	loadKeys(t, nodes[0], keys)

	joiner := NewNode(t, "n4", "")
	joiner.ClusterName, joiner.Seeds, joiner.Zone = nodes[0].ClusterName, []string{nodes[1].Gossip}, "c"
	joiner.Start()
	nodes = append(nodes, joiner)
	waitRing(t, nodes, 4)
	waitSpread(t, nodes)
	checkPreflistZones(t, nodes, 300)
	checkKeysR(t, joiner, keys, 3)

	// n3 moves from zone a to zone b: with a and c holding one node each,
	// every partition's copies must move so that each of a, b, c has one.
	moved := nodes[2]
	moved.Stop()
	moved.Zone = "b"
	moved.Start()
	deadline := time.Now().Add(60 * time.Second)
	for zonesOf(t, nodes[0])[moved.ID] != "b" {
		if time.Now().After(deadline) {
			t.Fatalf("the ring still has %s in zone %q", moved.ID, zonesOf(t, nodes[0])[moved.ID])
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitSpread(t, nodes)
	checkPreflistZones(t, nodes, 300)
	for _, via := range []*Node{moved, nodes[0]} {
		checkKeysR(t, via, keys, 3)
	}
}

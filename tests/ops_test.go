package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLogFormatAndLevel starts a node with log.format = "json": every line
// it writes is one JSON object with time, level, msg and node; and a node
// with log.level = "warn" writes none of the info lines.
func TestLogFormatAndLevel(t *testing.T) {
	n := StartNode(t, "n1", "[log]\nformat = \"json\"\n")
	if err := n.Redis().Set(ctx(t), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	started := false
	for _, line := range lines(n.Logs()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q: %v", line, err)
		}
		for _, key := range []string{"time", "level", "msg", "node"} {
			if _, ok := rec[key]; !ok {
				t.Fatalf("log line without %q: %s", key, line)
			}
		}
		started = started || (rec["msg"] == "node started" && rec["node"] == "n1" && rec["level"] == "INFO")
	}
	if !started {
		t.Fatalf("no JSON \"node started\" line in:\n%s", n.Logs())
	}

	quiet := StartNode(t, "n2", "[log]\nlevel = \"warn\"\n")
	quiet.Stop()
	if strings.Contains(quiet.Logs(), "level=INFO") {
		t.Fatalf("log.level = warn still logs info lines:\n%s", quiet.Logs())
	}
}

// TestAdvertisedName runs a node that advertises a host name: DYN.MEMBERS
// and CLUSTER SLOTS hand out that name with the ports listened on, and a
// second node joins through it.
func TestAdvertisedName(t *testing.T) {
	n1 := NewNode(t, "n1", "")
	n1.Bind = "127.0.0.1"
	n1.Client, n1.Peer, n1.Gossip = rehost(n1.Client, "localhost"), rehost(n1.Peer, "localhost"), rehost(n1.Gossip, "localhost")
	n1.Start()
	n2 := joinNode(t, []*Node{n1}, "n2", "")
	waitRing(t, []*Node{n1, n2}, 2)
	c := ctx(t)
	rows, err := n2.Redis().Do(c, "DYN.MEMBERS").Slice()
	if err != nil {
		t.Fatal(err)
	}
	var row []any
	for _, r := range rows {
		if r.([]any)[0] == "n1" {
			row = r.([]any)
		}
	}
	if row == nil || row[1] != n1.Client || row[2] != n1.Peer {
		t.Fatalf("DYN.MEMBERS on n2 shows n1 as %v, want client %s peer %s", row, n1.Client, n1.Peer)
	}
	slots, err := n1.Redis().ClusterSlots(c).Result()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range slots {
		for _, sn := range s.Nodes {
			found = found || sn.Addr == n1.Client
		}
	}
	if !found {
		t.Fatalf("CLUSTER SLOTS never hands out %s: %v", n1.Client, slots)
	}
	if err := n2.Redis().Set(c, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := n1.Redis().Get(c, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET through n1 = %q, %v", v, err)
	}
}

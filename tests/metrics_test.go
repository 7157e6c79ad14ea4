package tests

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads a node's /metrics into series name{labels} -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", addr, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: bad line %q", addr, line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsMove scrapes Prometheus metrics from a running node of a
// 3-node cluster: a SET moves the command counter and latency histogram,
// a failing command its error counter, a read the sibling histogram, a
// write without its quorum the quorum-failure counter; the cluster and
// Pebble gauges are there and plausible.
func TestMetricsMove(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n1 := StartNode(t, "n1", "[metrics]\nlisten = \""+addr+"\"\n")
	nodes := []*Node{n1, joinNode(t, []*Node{n1}, "n2", ""), joinNode(t, []*Node{n1}, "n3", "")}
	waitRing(t, nodes, 3)
	c := ctx(t)
	rdb := n1.Redis()

	before := scrape(t, addr)
	for i := range 5 {
		if err := rdb.Set(c, fmt.Sprintf("m:%d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Get(c, "m:0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Incr(c, "m:1").Err(); err == nil {
		t.Fatal("INCR of a non-number succeeded")
	}
	if err := rdb.Do(c, "NOSUCHCOMMAND", "x").Err(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	raw := dialRaw(t, n1.Client)
	raw.send("*1\r\n$abc\r\n") // a malformed bulk length
	if l := raw.line(); !strings.HasPrefix(l, "-ERR Protocol error") {
		t.Fatalf("malformed RESP answered %q", l)
	}
	repairRound(t, n1)
	after := scrape(t, addr)
	moved := func(series string, want float64) {
		t.Helper()
		if d := after[series] - before[series]; d != want {
			t.Fatalf("%s moved by %v, want %v (now %v)", series, d, want, after[series])
		}
	}
	moved(`dynakv_commands_total{cmd="set"}`, 5)
	moved(`dynakv_command_duration_seconds_count{cmd="set"}`, 5)
	moved(`dynakv_commands_total{cmd="get"}`, 1)
	moved(`dynakv_command_errors_total{cmd="incr",error="ERR"}`, 1)
	moved("dynakv_unknown_commands_total", 1)
	moved("dynakv_protocol_errors_total", 1)
	if after["dynakv_ae_last_round_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("dynakv_ae_last_round_timestamp_seconds = %v after DYN.REPAIR", after["dynakv_ae_last_round_timestamp_seconds"])
	}
	if after["dynakv_hint_bytes_limit"] != 256<<20 {
		t.Fatalf("dynakv_hint_bytes_limit = %v, want the default 256mb", after["dynakv_hint_bytes_limit"])
	}
	build := false
	for series, v := range after {
		build = build || (strings.HasPrefix(series, "dynakv_build_info{") && strings.Contains(series, `goversion="go`) && v == 1)
	}
	if !build {
		t.Fatal("no dynakv_build_info series with a Go version")
	}
	if after[`dynakv_command_duration_seconds_sum{cmd="set"}`] <= before[`dynakv_command_duration_seconds_sum{cmd="set"}`] {
		t.Fatal("SET's latency sum did not grow")
	}
	if after["dynakv_read_siblings_count"] <= before["dynakv_read_siblings_count"] {
		t.Fatal("a GET did not record its sibling count")
	}
	for series, ok := range map[string]bool{
		`dynakv_members{state="alive"}`: after[`dynakv_members{state="alive"}`] == 3,
		"dynakv_ring_epoch":             after["dynakv_ring_epoch"] > 0,
		"dynakv_ring_partitions":        after["dynakv_ring_partitions"] > 0,
		"dynakv_connected_clients":      after["dynakv_connected_clients"] >= 1,
		"dynakv_pebble_disk_bytes":      after["dynakv_pebble_disk_bytes"] > 0,
		"dynakv_pebble_memtable_bytes":  after["dynakv_pebble_memtable_bytes"] > 0,
	} {
		if !ok {
			t.Fatalf("%s = %v", series, after[series])
		}
	}
	for _, series := range []string{"dynakv_hints_pending", "dynakv_hints_delivered_total", "dynakv_read_repairs_total",
		"dynakv_ae_exchanges_total", "dynakv_ae_keys_repaired_total", "dynakv_handoff_partitions_pending",
		"dynakv_hint_bytes", `dynakv_hints_dropped_total{reason="refused"}`, `dynakv_hints_dropped_total{reason="expired"}`,
		"dynakv_handoff_objects_copied_total", "dynakv_ae_exchange_failures_total", "dynakv_rejected_connections_total",
		"dynakv_pebble_l0_files", "dynakv_pebble_compactions_total", "go_goroutines"} {
		if _, ok := after[series]; !ok {
			t.Fatalf("no %s in the scrape", series)
		}
	}

	// With both other replicas gone, a write cannot reach W=2.
	nodes[1].Kill()
	nodes[2].Kill()
	deadline := time.Now().Add(30 * time.Second)
	for scrape(t, addr)["dynakv_quorum_failures_total"] == after["dynakv_quorum_failures_total"] {
		if time.Now().After(deadline) {
			t.Fatal("no write failed its quorum with two of three nodes down")
		}
		err := rdb.Set(c, "m:quorum", "v", 0).Err()
		if err != nil && !strings.HasPrefix(err.Error(), "UNAVAILABLE") {
			t.Fatalf("SET with two of three down: %v", err)
		}
	}
	final := scrape(t, addr)
	if final[`dynakv_command_errors_total{cmd="set",error="UNAVAILABLE"}`] == 0 {
		t.Fatal("the UNAVAILABLE SET is not among SET's errors")
	}
}

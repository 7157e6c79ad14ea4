package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// repairRound runs DYN.REPAIR on a node that has run no anti-entropy
// round yet and waits until one has ended.
func repairRound(t *testing.T, n *Node) {
	t.Helper()
	if err := n.Redis().Do(ctx(t), "DYN.REPAIR").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for infoInt(t, n, "ae_last_round_age_seconds") < 0 {
		if time.Now().After(deadline) {
			t.Fatalf("DYN.REPAIR on %s ran no anti-entropy round", n.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDashboardAndAlerts checks what ships in docs/ for Prometheus and
// Grafana: promtool accepts the alerting rules and their unit tests pass
// (each alert fires on the series it is for and not before), every query
// of the dashboard is valid PromQL, and every dynakv_ metric either names
// is one a real node exports.
func TestDashboardAndAlerts(t *testing.T) {
	promtool := needTool(t, "promtool")
	docs, err := filepath.Abs("../docs")
	if err != nil {
		t.Fatal(err)
	}
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(docs, "check", "rules", "prometheus-alerts.yml")
	run(docs, "test", "rules", "prometheus-alerts.test.yml")

	b, err := os.ReadFile(filepath.Join(docs, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	// Grafana's variables, as a scrape of job "dynakv" would fill them.
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", "dynakv", "$instance", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	queries := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Fatalf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			fmt.Fprintf(&rules, "      - record: dashboard_query_%d\n        expr: %q\n", queries, vars.Replace(q.Expr))
		}
	}
	tmp := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(tmp, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(docs, "check", "rules", tmp)

	// Every metric the two files use exists on a real node.
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n := StartNode(t, "n1", "[metrics]\nlisten = \""+addr+"\"\n")
	repairRound(t, n)
	// A read and a failing command, so that the per-command series exist.
	if err := n.Redis().Set(ctx(t), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := n.Redis().Incr(ctx(t), "k").Err(); err == nil {
		t.Fatal("INCR of a non-number succeeded")
	}
	if err := n.Redis().Get(ctx(t), "k").Err(); err != nil {
		t.Fatal(err)
	}
	var exported []string
	for series := range scrape(t, addr) {
		name, _, _ := strings.Cut(series, "{")
		exported = append(exported, name)
	}
	alerts, err := os.ReadFile(filepath.Join(docs, "prometheus-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`dynakv_[a-z0-9_]+`).FindAllString(string(b)+string(alerts), -1)
	slices.Sort(used)
	used = slices.Compact(used)
	for _, name := range used {
		if !slices.Contains(exported, name) {
			t.Errorf("docs use %s, which the node does not export", name)
		}
	}
	if !t.Failed() {
		t.Logf("%d alerting rules checked and unit-tested, %d dashboard panels with %d queries valid, %d dynakv_ metrics used, all exported",
			strings.Count(string(alerts), "- alert:"), len(dash.Panels), queries, len(used))
	}
}

package tests

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCompareScriptRuns runs bench/compare.sh at a tiny size and checks it
// prints its table; the figures themselves are never asserted.
func TestCompareScriptRuns(t *testing.T) {
	needTool(t, "redis-server")
	needTool(t, "redis-benchmark")
	out, err := exec.Command("bash", "../bench/compare.sh", "-n", "2000", "-P", "1 4", "-t", "get", "-R", "2", "-m", "1000").CombinedOutput()
	if err != nil {
		t.Fatalf("bench/compare.sh: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"target", "CPU us/req", "redis-server   GET", "bare-redcon    GET", "dynakv-1node   GET", "dynakv-always  GET", "dynakv-3nodes  GET", "fsync always / everysec", "medians of 2 rounds", "bytes per key"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the table lacks %q:\n%s", want, text)
		}
	}
	t.Logf("\n%s", text)
}

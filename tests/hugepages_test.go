package tests

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// A node asks glibc's malloc for transparent huge pages (Pebble's memtables
// and block cache come from malloc) by re-executing itself with
// GLIBC_TUNABLES set, as the same process; a value the operator set is
// left alone. Without cgo there is no malloc to ask and nothing changes.
func TestMallocHugePages(t *testing.T) {
	if runtime.GOOS != "linux" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs on Linux; this test checks a Linux-only start")
		}
		t.Skip("GLIBC_TUNABLES is read on Linux only")
	}
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	cgo := false
	for _, s := range bi.Settings {
		if s.Key == "CGO_ENABLED" {
			cgo = s.Value == "1"
		}
	}
	cases := []struct {
		name, env, want string
	}{
		{"default", "GLIBC_TUNABLES=", map[bool]string{true: "glibc.malloc.hugetlb=1", false: ""}[cgo]},
		{"operator's", "GLIBC_TUNABLES=glibc.malloc.hugetlb=0", "glibc.malloc.hugetlb=0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := NewNode(t, "n1", "")
			n.Env = []string{c.env}
			n.Start()
			info, err := n.Redis().Info(context.Background(), "server").Result()
			if err != nil {
				t.Fatal(err)
			}
			pid := -1
			for _, line := range strings.Split(info, "\r\n") {
				if v, ok := strings.CutPrefix(line, "process_id:"); ok {
					pid, _ = strconv.Atoi(v)
				}
			}
			n.mu.Lock()
			started := n.cmd.Process.Pid
			n.mu.Unlock()
			if pid != started {
				t.Fatalf("INFO says process %d; the harness started %d", pid, started)
			}
			environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range bytes.Split(environ, []byte{0}) {
				if v, ok := bytes.CutPrefix(kv, []byte("GLIBC_TUNABLES=")); ok {
					got = append(got, string(v))
				}
			}
			if len(got) != 1 || got[0] != c.want {
				t.Fatalf("GLIBC_TUNABLES in the running node = %q, want [%q]", got, c.want)
			}
		})
	}
}

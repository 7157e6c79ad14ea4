//go:build linux && cgo

package main

import (
	"os"
	"strings"
	"syscall"
)

// tunables is what glibc's malloc is asked for: transparent huge pages.
// Pebble allocates its memtables (64 MB arenas) and block cache with
// malloc when cgo is on, and a write's memtable insert walks a skiplist
// spread over the whole arena: with 4 KB pages nearly every step is a TLB
// miss as well as a cache miss. RocksDB offers memtable_huge_page_size for
// the same reason; Pebble has no such option, but glibc can madvise every
// large mapping it makes. Measured on 1-node SET -P 16 (8 runs, alternated):
// 95.2k against 83.9k SETs per second, 14% less CPU per SET, and 2 bytes
// more resident memory per key at 1 000 000 keys.
const tunables = "glibc.malloc.hugetlb=1"

// withHugePages re-executes the binary, in the same process (its PID
// stays), with GLIBC_TUNABLES set to tunables: glibc reads it only as the
// program starts. An operator who sets GLIBC_TUNABLES, to anything, keeps
// it as set (glibc.malloc.hugetlb=0 turns this off). It returns, doing
// nothing, if the exec fails; huge pages are an optimisation only.
func withHugePages() {
	if os.Getenv("GLIBC_TUNABLES") != "" {
		return
	}
	env := []string{"GLIBC_TUNABLES=" + tunables}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GLIBC_TUNABLES=") {
			env = append(env, kv)
		}
	}
	_ = syscall.Exec("/proc/self/exe", os.Args, env)
}

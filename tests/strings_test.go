package tests

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// differ runs the same commands against a real redis-server and a dynakv
// node and requires the same replies: values, nils and error texts.
type differ struct {
	t          *testing.T
	real, ours *redis.Client
	ran        int
}

func (d *differ) do(args ...any) {
	d.t.Helper()
	c := ctx(d.t)
	want, wantErr := d.real.Do(c, args...).Result()
	got, gotErr := d.ours.Do(c, args...).Result()
	d.ran++
	if fmt.Sprintf("%q %v", want, wantErr) != fmt.Sprintf("%q %v", got, gotErr) {
		d.t.Fatalf("%v:\n redis-server: %q %v\n dynakv:       %q %v", args, want, wantErr, got, gotErr)
	}
}

// TestStringRangesLikeRedis ports the cases of Redis's string suite for
// SETRANGE, GETRANGE, SUBSTR, LCS and TOUCH (tests/unit/type/string.tcl
// and keyspace.tcl) and runs each against a real redis-server and a
// 3-node dynakv cluster, the writes and the reads through different
// nodes: every reply must be the same, errors included.
func TestStringRangesLikeRedis(t *testing.T) {
	real := startRedisServer(t)
	nodes := StartCluster(t, 3, "")
	d := &differ{t: t, real: real, ours: nodes[0].Redis()}
	read := &differ{t: t, real: real, ours: nodes[1].Redis()}

	// SETRANGE against a key that does not exist, a string, a number.
	for _, c := range [][]any{
		{"mykey", 0, "foo"}, {"mykey", 0, ""}, {"mykey", 1, "foo"},
	} {
		d.do("DEL", "mykey")
		d.do(append([]any{"SETRANGE"}, c...)...)
		read.do("GET", "mykey")
		read.do("EXISTS", "mykey")
	}
	for _, base := range []string{"foo", "1234"} {
		for _, c := range [][]any{{0, "b"}, {0, ""}, {1, "b"}, {4, "bar"}, {5, "2"}, {0, "2"}, {1, "3"}} {
			d.do("SET", "mykey", base)
			d.do(append([]any{"SETRANGE", "mykey"}, c...)...)
			read.do("GET", "mykey")
		}
	}
	d.do("DEL", "mykey")
	d.do("SETRANGE", "mykey", 512*1024*1024-4, "world")
	d.do("SET", "mykey", "hello")
	d.do("SETRANGE", "mykey", -1, "world")
	d.do("SETRANGE", "mykey", 512*1024*1024-4, "world")
	d.do("SETRANGE", "mykey", "notanumber", "x")
	d.do("SETRANGE", "K", "9223372036854775807", "A")
	d.do("SETRANGE", "K", "2147483647", "A")
	d.do("SETRANGE", "mykey")

	// GETRANGE against nothing, a string, a number; huge ranges; SUBSTR.
	d.do("DEL", "mykey")
	read.do("GETRANGE", "mykey", 0, -1)
	ranges := [][2]int64{{0, 3}, {0, -1}, {-4, -1}, {5, 3}, {5, 5000}, {-5000, 10000}, {0, -100}, {1, -100},
		{-1, -100}, {-100, -99}, {-100, -100}, {-100, -101}, {3, 5000}, {0, 4294967297}}
	for _, v := range []string{"Hello World", "1234", "bar"} {
		d.do("SET", "mykey", v)
		for _, r := range ranges {
			read.do("GETRANGE", "mykey", r[0], r[1])
		}
	}
	d.do("SET", "key", "abcde")
	for _, r := range [][2]int64{{0, 0}, {0, 3}, {-4, -1}, {-1, -3}, {7, 8}} {
		read.do("SUBSTR", "key", r[0], r[1])
	}
	read.do("SUBSTR", "nokey", 0, 1)
	read.do("GETRANGE", "key", "x", 1)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		b := make([]byte, rng.IntN(1025))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		d.do("SET", "bin", string(b))
		read.do("GETRANGE", "bin", rng.IntN(3001)-1500, rng.IntN(3001)-1500)
	}

	// LCS, on Redis's RNA strings.
	rna1 := "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG"
	rna2 := "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT"
	d.do("SET", "virus1{t}", rna1)
	d.do("SET", "virus2{t}", rna2)
	for _, opts := range [][]any{nil, {"LEN"}, {"IDX"}, {"IDX", "WITHMATCHLEN"}, {"IDX", "WITHMATCHLEN", "MINMATCHLEN", 5},
		{"IDX", "MINMATCHLEN", -3}, {"LEN", "IDX"}, {"BOGUS"}, {"MINMATCHLEN"}, {"MINMATCHLEN", "x"}} {
		read.do(append([]any{"LCS", "virus1{t}", "virus2{t}"}, opts...)...)
	}
	for range 50 {
		a, b := randomDNA(rng, 60), randomDNA(rng, 60)
		d.do("SET", "a{t}", a)
		d.do("SET", "b{t}", b)
		read.do("LCS", "a{t}", "b{t}", "IDX", "WITHMATCHLEN")
		read.do("LCS", "a{t}", "b{t}")
	}
	read.do("LCS", "virus1{t}", "missing{t}")

	// TOUCH counts the keys that exist.
	d.do("SET", "t1", "x")
	d.do("SET", "t2", "y")
	read.do("TOUCH", "t1", "t2", "t3", "t1")
	t.Logf("%d commands, the same replies from redis-server and a 3-node dynakv", d.ran+read.ran)
}

func randomDNA(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range rng.IntN(n + 1) {
		b.WriteByte("ACGT"[rng.IntN(4)])
	}
	return b.String()
}

// TestRenameCopyMSetNXLikeRedis ports the RENAME, RENAMENX, COPY and
// MSETNX cases of Redis's keyspace and string suites that apply to
// strings, against a real redis-server and a 3-node cluster (keys of one
// slot, as Redis Cluster needs; writes and reads through different
// nodes). Keys of two slots get Redis Cluster's CROSSSLOT.
func TestRenameCopyMSetNXLikeRedis(t *testing.T) {
	real := startRedisServer(t)
	nodes := StartCluster(t, 3, "")
	d := &differ{t: t, real: real, ours: nodes[0].Redis()}
	read := &differ{t: t, real: real, ours: nodes[2].Redis()}
	for _, cmd := range [][]any{
		{"SET", "mykey{t}", "a"}, {"RENAME", "mykey{t}", "mykey1{t}"}, {"GET", "mykey{t}"}, {"GET", "mykey1{t}"},
		{"RENAME", "nokey{t}", "x{t}"}, {"RENAMENX", "nokey{t}", "x{t}"}, {"RENAME", "mykey1{t}", "mykey1{t}"},
		{"RENAMENX", "mykey1{t}", "mykey1{t}"}, {"SET", "a{t}", "1"}, {"SET", "b{t}", "2"},
		{"RENAME", "a{t}", "b{t}"}, {"GET", "a{t}"}, {"GET", "b{t}"}, {"SET", "a{t}", "3"},
		{"RENAMENX", "a{t}", "b{t}"}, {"GET", "a{t}"}, {"GET", "b{t}"}, {"RENAMENX", "a{t}", "c{t}"},
		{"GET", "a{t}"}, {"GET", "c{t}"}, {"SET", "e{t}", "v", "EX", "100"}, {"RENAME", "e{t}", "f{t}"},
		{"EXISTS", "e{t}"}, {"SET", "n{t}", "10"}, {"INCR", "n{t}"}, {"RENAME", "n{t}", "m{t}"}, {"INCR", "m{t}"},
		{"COPY", "c{t}", "d{t}"}, {"COPY", "c{t}", "d{t}"}, {"SET", "c{t}", "new"}, {"COPY", "c{t}", "d{t}", "REPLACE"},
		{"GET", "d{t}"}, {"COPY", "nokey{t}", "z{t}"}, {"COPY", "c{t}", "c{t}"}, {"COPY", "c{t}", "d{t}", "DB", "0", "REPLACE"},
		{"COPY", "c{t}", "d{t}", "BOGUS"}, {"MSETNX", "x1{t}", "a", "x2{t}", "b"}, {"MSETNX", "x2{t}", "c", "x3{t}", "d"},
		{"GET", "x2{t}"}, {"EXISTS", "x3{t}"}, {"MSETNX", "x1{t}"}, {"MSETNX", "x4{t}", "a", "x4{t}", "b"},
		{"GET", "x4{t}"}, {"RENAME", "x4{t}"},
	} {
		d.do(cmd...)
		if cmd[0] != "SET" {
			read.do("GET", cmd[1])
		}
	}
	c := ctx(t)
	if ttl, err := nodes[1].Redis().PTTL(c, "f{t}").Result(); err != nil || ttl <= 90*time.Second || ttl > 100*time.Second {
		t.Fatalf("the renamed key's TTL: %v, %v", ttl, err)
	}
	for _, cmd := range [][]any{{"RENAME", "{a}1", "{b}1"}, {"COPY", "{a}1", "{b}1"}, {"MSETNX", "{a}1", "x", "{b}1", "y"}} {
		if err := nodes[1].Redis().Do(c, cmd...).Err(); err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
			t.Fatalf("%v: %v, want CROSSSLOT", cmd, err)
		}
	}
	t.Logf("%d replies the same as redis-server's", d.ran+read.ran)
}

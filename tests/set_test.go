package tests

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestSetLikeRedis ports the cases of Redis's set suite
// (tests/unit/type/set.tcl) and the SSCAN cases of its scan suite
// (tests/unit/scan.tcl) that do not depend on encodings, DEBUG, lists or
// sorted sets (a string key stands in for a list where a case wants a key
// of another type), and runs each against a real redis-server and a
// 3-node dynakv cluster, the writes and the reads through different
// nodes: every reply must be the same, errors included. Replies whose
// order Redis does not define are compared as multisets, random replies
// (SPOP, SRANDMEMBER) by their properties, checked on both servers:
// counts, membership, distinctness, and an even spread (Redis's
// chi-square test). The keys of a command naming several share a slot
// ({t}), as Redis Cluster needs of writes. Each group of cases is a
// subtest, so a difference stops only its group.
func TestSetLikeRedis(t *testing.T) {
	suite := newPort(t)
	real, nodes, run := suite.real, suite.nodes, suite.run
	rng := rand.New(rand.NewPCG(5, 6))
	createSet := func(d *differ, key string, members ...any) {
		d.t.Helper()
		d.do("DEL", key)
		for _, m := range members {
			d.do("SADD", key, m)
		}
	}

	run("SADD SCARD SISMEMBER SMISMEMBER SMEMBERS", func(t *testing.T, d, read *differ) {
		for _, c := range [][3]any{{"foo", "bar", "bla"}, {17, 16, 18}} {
			createSet(d, "myset", c[0])
			d.do("SADD", "myset", c[1])
			d.do("SADD", "myset", c[1])
			read.do("SCARD", "myset")
			read.do("SISMEMBER", "myset", c[0])
			read.do("SISMEMBER", "myset", c[1])
			read.do("SISMEMBER", "myset", c[2])
			read.do("SMISMEMBER", "myset", c[0])
			read.do("SMISMEMBER", "myset", c[0], c[1])
			read.do("SMISMEMBER", "myset", c[0], c[2])
			read.do("SMISMEMBER", "myset", c[2], c[0])
			read.do("SMISMEMBER", "myset", c[2])
			read.doSorted("SMEMBERS", "myset")
		}
		d.do("SET", "mylist", "foo")
		read.do("SMISMEMBER", "mylist", "bar")
		read.do("SMISMEMBER", "myset1", "foo")
		read.do("SMISMEMBER", "myset1", "foo", "bar")
		read.do("SMISMEMBER", "myset")
		d.do("SADD", "mylist", "bar")
		read.do("TYPE", "mylist")

		createSet(d, "myset", 1, 2, 3)
		d.do("SADD", "myset", "a")
		read.doSorted("SMEMBERS", "myset")
		createSet(d, "myset", "213244124402402314402033402")
		read.do("SISMEMBER", "myset", "213244124402402314402033402")
		read.do("SMISMEMBER", "myset", "213244124402402314402033402")
		d.do("DEL", "myset")
		args := []any{"SADD", "myset"}
		for i := range 512 {
			args = append(args, i)
		}
		d.do(args...)
		d.do("SADD", "myset", 512)
		read.do("SCARD", "myset")
		read.doSorted("SMEMBERS", "myset")

		// Variadic SADD, members named more than once.
		d.do("DEL", "myset")
		d.do("SADD", "myset", "a", "b", "c")
		d.do("SADD", "myset", "A", "a", "b", "c", "B")
		read.doSorted("SMEMBERS", "myset")
		d.do("SADD", "myset", "x", "x", "x")
		d.do("SADD", "myset", "y", "z", "y", "z", "a")
		read.doSorted("SMEMBERS", "myset")
		read.do("SCARD", "myset")
		d.do("SREM", "myset", "x", "x")
		d.do("SREM", "myset", "y", "y", "z", "nope", "z")
		read.doSorted("SMEMBERS", "myset")

		// Integers and strings, small and large sets (the encoding cases).
		for _, c := range []struct {
			key    string
			n      int
			format string
		}{{"myintset", 100, "%d"}, {"mylargeintset", 1280, "%d"}, {"myhashset", 256, "i%03d"}} {
			d.do("DEL", c.key)
			args := []any{"SADD", c.key}
			for i := range c.n {
				args = append(args, fmt.Sprintf(c.format, i))
			}
			d.do(args...)
			read.do("SCARD", c.key)
			read.doSorted("SMEMBERS", c.key)
			read.do("SISMEMBER", c.key, fmt.Sprintf(c.format, c.n-1))
			read.do("SISMEMBER", c.key, fmt.Sprintf(c.format, c.n))
		}
		// Integers spelled differently are different members.
		d.do("DEL", "nums")
		d.do("SADD", "nums", "1", "01", "+1", "1.0", "-0", "0", " 1", "0x1", "9223372036854775808", "-9223372036854775808")
		read.doSorted("SMEMBERS", "nums")
		read.do("SMISMEMBER", "nums", 1, "001", "-0", "+0")
	})

	run("arity and wrong type", func(t *testing.T, d, read *differ) {
		for _, cmd := range [][]any{
			{"SADD", "s"}, {"SREM", "s"}, {"SMEMBERS"}, {"SMEMBERS", "s", "x"}, {"SISMEMBER", "s"},
			{"SISMEMBER", "s", "a", "b"}, {"SMISMEMBER", "s"}, {"SCARD"}, {"SCARD", "s", "x"}, {"SPOP"},
			{"SRANDMEMBER"}, {"SMOVE", "a{t}", "b{t}"}, {"SINTER"}, {"SUNION"}, {"SDIFF"}, {"SINTERSTORE", "d{t}"},
			{"SUNIONSTORE", "d{t}"}, {"SDIFFSTORE", "d{t}"}, {"SINTERCARD"}, {"SSCAN", "s"},
		} {
			d.do(cmd...)
		}
		d.do("SET", "wrongtype{t}", "somevalue")
		d.do("SADD", "set{t}", "a")
		for _, cmd := range [][]any{
			{"SADD", "wrongtype{t}", "a"}, {"SREM", "wrongtype{t}", "a"}, {"SMEMBERS", "wrongtype{t}"},
			{"SISMEMBER", "wrongtype{t}", "a"}, {"SMISMEMBER", "wrongtype{t}", "a", "b"}, {"SCARD", "wrongtype{t}"},
			{"SPOP", "wrongtype{t}"}, {"SPOP", "wrongtype{t}", 1}, {"SRANDMEMBER", "wrongtype{t}"},
			{"SRANDMEMBER", "wrongtype{t}", -1}, {"SSCAN", "wrongtype{t}", 0}, {"SINTER", "set{t}", "wrongtype{t}"},
			{"SUNION", "wrongtype{t}"}, {"SDIFF", "wrongtype{t}", "set{t}"}, {"SINTERCARD", 1, "wrongtype{t}"},
			{"SINTERSTORE", "d{t}", "wrongtype{t}"}, {"SUNIONSTORE", "d{t}", "set{t}", "wrongtype{t}"},
			{"SDIFFSTORE", "d{t}", "wrongtype{t}"}, {"SMOVE", "wrongtype{t}", "set{t}", "a"},
			{"SMOVE", "set{t}", "wrongtype{t}", "a"}, {"SADD", "wrongtype{t}"},
		} {
			d.do(cmd...)
		}
		read.do("GET", "wrongtype{t}")
		read.doSorted("SMEMBERS", "set{t}")
		read.do("EXISTS", "d{t}")
		d.do("HSET", "hash{t}", "a", 1)
		d.do("SADD", "hash{t}", "a")
		d.do("SINTER", "set{t}", "hash{t}")
		d.do("HSET", "set{t}", "a", 1)
		d.do("SUNIONSTORE", "hash{t}", "set{t}")
		read.do("TYPE", "hash{t}")
		read.doSorted("SMEMBERS", "hash{t}")
	})

	run("SREM", func(t *testing.T, d, read *differ) {
		for _, c := range [][]any{{"foo", "bar", "ciao", "qux"}, {3, 4, 5, 6}} {
			createSet(d, "myset", c[:3]...)
			d.do("SREM", "myset", c[3])
			d.do("SREM", "myset", c[0])
			read.doSorted("SMEMBERS", "myset")
		}
		d.do("DEL", "myset")
		d.do("SADD", "myset", "a", "b", "c", "d")
		d.do("SREM", "myset", "k", "k", "k")
		d.do("SREM", "myset", "b", "d", "x", "y")
		read.doSorted("SMEMBERS", "myset")
		d.do("DEL", "myset")
		d.do("SADD", "myset", 1, 2, 3)
		d.do("SREM", "myset", 1, 2, 3, 4, 5, 6, 7, 8)
		read.do("EXISTS", "myset")
		read.do("TYPE", "myset")
		read.do("SCARD", "myset")
		read.do("SMEMBERS", "myset")
		d.do("SREM", "myset", 1)
		d.do("SREM", "nokey", 1)
		d.do("SET", "str", "x")
		d.do("SREM", "str", "x")
		d.do("SREM", "myset")
		d.do("SADD", "myset")
		d.do("SADD", "myset", 9)
		d.do("SREM", "myset", 9)
		read.do("EXISTS", "myset")
	})

	run("SINTERCARD", func(t *testing.T, d, read *differ) {
		for _, cmd := range [][]any{
			{"SINTERCARD"}, {"SINTERCARD", 1}, {"SINTERCARD", 0, "myset{t}"}, {"SINTERCARD", "a", "myset{t}"},
			{"SINTERCARD", -1, "myset{t}"}, {"SINTERCARD", "99999999999999999999", "myset{t}"},
			{"SINTERCARD", 2, "myset{t}"}, {"SINTERCARD", 3, "myset{t}", "myset2{t}"},
			{"SINTERCARD", 1, "myset{t}", "myset2{t}"}, {"SINTERCARD", 1, "myset{t}", "bar_arg"},
			{"SINTERCARD", 1, "myset{t}", "LIMIT"}, {"SINTERCARD", 1, "myset{t}", "LIMIT", -1},
			{"SINTERCARD", 1, "myset{t}", "LIMIT", "a"}, {"SINTERCARD", 1, "myset{t}", "LIMIT", 1, "LIMIT"},
			{"SINTERCARD", 1, "myset{t}", "LIMIT", "99999999999999999999"},
		} {
			read.do(cmd...)
		}
		d.do("DEL", "set{t}")
		d.do("SADD", "set{t}", "a", "b", "c")
		d.do("SET", "key1{t}", "x")
		read.do("SINTERCARD", 1, "key1{t}")
		read.do("SINTERCARD", 2, "set{t}", "key1{t}")
		read.do("SINTERCARD", 2, "key1{t}", "noset{t}")
		read.do("SINTERCARD", 1, "non-existing-key")
		read.do("SINTERCARD", 1, "non-existing-key", "limit", 0)
		read.do("SINTERCARD", 1, "non-existing-key", "limit", 10)
		read.do("SINTERCARD", 1, "set{t}", "LIMIT", 1, "LIMIT", 0)
		read.do("SINTERCARD", 1, "set{t}", "limit", 2)
	})

	run("SINTER SUNION SDIFF and STORE", func(t *testing.T, d, read *differ) {
		for _, large := range []any{"foo", 200} {
			for i := 1; i <= 5; i++ {
				d.do("DEL", fmt.Sprintf("set%d{t}", i))
			}
			for i := range 200 {
				d.do("SADD", "set1{t}", i)
				d.do("SADD", "set2{t}", i+195)
			}
			d.do("SADD", "set3{t}", 199, 195, 1000, 2000)
			for i := 5; i < 200; i++ {
				d.do("SADD", "set4{t}", i)
			}
			d.do("SADD", "set5{t}", 0)
			for i := 1; i <= 5; i++ {
				d.do("SADD", fmt.Sprintf("set%d{t}", i), large)
			}
			read.doSorted("SINTER", "set1{t}", "set2{t}")
			read.do("SINTERCARD", 2, "set1{t}", "set2{t}")
			read.do("SINTERCARD", 2, "set1{t}", "set2{t}", "limit", 0)
			read.do("SINTERCARD", 2, "set1{t}", "set2{t}", "limit", 3)
			read.do("SINTERCARD", 2, "set1{t}", "set2{t}", "limit", 10)
			d.do("SINTERSTORE", "setres{t}", "set1{t}", "set2{t}")
			read.doSorted("SMEMBERS", "setres{t}")
			read.doSorted("SUNION", "set1{t}", "set2{t}")
			d.do("SUNIONSTORE", "setres{t}", "set1{t}", "set2{t}")
			read.doSorted("SMEMBERS", "setres{t}")
			read.do("SCARD", "setres{t}")
			read.doSorted("SINTER", "set1{t}", "set2{t}", "set3{t}")
			read.do("SINTERCARD", 3, "set1{t}", "set2{t}", "set3{t}")
			read.do("SINTERCARD", 3, "set1{t}", "set2{t}", "set3{t}", "limit", 0)
			read.do("SINTERCARD", 3, "set1{t}", "set2{t}", "set3{t}", "limit", 2)
			read.do("SINTERCARD", 3, "set1{t}", "set2{t}", "set3{t}", "limit", 10)
			d.do("SINTERSTORE", "setres{t}", "set1{t}", "set2{t}", "set3{t}")
			read.doSorted("SMEMBERS", "setres{t}")
			read.doSorted("SUNION", "nokey1{t}", "set1{t}", "set2{t}", "nokey2{t}")
			read.doSorted("SDIFF", "set1{t}", "set4{t}")
			read.doSorted("SDIFF", "set1{t}", "set4{t}", "set5{t}")
			d.do("SDIFFSTORE", "setres{t}", "set1{t}", "set4{t}", "set5{t}")
			read.doSorted("SMEMBERS", "setres{t}")
			read.doSorted("SINTER", "set1{t}", "set1{t}", "set1{t}")
			read.doSorted("SUNION", "set1{t}", "set1{t}", "set1{t}")
			read.doSorted("SDIFF", "set1{t}", "set1{t}", "set1{t}")
			read.doSorted("SINTER", "set1{t}")
			read.doSorted("SUNION", "set5{t}")
			read.doSorted("SDIFF", "set3{t}")
		}

		d.do("DEL", "set1{t}", "set2{t}", "set3{t}")
		d.do("SADD", "set2{t}", 1, 2, 3, 4)
		d.do("SADD", "set3{t}", "a", "b", "c", "d")
		read.do("SDIFF", "set1{t}", "set2{t}", "set3{t}")
		d.do("DEL", "set1")
		d.do("SADD", "set1", "a", "b", "c", 1, 2, 3, 4, 5, 6)
		read.do("SDIFF", "set1", "set1")

		// SDIFF fuzzing.
		for range 50 {
			var keys []any
			for i := range rng.IntN(10) + 1 {
				key := fmt.Sprintf("set_%d{t}", i)
				keys = append(keys, key)
				d.do("DEL", key)
				args := []any{"SADD", key}
				for range rng.IntN(100) {
					args = append(args, randomValue(rng))
				}
				if len(args) > 2 {
					d.do(args...)
				}
			}
			read.doSorted(append([]any{"SDIFF"}, keys...)...)
			read.doSorted(append([]any{"SINTER"}, keys...)...)
			read.doSorted(append([]any{"SUNION"}, keys...)...)
			d.do(append([]any{"SDIFFSTORE", "fuzzres{t}"}, keys...)...)
			read.doSorted("SMEMBERS", "fuzzres{t}")
		}

		// Against keys of another type, and keys that do not exist.
		d.do("SET", "key1{t}", "x")
		for _, op := range []string{"SDIFF", "SINTER", "SUNION"} {
			d.do("DEL", "set1{t}")
			read.do(op, "key1{t}", "noset{t}")
			read.do(op, "noset{t}", "key1{t}")
			d.do("SADD", "set1{t}", "a", "b", "c")
			read.do(op, "key1{t}", "set1{t}")
			read.do(op, "set1{t}", "key1{t}")
		}
		d.do("DEL", "set1{t}", "set2{t}", "set3{t}")
		d.do("SADD", "set1{t}", "a", "b", "c")
		d.do("SADD", "set2{t}", "b", "c", "d")
		read.doSorted("SDIFF", "set1{t}", "set2{t}", "set3{t}")
		read.do("SDIFF", "set3{t}", "set2{t}", "set1{t}")
		read.do("SINTER", "set1{t}", "set2{t}", "set3{t}")
		read.doSorted("SUNION", "set1{t}", "set2{t}", "set3{t}")

		for _, op := range []string{"SDIFFSTORE", "SINTERSTORE", "SUNIONSTORE"} {
			d.do("DEL", "set1{t}", "set2{t}", "set3{t}", "key1{t}")
			d.do("SET", "key1{t}", "x")
			d.do(op, "set3{t}", "key1{t}", "noset{t}")
			read.do("EXISTS", "set3{t}")
			d.do(op, "set3{t}", "noset{t}", "key1{t}")
			read.do("EXISTS", "set3{t}")
			d.do("SADD", "set1{t}", "a", "b", "c")
			d.do("SADD", "set2{t}", "b", "c", "d")
			d.do("SADD", "set3{t}", "e")
			d.do(op, "set3{t}", "key1{t}", "set1{t}", "noset{t}")
			read.do("EXISTS", "set3{t}")
			read.doSorted("SMEMBERS", "set3{t}")
			d.do(op, "set3{t}", "set1{t}", "key1{t}", "set2{t}")
			d.do(op, "set3{t}", "noset{t}", "key1{t}", "set2{t}")
			read.doSorted("SMEMBERS", "set3{t}")
			d.do(op, "key1{t}", "set1{t}", "set2{t}", "key1{t}")
			read.do("TYPE", "key1{t}")

			// An empty result deletes the destination, whatever it was.
			d.do("DEL", "set1{t}", "set2{t}", "set3{t}")
			d.do("SET", "setres{t}", "xxx")
			d.do(op, "setres{t}", "foo111{t}", "bar222{t}")
			read.do("EXISTS", "setres{t}")
			d.do("SADD", "set3{t}", "a", "b", "c")
			d.do(op, "set3{t}", "set1{t}", "set2{t}")
			read.do("EXISTS", "set3{t}")
			d.do("SADD", "set1{t}", "a", "b", "c")
			d.do("SADD", "set3{t}", "e", "f")
			d.do(op, "set3{t}", "set1{t}", "set2{t}")
			read.do("EXISTS", "set3{t}")
			read.doSorted("SMEMBERS", "set3{t}")
			d.do("SADD", "set3{t}", "a", "b", "c")
			d.do(op, "set3{t}", "set2{t}", "set1{t}")
			read.do("EXISTS", "set3{t}")
			read.doSorted("SMEMBERS", "set3{t}")

			// A result over a string, a hash, a set with a TTL; a
			// destination that is also a source.
			d.do("SADD", "set2{t}", "b", "c", "x")
			for _, setup := range [][]any{{"SET", "dst{t}", "str"}, {"HSET", "dst{t}", "b", "1"}, {"SADD", "dst{t}", "z", "b"}} {
				d.do("DEL", "dst{t}")
				d.do(setup...)
				d.do("EXPIRE", "dst{t}", 100)
				d.do(op, "dst{t}", "set1{t}", "set2{t}")
				read.do("TYPE", "dst{t}")
				read.doSorted("SMEMBERS", "dst{t}")
				read.do("TTL", "dst{t}")
			}
			d.do(op, "set1{t}", "set1{t}", "set2{t}")
			read.doSorted("SMEMBERS", "set1{t}")
			d.do("DEL", "set1{t}")
			d.do("SADD", "set1{t}", "a", "b", "c")
		}
		d.do("SINTERSTORE", "setres{t}")
		d.do("SUNIONSTORE", "setres{t}")
		d.do("SDIFF")
		d.do("SINTER")
		d.do("SUNION")

		d.do("DEL", "set1{t}", "set2{t}")
		d.do("SADD", "set1{t}", 1, 2, 3)
		d.do("SADD", "set2{t}", 1, 2, 3, "a")
		d.do("SREM", "set2{t}", "a")
		read.doSorted("SINTER", "set1{t}", "set2{t}")
	})

	run("SPOP", func(t *testing.T, d, read *differ) {
		left := func(members ...string) []map[string]bool {
			var out []map[string]bool
			for range 2 {
				m := map[string]bool{}
				for _, s := range members {
					m[s] = true
				}
				out = append(out, m)
			}
			return out
		}
		// spop runs SPOP (with a count when count >= 0) on both servers and
		// checks each reply against the members each has left.
		spop := func(key string, count int, sides []map[string]bool) {
			t.Helper()
			args := []any{"SPOP", key}
			if count >= 0 {
				args = append(args, count)
			}
			want, got := d.both(args...)
			for i, reply := range []any{want, got} {
				if err := popped(sides[i], reply, count); err != nil {
					t.Fatalf("%q, %s: %v: %q", args, []string{"redis-server", "dynakv"}[i], err, reply)
				}
			}
		}
		for _, contents := range [][]string{{"a", "b", "c"}, {"1", "2", "3"}} {
			for _, count := range []int{-1, 1} {
				members := make([]any, len(contents))
				for i, m := range contents {
					members[i] = m
				}
				createSet(d, "myset", members...)
				sides := left(contents...)
				for range 3 {
					spop("myset", count, sides)
				}
				read.do("SCARD", "myset")
				read.do("EXISTS", "myset")
				spop("myset", count, sides)
			}
			createSet(d, "myset", "a", "b", "c")
			for _, cl := range []*redis.Client{real, nodes[1].Redis()} {
				eventuallyAll(t, cl, map[string]string{"a": "", "b": "", "c": ""}, func(int) []any {
					return []any{"SRANDMEMBER", "myset"}
				})
			}
		}
		letters, numbers := []string{}, []string{}
		for i := range 26 {
			letters = append(letters, string(rune('a'+i)))
			numbers = append(numbers, strconv.Itoa(i+1))
		}
		for _, contents := range [][]string{letters, numbers} {
			d.do("DEL", "myset")
			d.do(append([]any{"SADD", "myset"}, anys(contents)...)...)
			sides := left(contents...)
			for _, count := range []int{11, 9, 0, 4, 1, 0, 1, 0} {
				spop("myset", count, sides)
			}
			read.do("SCARD", "myset")
			read.do("EXISTS", "myset")
		}
		twenty := numbers[:20]
		d.do("DEL", "myset")
		d.do(append([]any{"SADD", "myset"}, anys(twenty)...)...)
		sides := left(twenty...)
		read.do("SCARD", "myset")
		for _, count := range []int{1, 2, 3, 10, 10, 1} {
			spop("myset", count, sides)
			read.do("SCARD", "myset")
		}
		read.do("SPOP", "nonexisting_key", 100)
		read.do("SPOP", "nonexisting_key")
		read.do("SPOP", "nonexisting_key", 0)
		for _, count := range []int{30, 2, 18} {
			d.do("DEL", "myset")
			d.do(append([]any{"SADD", "myset"}, anys(twenty)...)...)
			sides := left(twenty...)
			spop("myset", count, sides)
			read.do("SCARD", "myset")
			for i, cl := range []*redis.Client{real, nodes[1].Redis()} {
				ms, err := cl.SMembers(ctx(t), "myset").Result()
				if err != nil || len(ms) != len(sides[i]) {
					t.Fatalf("SMEMBERS after SPOP %d: %q %v, want %d", count, ms, err, len(sides[i]))
				}
				for _, m := range ms {
					if !sides[i][m] {
						t.Fatalf("SMEMBERS after SPOP %d: %q was popped", count, m)
					}
				}
			}
		}
		d.do("SPOP", "myset", -1)
		d.do("SPOP", "myset", "abc")
		d.do("SPOP", "myset", "1.5")
		d.do("SPOP", "myset", "-9223372036854775808")
		d.do("SPOP", "myset", "9223372036854775808")
		d.do("SPOP", "myset", 1, 2)
		d.do("SPOP")
		d.do("SET", "str", "x")
		d.do("SPOP", "str")
		d.do("SPOP", "str", 2)
		d.do("SPOP", "str", -2)
		d.do("SRANDMEMBER", "str")
		d.do("SRANDMEMBER", "str", 2)
	})

	run("SRANDMEMBER", func(t *testing.T, d, read *differ) {
		createSet(d, "myset", "a", "b", "c")
		read.do("SRANDMEMBER", "myset", 0)
		read.do("SRANDMEMBER", "nonexisting_key", 100)
		read.do("SRANDMEMBER", "nonexisting_key", -100)
		read.do("SRANDMEMBER", "nonexisting_key", 0)
		read.do("SRANDMEMBER", "nonexisting_key")
		read.do("SRANDMEMBER", "myset", "abc")
		read.do("SRANDMEMBER", "myset", 1, 2)
		read.do("SRANDMEMBER", "myset", "9223372036854775808")
		read.do("SRANDMEMBER")

		for _, contents := range [][]string{
			{"1", "5", "10", "50", "125", "50000", "33959417", "4775547", "65434162", "12098459", "427716", "483706",
				"2726473884", "72615637475", "MARY", "PATRICIA", "LINDA", "BARBARA", "ELIZABETH", "JENNIFER", "MARIA",
				"SUSAN", "MARGARET", "DOROTHY", "LISA", "NANCY", "KAREN", "BETTY", "HELEN", "SANDRA", "DONNA", "CAROL",
				"RUTH", "SHARON", "MICHELLE", "LAURA", "SARAH", "KIMBERLY", "DEBORAH", "JESSICA", "SHIRLEY", "CYNTHIA",
				"ANGELA", "MELISSA", "BRENDA", "AMY", "ANNA", "REBECCA", "VIRGINIA", "KATHLEEN"},
			numberStrings(50),
		} {
			set := map[string]string{}
			for _, m := range contents {
				set[m] = ""
			}
			d.do("DEL", "myset")
			d.do(append([]any{"SADD", "myset"}, anys(contents)...)...)
			read.doSorted("SMEMBERS", "myset")
			read.do("SRANDMEMBER", "myset", 0)
			// Path 1: a negative count, repeats allowed.
			read.doRandom(randomFields(set, -100, false, false), "SRANDMEMBER", "myset", -100)
			for _, cl := range []*redis.Client{real, nodes[1].Redis()} {
				eventuallyAll(t, cl, set, func(int) []any { return []any{"SRANDMEMBER", "myset", -10} })
			}
			// Path 2: a count of at least the size, every member once.
			for _, size := range []int{50, 100} {
				read.doSorted("SRANDMEMBER", "myset", size)
			}
			// Paths 3 and 4: fewer members than there are, distinct.
			for _, size := range []int{45, 5} {
				read.doRandom(randomFields(set, size, false, false), "SRANDMEMBER", "myset", size)
				for _, cl := range []*redis.Client{real, nodes[1].Redis()} {
					eventuallyAll(t, cl, set, func(int) []any { return []any{"SRANDMEMBER", "myset", size} })
				}
			}
		}

		// The histogram: even spread, for negative and positive counts.
		for _, contents := range [][]string{
			{"1", "5", "10", "50", "125", "MARY", "PATRICIA", "LINDA", "BARBARA", "ELIZABETH"}, numberStrings(10),
		} {
			set := map[string]string{}
			for _, m := range contents {
				set[m] = ""
			}
			d.do("DEL", "myset")
			d.do(append([]any{"SADD", "myset"}, anys(contents)...)...)
			read.doRandom(chiSquare(set, 40), "SRANDMEMBER", "myset", -1000)
			evenSingles(t, []*redis.Client{real, nodes[1].Redis()}, set, "SRANDMEMBER", "myset")
			for _, size := range []int{8, 2} {
				for i, cl := range []*redis.Client{real, nodes[1].Redis()} {
					var all []any
					for range 1000 / size {
						res, err := cl.Do(ctx(t), "SRANDMEMBER", "myset", size).Slice()
						if err != nil {
							t.Fatal(err)
						}
						all = append(all, res...)
					}
					if err := chiSquare(set, 40)(all); err != nil {
						t.Fatalf("SRANDMEMBER myset %d on %s: %v", size, []string{"redis-server", "dynakv"}[i], err)
					}
				}
			}
		}
	})

	run("SMOVE", func(t *testing.T, d, read *differ) {
		setup := func() {
			d.do("DEL", "myset3{t}", "myset4{t}")
			createSet(d, "myset1{t}", 1, "a", "b")
			createSet(d, "myset2{t}", 2, 3, 4)
		}
		check := func(keys ...string) {
			for _, k := range keys {
				read.doSorted("SMEMBERS", k)
				read.do("EXISTS", k)
			}
		}
		setup()
		d.do("SMOVE", "myset1{t}", "myset2{t}", "a")
		check("myset1{t}", "myset2{t}")
		setup()
		d.do("SMOVE", "myset1{t}", "myset2{t}", 1)
		check("myset1{t}", "myset2{t}")
		setup()
		d.do("SMOVE", "myset2{t}", "myset1{t}", 2)
		check("myset1{t}", "myset2{t}")
		setup()
		d.do("SMOVE", "myset1{t}", "myset2{t}", "foo")
		d.do("SMOVE", "myset1{t}", "myset1{t}", "foo")
		check("myset1{t}", "myset2{t}")
		setup()
		d.do("SMOVE", "noset{t}", "myset2{t}", "foo")
		check("myset2{t}", "noset{t}")
		setup()
		d.do("SMOVE", "myset1{t}", "myset3{t}", "a")
		check("myset1{t}", "myset3{t}")
		setup()
		d.do("SMOVE", "myset2{t}", "myset3{t}", 2)
		check("myset2{t}", "myset3{t}")
		d.do("SET", "x{t}", 10)
		d.do("SMOVE", "x{t}", "myset2{t}", "foo")
		d.do("SMOVE", "myset2{t}", "x{t}", "foo")
		d.do("SMOVE", "myset2{t}", "x{t}", 3)
		d.do("SMOVE", "noset{t}", "x{t}", "foo")
		d.do("SMOVE", "x{t}", "x{t}", "foo")
		d.do("SMOVE", "x{t}", "noset{t}", "foo")
		check("myset2{t}")
		read.do("GET", "x{t}")
		d.do("DEL", "set{t}")
		d.do("SADD", "set{t}", "a", "b", "c")
		d.do("SMOVE", "set{t}", "set{t}", "b")
		d.do("SMOVE", "set{t}", "set{t}", "z")
		check("set{t}")
		// Moving the last member deletes the source; a member the
		// destination has already.
		d.do("DEL", "one{t}", "two{t}")
		d.do("SADD", "one{t}", "m")
		d.do("SADD", "two{t}", "m", "n")
		d.do("SMOVE", "one{t}", "two{t}", "m")
		check("one{t}", "two{t}")
		d.do("SMOVE", "two{t}", "one{t}", "n")
		d.do("SMOVE", "two{t}", "one{t}", "m")
		check("one{t}", "two{t}")
		d.do("EXPIRE", "one{t}", 100)
		d.do("SMOVE", "one{t}", "three{t}", "m")
		read.do("TTL", "three{t}")
		d.do("SMOVE", "one{t}", "three{t}", "n")
		read.do("TTL", "three{t}")
		d.do("SMOVE", "a{t}", "b{t}")
		d.do("SMOVE", "a{t}", "b{t}", "c", "d")

		// SMOVE touches the destination only when it adds to it: a
		// transaction watching it still runs.
		var results [2]string
		for i, c := range []*redis.Client{real, nodes[0].Redis()} {
			c.Del(ctx(t), "srcset{t}", "dstset{t}")
			c.SAdd(ctx(t), "srcset{t}", "a", "b")
			c.SAdd(ctx(t), "dstset{t}", "a")
			conn := c.Conn()
			var out []any
			for _, cmd := range [][]any{{"WATCH", "dstset{t}"}, {"MULTI"}, {"SADD", "dstset{t}", "c"}} {
				res, err := conn.Do(ctx(t), cmd...).Result()
				out = append(out, res, err)
			}
			res, err := c.Do(ctx(t), "SMOVE", "srcset{t}", "dstset{t}", "a").Result()
			out = append(out, res, err)
			res, err = conn.Do(ctx(t), "EXEC").Result()
			out = append(out, res, err)
			res, err = c.Do(ctx(t), "SCARD", "dstset{t}").Result()
			out = append(out, res, err)
			conn.Close()
			results[i] = fmt.Sprintf("%q", out)
		}
		d.ran += 12
		if results[0] != results[1] {
			t.Fatalf("WATCH, MULTI, SMOVE that adds nothing, EXEC:\n redis-server: %s\n dynakv:       %s", results[0], results[1])
		}
	})

	run("intsets stress", func(t *testing.T, d, read *differ) {
		for range 4 {
			d.do("DEL", "s")
			set := map[string]bool{}
			for range rng.IntN(1024) {
				var data string
				switch rng.IntN(3) {
				case 0:
					data = strconv.Itoa(rng.IntN(65536))
				case 1:
					data = strconv.FormatUint(rng.Uint64N(4294967296), 10)
				default:
					data = strconv.FormatUint(rng.Uint64(), 10)
				}
				set[data] = true
				d.do("SADD", "s", data)
			}
			read.doSorted("SMEMBERS", "s")
			sides := []map[string]bool{copySet(set), copySet(set)}
			for range len(set) {
				want, got := d.both("SPOP", "s")
				for i, reply := range []any{want, got} {
					if err := popped(sides[i], reply, -1); err != nil {
						t.Fatalf("SPOP s, %s: %v: %q", []string{"redis-server", "dynakv"}[i], err, reply)
					}
				}
			}
			read.do("SCARD", "s")
			read.do("EXISTS", "s")
		}
	})

	run("SSCAN", func(t *testing.T, d, read *differ) {
		for _, c := range []struct {
			prefix string
			count  int
		}{{"", 100}, {"ele:", 200}, {"ele:", 1000}} {
			d.do("DEL", "set")
			args := []any{"SADD", "set"}
			for j := range c.count {
				args = append(args, fmt.Sprintf("%s%d", c.prefix, j))
			}
			d.do(args...)
			read.doScan("SSCAN", "set")
			read.doScan("SSCAN", "set", "COUNT", 5)
			read.doScan("SSCAN", "set", "COUNT", 1000)
			read.doScan("SSCAN", "set", "MATCH", "*1*")
			read.doScan("SSCAN", "set", "MATCH", c.prefix+"1?", "COUNT", 7)
			read.doScan("SSCAN", "set", "MATCH", "nothing")
		}
		// Members removed while SSCAN iterates (Redis's issue #4906): the
		// ones never removed are all reported.
		for range 10 {
			numele, delIteration := 101+rng.IntN(1000), rng.IntN(10)
			for i, cl := range []*redis.Client{real, nodes[0].Redis()} {
				if err := scanWhileRemoving(t, cl, "SSCAN", numele, delIteration); err != nil {
					t.Fatalf("SSCAN while SREM on %s: %v", []string{"redis-server", "dynakv"}[i], err)
				}
			}
			d.ran += 2
		}

		d.do("DEL", "mykey")
		d.do("SADD", "mykey", "foo", "fab", "fiz", "foobar", 1, 2, 3, 4)
		read.doScan("SSCAN", "mykey", "MATCH", "foo*", "COUNT", 10000)
		read.doScan("SSCAN", "mykey", "MATCH", "f[a-i]?")
		d.do("DEL", "mykey")
		d.do("SADD", "mykey", 111, 222, 333, 444, 1111, "a\x00b", "a*b", "\\x")
		read.doScan("SSCAN", "mykey", "MATCH", "*11*")
		read.doScan("SSCAN", "mykey", "MATCH", "a?b")
		read.doScan("SSCAN", "mykey", "MATCH", "a\\*b")
		read.doScan("SSCAN", "mykey", "MATCH", "\\\\x")
		read.do("SSCAN", "nokey", 0)
		read.do("SSCAN", "mykey", "notacursor")
		read.do("SSCAN", "mykey", 0, "COUNT", 0)
		read.do("SSCAN", "mykey", 0, "COUNT", "abc")
		read.do("SSCAN", "mykey", 0, "MATCH")
		read.do("SSCAN", "mykey", 0, "NOVALUES")
		read.do("SSCAN", "mykey", 0, "BOGUS", 1)
		read.do("SSCAN", "mykey")
		d.do("SET", "str", "x")
		read.do("SSCAN", "str", 0)
	})

	run("binary-safe members", func(t *testing.T, d, read *differ) {
		d.do("DEL", "bin{t}", "bin2{t}")
		var members []any
		for range 300 {
			members = append(members, randBytes(rng, 64))
		}
		members = append(members, "", "\x00", "\r\n", "\xff\x00E\x00", "*1\r\n$4\r\nPING\r\n")
		for _, m := range members {
			d.do("SADD", "bin{t}", m)
			read.do("SISMEMBER", "bin{t}", m)
		}
		read.do("SCARD", "bin{t}")
		read.doSorted("SMEMBERS", "bin{t}")
		read.doScan("SSCAN", "bin{t}")
		d.do(append([]any{"SADD", "bin2{t}"}, members[:150]...)...)
		read.doSorted("SINTER", "bin{t}", "bin2{t}")
		read.doSorted("SDIFF", "bin{t}", "bin2{t}")
		read.do("SMISMEMBER", "bin2{t}", "", "\x00", members[0], members[200])
		d.do("SMOVE", "bin{t}", "bin2{t}", "")
		d.do("SREM", "bin{t}", "\x00", "\r\n")
		read.do("SCARD", "bin{t}")
		read.do("SCARD", "bin2{t}")
		read.do("SISMEMBER", "bin2{t}", "")
	})

	run("sets in the keyspace", func(t *testing.T, d, read *differ) {
		d.do("DEL", "ks")
		d.do("SADD", "ks", "a", "b")
		read.do("TYPE", "ks")
		read.do("EXISTS", "ks")
		read.do("TTL", "ks")
		d.do("EXPIRE", "ks", 100)
		read.do("TTL", "ks")
		read.do("TYPE", "ks")
		d.do("SADD", "ks", "c")
		d.do("SREM", "ks", "a")
		d.do("SPOP", "ks", 0)
		read.do("TTL", "ks")
		read.doSorted("SMEMBERS", "ks")
		d.do("PERSIST", "ks")
		read.do("TTL", "ks")
		d.do("DEL", "ks")
		read.do("EXISTS", "ks")
		read.do("TYPE", "ks")
		read.do("SMEMBERS", "ks")
		d.do("SADD", "ks", "z")
		read.doSorted("SMEMBERS", "ks")

		// An expired set is gone: its members do not come back.
		d.do("SADD", "ks", "y")
		d.do("PEXPIRE", "ks", 100)
		time.Sleep(300 * time.Millisecond)
		read.do("EXISTS", "ks")
		read.do("TYPE", "ks")
		read.do("SCARD", "ks")
		read.do("SISMEMBER", "ks", "y")
		read.do("SMEMBERS", "ks")
		d.do("SADD", "ks", "x")
		read.doSorted("SMEMBERS", "ks")
		read.do("TTL", "ks")

		// A string over a set, a set over a deleted string, a hash and a
		// set under one name.
		d.do("SET", "ks", "str")
		read.do("TYPE", "ks")
		read.do("SISMEMBER", "ks", "x")
		d.do("DEL", "ks")
		d.do("SADD", "ks", "w")
		read.doSorted("SMEMBERS", "ks")
		d.do("HSET", "ks", "w", 1)
		d.do("HGET", "ks", "w")
		d.do("DEL", "ks")
		d.do("HSET", "ks", "w", 1)
		d.do("SADD", "ks", "w")
		d.do("SISMEMBER", "ks", "w")
		read.do("TYPE", "ks")
		d.do("DEL", "ks")
		read.do("DEL", "ks")

		// Sets deleted and written again at once, over and over.
		for i := range 50 {
			d.do("SADD", "rs", i, "b")
			d.do("SREM", "rs", i, i)
			d.do("DEL", "rs")
			for _, m := range []any{"a", "b", i} {
				d.do("SADD", "rs", m)
			}
			read.doSorted("SMEMBERS", "rs")
			d.do("DEL", "rs")
			read.do("SMEMBERS", "rs")
		}
	})

	run("SRANDMEMBER count overflow", func(t *testing.T, d, read *differ) {
		createSet(d, "myset", "a")
		read.do("SRANDMEMBER", "myset", "-9223372036854775808")
		read.doRandom(randomFields(map[string]string{"a": ""}, -3, false, false), "SRANDMEMBER", "myset", -3)
	})

	t.Logf("%d commands, the same replies from redis-server and a 3-node dynakv", suite.ran)
}

// scanWhileRemoving fills a set (SSCAN) or hash (HSCAN) with "x" and 0 to
// numele-1, iterates it with cmd, removes every element from 100 on after
// the delIteration-th call, and checks that 0 to 99 were all reported.
func scanWhileRemoving(t testing.TB, c *redis.Client, cmd string, numele, delIteration int) error {
	t.Helper()
	hash := cmd == "HSCAN"
	add, rem := []any{"SADD", "scanset", "x"}, []any{"SREM", "scanset"}
	if hash {
		add, rem = []any{"HSET", "scanset", "x", "v"}, []any{"HDEL", "scanset"}
	}
	for j := range numele {
		add = append(add, j)
		if hash {
			add = append(add, j)
		}
		if j >= 100 {
			rem = append(rem, j)
		}
	}
	if err := c.Del(ctx(t), "scanset").Err(); err != nil {
		return err
	}
	if err := c.Do(ctx(t), add...).Err(); err != nil {
		return err
	}
	found := map[string]bool{}
	cursor := "0"
	for iteration := 1; ; iteration++ {
		res, err := c.Do(ctx(t), cmd, "scanset", cursor).Slice()
		if err != nil || len(res) != 2 {
			return fmt.Errorf("%s scanset %s: %q %v", cmd, cursor, res, err)
		}
		items, _ := res[1].([]any)
		for j, it := range items {
			if !hash || j%2 == 0 {
				found[fmt.Sprint(it)] = true
			}
		}
		if iteration == delIteration {
			if err := c.Do(ctx(t), rem...).Err(); err != nil {
				return err
			}
		}
		if cursor = fmt.Sprint(res[0]); cursor == "0" {
			break
		}
		if iteration > 10000 {
			return errors.New("the cursor never came back to 0")
		}
	}
	for j := range 100 {
		if !found[strconv.Itoa(j)] {
			return fmt.Errorf("%d of %d elements, removing from the %dth call: %d never reported", numele, len(found), delIteration, j)
		}
	}
	return nil
}

// popped checks a SPOP reply (one member for count < 0, an array for a
// count) against the members left, and takes out the ones it names.
func popped(left map[string]bool, reply any, count int) error {
	var ms []string
	switch r := reply.(type) {
	case nil:
		if count >= 0 || len(left) > 0 {
			return errors.New("nil, with members left")
		}
		return nil
	case string:
		if count >= 0 {
			return errors.New("a member, not an array")
		}
		ms = []string{r}
	case []any:
		if count < 0 {
			return errors.New("an array, not a member")
		}
		for _, m := range r {
			ms = append(ms, fmt.Sprint(m))
		}
		if want := min(count, len(left)); len(ms) != want {
			return fmt.Errorf("%d members, want %d", len(ms), want)
		}
	default:
		return errors.New("not a member")
	}
	for _, m := range ms {
		if !left[m] {
			return fmt.Errorf("%q is not a member left", m)
		}
		delete(left, m)
	}
	return nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func numberStrings(n int) []string {
	var out []string
	for i := range n {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func copySet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

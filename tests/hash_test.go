package tests

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// TestHashLikeRedis ports the cases of Redis's hash suite
// (tests/unit/type/hash.tcl) and the HSCAN cases of its scan suite
// (tests/unit/scan.tcl) that do not depend on encodings, DEBUG, DUMP,
// CONFIG or replication, and runs each against a real redis-server and a
// 3-node dynakv cluster, the writes and the reads through different
// nodes: every reply must be the same, errors included. Replies whose
// order Redis does not define are compared as multisets (HGETALL as sets
// of pairs), random replies (HRANDFIELD) by their properties, checked on
// both servers: counts, membership, distinctness, and an even spread
// (Redis's chi-square test). Each group of cases is a subtest, so a
// difference stops only its group. HSCAN NOVALUES, newer than the
// redis-server 7.0 the tests run, is compared with HKEYS instead.
func TestHashLikeRedis(t *testing.T) {
	suite := newPort(t)
	real, nodes, run := suite.real, suite.nodes, suite.run
	rng := rand.New(rand.NewPCG(3, 4))
	smallhash, bighash := map[string]string{}, map[string]string{}

	run("small and big hash", func(t *testing.T, d, read *differ) {
		d.do("DEL", "smallhash", "bighash")
		for _, c := range []struct {
			key  string
			hash map[string]string
			n    int
		}{{"smallhash", smallhash, 8}, {"bighash", bighash, 1024}} {
			for len(c.hash) < c.n {
				k := "__avoid_collisions__" + randAlpha(rng, 0, 8)
				if _, ok := c.hash[k]; ok {
					continue
				}
				v := "__avoid_collisions__" + randAlpha(rng, 0, 8)
				d.do("HSET", c.key, k, v)
				c.hash[k] = v
			}
			read.do("HLEN", c.key)
			for _, k := range sortedKeys(c.hash) {
				read.do("HGET", c.key, k)
			}
			read.do("HGET", c.key, "__123123123__")
		}

		// HSET in update and insert mode, HSETNX.
		for _, c := range []struct {
			key  string
			hash map[string]string
		}{{"smallhash", smallhash}, {"bighash", bighash}} {
			k := sortedKeys(c.hash)[0]
			d.do("HSET", c.key, k, "newval1")
			c.hash[k] = "newval1"
			read.do("HGET", c.key, k)
			d.do("HSET", c.key, "__foobar123__", "newval")
			d.do("HDEL", c.key, "__foobar123__")
			d.do("HSETNX", c.key, "__123123123__", "foo")
			read.do("HGET", c.key, "__123123123__")
			d.do("HSETNX", c.key, "__123123123__", "bar")
			read.do("HGET", c.key, "__123123123__")
			d.do("HDEL", c.key, "__123123123__")
			read.do("HEXISTS", c.key, "__123123123__")
		}

		// HMSET of every field at once, HMGET of every field in order.
		for _, c := range []struct {
			key  string
			hash map[string]string
		}{{"smallhash", smallhash}, {"bighash", bighash}} {
			args := []any{"HMSET", c.key}
			for _, k := range sortedKeys(c.hash) {
				c.hash[k] = randAlpha(rng, 0, 8)
				args = append(args, k, c.hash[k])
			}
			d.do(args...)
			fields := []any{"HMGET", c.key}
			for _, k := range sortedKeys(c.hash) {
				fields = append(fields, k)
			}
			read.do(fields...)
			read.do("HMGET", c.key, "__123123123__", "__456456456__")
			read.doSorted("HKEYS", c.key)
			read.doSorted("HVALS", c.key)
			read.doPairs("HGETALL", c.key)
			read.do("HLEN", c.key)
		}
		read.do("HMGET", "doesntexist", "__123123123__", "__456456456__")
		d.do("DEL", "htest")
		read.do("HGETALL", "htest")
		read.do("HKEYS", "htest")
		read.do("HVALS", "htest")
		read.do("HLEN", "htest")

		// HDEL and its return value, HEXISTS.
		for _, c := range []struct {
			key  string
			hash map[string]string
		}{{"smallhash", smallhash}, {"bighash", bighash}} {
			d.do("HDEL", c.key, "nokey")
			k := sortedKeys(c.hash)[0]
			d.do("HDEL", c.key, k)
			d.do("HDEL", c.key, k)
			read.do("HGET", c.key, k)
			read.do("HEXISTS", c.key, k)
			delete(c.hash, k)
			read.do("HEXISTS", c.key, sortedKeys(c.hash)[0])
			read.do("HEXISTS", c.key, "nokey")
			read.do("HLEN", c.key)
		}

		// HSTRLEN of every field, of a missing field, of corner values.
		for _, c := range []struct {
			key  string
			hash map[string]string
		}{{"smallhash", smallhash}, {"bighash", bighash}} {
			for _, k := range sortedKeys(c.hash) {
				read.do("HSTRLEN", c.key, k)
			}
			read.do("HSTRLEN", c.key, "__123123123__")
			for _, v := range []string{"-9223372036854775808", "9223372036854775807", "9223372036854775808", "", "0", "-1", "x"} {
				d.do("HMSET", c.key, "field", v)
				read.do("HSTRLEN", c.key, "field")
				read.do("HGET", c.key, "field")
			}
		}
		read.do("HSTRLEN", "nokey", "field")

		// A big payload.
		d.do("HSET", "smallhash", "foo", strings.Repeat("a", 1024))
		read.do("HGET", "smallhash", "foo")
		read.do("HSTRLEN", "smallhash", "foo")
	})

	run("HDEL of the last fields deletes the key", func(t *testing.T, d, read *differ) {
		d.do("DEL", "myhash")
		d.do("HMSET", "myhash", "a", 1, "b", 2, "c", 3)
		d.do("HDEL", "myhash", "x", "y")
		d.do("HDEL", "myhash", "a", "c", "f")
		read.doPairs("HGETALL", "myhash")
		d.do("DEL", "myhash")
		d.do("HMSET", "myhash", "a", 1, "b", 2, "c", 3)
		d.do("HDEL", "myhash", "a", "b", "c", "d", "e")
		read.do("EXISTS", "myhash")
		read.do("TYPE", "myhash")
		read.do("HLEN", "myhash")
		d.do("HSET", "myhash", "z", 26)
		read.doPairs("HGETALL", "myhash")
		d.do("HDEL", "myhash", "z")
		read.do("EXISTS", "myhash")
		d.do("HSET", "myhash", "a", 1, "b", 2, "a", 3)
		read.doPairs("HGETALL", "myhash")
		d.do("HDEL", "myhash", "a", "a", "b")
		read.do("EXISTS", "myhash")
		// A field named twice in one command, again and again: the last
		// value wins, and the field can be written again after.
		for range 20 {
			d.do("HSET", "dup", "a", 1, "b", 2, "a", 3)
			read.doPairs("HGETALL", "dup")
			d.do("HMSET", "dup", "a", 4, "a", 5)
			read.do("HGET", "dup", "a")
			d.do("HDEL", "dup", "a", "a", "b")
			read.do("EXISTS", "dup")
			d.do("HSET", "dup", "a", 6)
			read.doPairs("HGETALL", "dup")
			d.do("DEL", "dup")
			d.do("HSET", "dup", "a", 7)
			read.do("HGET", "dup", "a")
			d.do("DEL", "dup")
		}
	})

	run("arity and wrong type", func(t *testing.T, d, read *differ) {
		d.do("DEL", "smallhash2")
		d.do("HSET", "smallhash2", "key1", "val1", "key2")
		d.do("HMSET", "smallhash2", "key1", "val1", "key2")
		d.do("HSET", "smallhash2")
		d.do("HSET", "smallhash2", "key1")
		d.do("HMSET", "smallhash2", "key1")
		read.do("EXISTS", "smallhash2")
		for _, cmd := range [][]any{
			{"HSET"}, {"HSETNX", "h", "f"}, {"HSETNX", "h", "f", "v", "x"}, {"HGET", "h"}, {"HGET", "h", "f", "g"},
			{"HMGET", "h"}, {"HGETALL"}, {"HGETALL", "h", "x"}, {"HKEYS"}, {"HVALS", "h", "x"}, {"HLEN"},
			{"HLEN", "h", "x"}, {"HDEL", "h"}, {"HEXISTS", "h"}, {"HSTRLEN", "h"}, {"HINCRBY", "h", "f"},
			{"HINCRBY", "h", "f", 1, 2}, {"HINCRBYFLOAT", "h", "f"}, {"HRANDFIELD"}, {"HSCAN", "h"},
		} {
			d.do(cmd...)
		}
		d.do("SET", "wrongtype", "somevalue")
		for _, cmd := range [][]any{
			{"HMGET", "wrongtype", "field1", "field2"}, {"HRANDFIELD", "wrongtype"}, {"HRANDFIELD", "wrongtype", 2},
			{"HRANDFIELD", "wrongtype", -2, "WITHVALUES"}, {"HGET", "wrongtype", "field1"}, {"HGETALL", "wrongtype"},
			{"HDEL", "wrongtype", "field1"}, {"HINCRBY", "wrongtype", "field1", 2},
			{"HINCRBYFLOAT", "wrongtype", "field1", 2.5}, {"HSTRLEN", "wrongtype", "field1"}, {"HVALS", "wrongtype"},
			{"HKEYS", "wrongtype"}, {"HEXISTS", "wrongtype", "field1"}, {"HSET", "wrongtype", "field1", "val1"},
			{"HMSET", "wrongtype", "field1", "val1", "field2", "val2"}, {"HSETNX", "wrongtype", "field1", "val1"},
			{"HLEN", "wrongtype"}, {"HSCAN", "wrongtype", 0}, {"HSCAN", "wrongtype", 0, "MATCH", "*", "COUNT", 5},
		} {
			d.do(cmd...)
		}
		read.do("GET", "wrongtype")
		read.do("TYPE", "wrongtype")
	})

	run("HINCRBY", func(t *testing.T, d, read *differ) {
		d.do("DEL", "htest")
		d.do("HINCRBY", "htest", "foo", 2)
		read.do("HGET", "htest", "foo")
		read.do("TYPE", "htest")
		d.do("DEL", "incrhash")
		d.do("HSET", "incrhash", "field", 5)
		d.do("HINCRBY", "incrhash", "field", "v")
		d.do("HINCRBYFLOAT", "incrhash", "field", "v")
		for _, key := range []string{"smallhash", "bighash"} {
			d.do("HDEL", key, "tmp")
			d.do("HINCRBY", key, "tmp", 2)
			read.do("HGET", key, "tmp")
			d.do("HINCRBY", key, "tmp", 3)
			read.do("HGET", key, "tmp")
			read.do("HSTRLEN", key, "tmp")
			d.do("HSET", key, "tmp", 100)
			d.do("HINCRBY", key, "tmp", 2)
			read.do("HGET", key, "tmp")
			d.do("HSET", key, "tmp", "17179869184")
			d.do("HINCRBY", key, "tmp", 1)
			d.do("HSET", key, "tmp", "17179869184")
			d.do("HINCRBY", key, "tmp", "17179869184")
			read.do("HGET", key, "tmp")
			d.do("HSET", key, "str", " 11")
			d.do("HINCRBY", key, "str", 1)
			d.do("HSET", key, "str", "11 ")
			d.do("HINCRBY", key, "str", 1)
			read.do("HGET", key, "str")
		}
		d.do("HSET", "hash", "n", "-9223372036854775484")
		d.do("HINCRBY", "hash", "n", -1)
		d.do("HINCRBY", "hash", "n", -10000)
		read.do("HGET", "hash", "n")
		d.do("HSET", "hash", "n", "9223372036854775807")
		d.do("HINCRBY", "hash", "n", 1)
		d.do("HINCRBY", "hash", "n", 0)
		d.do("HINCRBY", "hash", "n", "-9223372036854775808")
		read.do("HGET", "hash", "n")
		d.do("HINCRBY", "hash", "m", "-9223372036854775808")
		d.do("HINCRBY", "hash", "m", -1)
		read.do("HGET", "hash", "m")
		// Values and increments that are, or are not, integers to Redis.
		for _, v := range []string{"abc", "", "-0", "+1", "010", "0x10", "1e3", "1.0", "18446744073709551615", "1\x002", "-9223372036854775808"} {
			d.do("HSET", "hash", "v", v)
			d.do("HINCRBY", "hash", "v", 1)
			read.do("HGET", "hash", "v")
		}
		for _, inc := range []string{"1.5", "", "+5", " 5", "5 ", "9223372036854775808", "-9223372036854775809", "0x1", "-0"} {
			d.do("HINCRBY", "hash", "i", inc)
			read.do("HGET", "hash", "i")
		}
		// A field HINCRBY made reads and writes like any other.
		d.do("DEL", "ctr")
		d.do("HINCRBY", "ctr", "c", 41)
		d.do("HINCRBY", "ctr", "c", 1)
		read.do("HSTRLEN", "ctr", "c")
		read.doPairs("HGETALL", "ctr")
		read.doSorted("HVALS", "ctr")
		d.do("HSETNX", "ctr", "c", "x")
		d.do("HINCRBYFLOAT", "ctr", "c", "0.5")
		read.do("HGET", "ctr", "c")
		d.do("HINCRBY", "ctr", "c", 1)
		d.do("HSET", "ctr", "c", "7")
		d.do("HINCRBY", "ctr", "c", 1)
		read.do("HGET", "ctr", "c")
		d.do("HDEL", "ctr", "c")
		read.do("EXISTS", "ctr")
		d.do("HINCRBY", "ctr", "c", 1)
		read.do("HGET", "ctr", "c")
	})

	run("HINCRBYFLOAT", func(t *testing.T, d, read *differ) {
		d.do("DEL", "htest")
		d.do("HINCRBYFLOAT", "htest", "foo", 2.5)
		read.do("HGET", "htest", "foo")
		for _, key := range []string{"smallhash", "bighash"} {
			d.do("HDEL", key, "tmp")
			d.do("HINCRBYFLOAT", key, "tmp", 2.5)
			read.do("HGET", key, "tmp")
			d.do("HINCRBYFLOAT", key, "tmp", 3.5)
			read.do("HGET", key, "tmp")
			d.do("HSET", key, "tmp", 100)
			d.do("HINCRBYFLOAT", key, "tmp", 2.5)
			d.do("HSET", key, "tmp", "17179869184")
			d.do("HINCRBYFLOAT", key, "tmp", 1)
			d.do("HSET", key, "tmp", "17179869184")
			d.do("HINCRBYFLOAT", key, "tmp", "17179869184")
			d.do("HSET", key, "str", " 11")
			d.do("HINCRBYFLOAT", key, "str", 1)
			d.do("HSET", key, "str", "11 ")
			d.do("HINCRBYFLOAT", key, "str", 1)
			read.do("HGET", key, "str")
		}
		d.do("HSET", "h", "f", "1\x002")
		d.do("HINCRBYFLOAT", "h", "f", 1)
		d.do("HDEL", "smallhash", "tmp")
		d.do("HINCRBY", "smallhash", "tmp", 2)
		d.do("HINCRBYFLOAT", "smallhash", "tmp", 3.5)
		read.do("HGET", "smallhash", "tmp")

		// Float representation (Redis's issue #2846).
		d.do("DEL", "myhash")
		d.do("HINCRBYFLOAT", "myhash", "float", "1.23")
		d.do("HINCRBYFLOAT", "myhash", "float", "0.77")
		d.do("HINCRBYFLOAT", "myhash", "float", "-0.1")
		read.do("HGET", "myhash", "float")
		d.do("DEL", "hfoo")
		d.do("HINCRBYFLOAT", "hfoo", "field", "+inf")
		d.do("HINCRBYFLOAT", "hfoo", "field", "-inf")
		d.do("HINCRBYFLOAT", "hfoo", "field", "nan")
		read.do("EXISTS", "hfoo")
		read.do("TYPE", "hfoo")
		for _, inc := range []string{"v", "", " 1", "1 ", "1.5.5", "0x10", "1e", "--1"} {
			d.do("HINCRBYFLOAT", "hfoo", "field", inc)
		}
		read.do("EXISTS", "hfoo")
		// Increments and values in the forms Redis's strtold takes, and
		// the way it prints the sums.
		for _, c := range [][2]string{
			{"10.5", "0.1"}, {"5.0e3", "2.0e2"}, {"0.1", "0.2"}, {"1", "-1"}, {"-0", "0"}, {"3", "1e-20"},
			{"1e5", "1"}, {"0", "1e-20"}, {"1.5", "1.5"}, {"9007199254740993", "1"}, {"-5", "2.5"},
			{"10.0", "0"}, {".5", "+.5"}, {"1E3", "1"}, {"0x10", "1"}, {"inf", "1"}, {"1", "1.5e308"},
		} {
			d.do("HSET", "fl", "f", c[0])
			d.do("HINCRBYFLOAT", "fl", "f", c[1])
			read.do("HGET", "fl", "f")
		}
		d.do("HSET", "fl", "big", "1.5e308")
		d.do("HINCRBYFLOAT", "fl", "big", "1.5e308")
		read.do("HGET", "fl", "big")
		d.do("HINCRBYFLOAT", "fl", "huge", "1e400")
		read.do("HGET", "fl", "huge")
	})

	run("HRANDFIELD", func(t *testing.T, d, read *differ) {
		contents := map[string]string{"a": "1", "b": "2", "c": "3"}
		for _, big := range []bool{false, true} {
			d.do("DEL", "myhash")
			if big {
				contents[randAlpha(rng, 70, 90)] = "3"
				delete(contents, "c")
			}
			for _, k := range sortedKeys(contents) {
				d.do("HSET", "myhash", k, contents[k])
			}
			read.doPairs("HGETALL", "myhash")
			for i, cl := range []*redis.Client{real, nodes[1].Redis()} {
				seen := map[string]bool{}
				for range 100 {
					f, err := cl.Do(ctx(t), "HRANDFIELD", "myhash").Text()
					if err != nil {
						t.Fatal(err)
					}
					seen[f] = true
				}
				if got := sortedKeys(seen); !slices.Equal(got, sortedKeys(contents)) {
					t.Fatalf("100 HRANDFIELD of %q on %s named only %q", sortedKeys(contents), []string{"redis-server", "dynakv"}[i], got)
				}
			}
		}

		// RESP3: WITHVALUES pairs are arrays of two.
		r3 := func(c *redis.Client) *redis.Client {
			o := *c.Options()
			o.Protocol = 3
			o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
			cl := redis.NewClient(&o)
			t.Cleanup(func() { cl.Close() })
			return cl
		}
		d3 := &differ{t: t, real: r3(real), ours: r3(nodes[1].Redis())}
		d3.doRandom(randomFields(contents, 3, true, true), "HRANDFIELD", "myhash", 3, "WITHVALUES")
		d3.doRandom(randomFields(contents, 3, false, true), "HRANDFIELD", "myhash", 3)
		d3.doRandom(randomFields(contents, -5, true, true), "HRANDFIELD", "myhash", -5, "WITHVALUES")
		d3.do("HRANDFIELD", "myhash", 0, "WITHVALUES")
		d3.do("HGETALL", "myhash")
		d3.do("HGETALL", "nokey")
		d.ran += d3.ran

		read.do("HRANDFIELD", "myhash", 0)
		read.do("HRANDFIELD", "myhash", 0, "WITHVALUES")
		d.do("HMSET", "myhash", "a", 1)
		read.do("HRANDFIELD", "myhash", "-9223372036854770000", "WITHVALUES")
		read.do("HRANDFIELD", "myhash", "-9223372036854775808", "WITHVALUES")
		read.do("HRANDFIELD", "myhash", "-9223372036854775808")
		read.do("HRANDFIELD", "myhash", "9223372036854775807", "WITHVALUES")
		read.do("HRANDFIELD", "myhash", "9223372036854775808")
		read.do("HRANDFIELD", "myhash", "abc")
		read.do("HRANDFIELD", "myhash", "abc", "WITHVALUES")
		read.do("HRANDFIELD", "myhash", 1, "WITHVALUE")
		read.do("HRANDFIELD", "myhash", 1, "withvalues", "x")
		read.do("HRANDFIELD", "myhash", 1, "bogus")
		read.do("HRANDFIELD", "nonexisting_key", 100)
		read.do("HRANDFIELD", "nonexisting_key", -100, "WITHVALUES")
		read.do("HRANDFIELD", "nonexisting_key")
		read.do("HRANDFIELD", "nonexisting_key", 0)

		// HRANDFIELD with a count, on ten fields: Redis's four code paths.
		for _, big := range []bool{true, false} {
			contents := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "6": "f", "7": "g", "8": "h", "9": "i"}
			if big {
				contents[randAlpha(rng, 70, 90)] = "10"
			} else {
				contents["10"] = "j"
			}
			d.do("DEL", "myhash")
			args := []any{"HSET", "myhash"}
			for _, k := range sortedKeys(contents) {
				args = append(args, k, contents[k])
			}
			d.do(args...)
			// Path 1: a negative count, repeats allowed.
			for _, c := range []int{-20, -1001} {
				read.doRandom(randomFields(contents, c, false, false), "HRANDFIELD", "myhash", c)
				read.doRandom(randomFields(contents, c, true, false), "HRANDFIELD", "myhash", c, "WITHVALUES")
			}
			read.doRandom(chiSquare(contents, 40), "HRANDFIELD", "myhash", -1000)
			evenSingles(t, []*redis.Client{real, nodes[1].Redis()}, contents, "HRANDFIELD", "myhash")
			for _, cl := range []*redis.Client{real, nodes[1].Redis()} {
				eventuallyAll(t, cl, contents, func(i int) []any {
					if i%2 == 0 {
						return []any{"HRANDFIELD", "myhash", -3, "WITHVALUES"}
					}
					return []any{"HRANDFIELD", "myhash", -3}
				})
			}
			// Path 2: a count of at least the size: every field once.
			for _, size := range []int{10, 20} {
				read.doSorted("HRANDFIELD", "myhash", size)
				read.doPairs("HRANDFIELD", "myhash", size, "WITHVALUES")
			}
			// Paths 3 and 4: fewer fields than there are, distinct.
			for _, size := range []int{8, 2} {
				read.doRandom(randomFields(contents, size, false, false), "HRANDFIELD", "myhash", size)
				read.doRandom(randomFields(contents, size, true, false), "HRANDFIELD", "myhash", size, "WITHVALUES")
				for i, cl := range []*redis.Client{real, nodes[1].Redis()} {
					eventuallyAll(t, cl, contents, func(i int) []any {
						if i%2 == 0 {
							return []any{"HRANDFIELD", "myhash", size, "WITHVALUES"}
						}
						return []any{"HRANDFIELD", "myhash", size}
					})
					// The fields are spread evenly.
					var all []any
					for j := range 1000 / size {
						if j%2 == 0 {
							res, err := cl.Do(ctx(t), "HRANDFIELD", "myhash", size, "WITHVALUES").Slice()
							if err != nil {
								t.Fatal(err)
							}
							for k := 0; k < len(res); k += 2 {
								all = append(all, res[k])
							}
							continue
						}
						res, err := cl.Do(ctx(t), "HRANDFIELD", "myhash", size).Slice()
						if err != nil {
							t.Fatal(err)
						}
						all = append(all, res...)
					}
					if err := chiSquare(contents, 40)(all); err != nil {
						t.Fatalf("HRANDFIELD myhash %d on %s: %v", size, []string{"redis-server", "dynakv"}[i], err)
					}
				}
			}
		}
	})

	run("HSCAN", func(t *testing.T, d, read *differ) {
		for _, count := range []int{30, 1000} {
			d.do("DEL", "hash")
			args := []any{"HMSET", "hash"}
			for j := range count {
				args = append(args, fmt.Sprintf("key:%d", j), j)
			}
			d.do(args...)
			read.doScan("HSCAN", "hash")
			read.doScan("HSCAN", "hash", "COUNT", 5)
			read.doScan("HSCAN", "hash", "COUNT", 100)
			read.doScan("HSCAN", "hash", "MATCH", "key:1*")
			read.doScan("HSCAN", "hash", "MATCH", "key:1?", "COUNT", 3)
			read.doScan("HSCAN", "hash", "match", "nothing*")
			// NOVALUES came with Redis 7.4, after the redis-server the
			// tests run: dynakv's keys are HKEYS's.
			keys := scanAll(t, nodes[1].Redis(), "HSCAN", "hash", "NOVALUES")
			want, err := nodes[2].Redis().HKeys(ctx(t), "hash").Result()
			slices.Sort(keys)
			slices.Sort(want)
			if err != nil || !slices.Equal(keys, want) {
				t.Fatalf("HSCAN NOVALUES: %d fields, HKEYS %d, %v", len(keys), len(want), err)
			}
		}
		// Fields deleted while HSCAN iterates (Redis's issue #4906 on
		// sets): the ones never deleted are all reported.
		for range 10 {
			numele, delIteration := 101+rng.IntN(1000), rng.IntN(10)
			for i, cl := range []*redis.Client{real, nodes[0].Redis()} {
				if err := scanWhileRemoving(t, cl, "HSCAN", numele, delIteration); err != nil {
					t.Fatalf("HSCAN while HDEL on %s: %v", []string{"redis-server", "dynakv"}[i], err)
				}
			}
			d.ran += 2
		}

		d.do("DEL", "mykey")
		d.do("HMSET", "mykey", "foo", 1, "fab", 2, "fiz", 3, "foobar", 10, 1, "a", 2, "b", 3, "c", 4, "d")
		read.doScan("HSCAN", "mykey", "MATCH", "foo*", "COUNT", 10000)
		read.doScan("HSCAN", "mykey", "MATCH", "[0-9]")
		read.doScan("HSCAN", "mykey", "MATCH", "*")
		read.do("HSCAN", "nokey", 0)
		read.do("HSCAN", "nokey", 0, "MATCH", "*", "COUNT", 10)
		read.do("HSCAN", "mykey", "notacursor")
		// A cursor of -1 reads as 2^64-1, as strtoul makes it; a small
		// hash is answered whole, in an order Redis does not define.
		if want, got := read.both("HSCAN", "mykey", -1); fmt.Sprintf("%q", sortedScan(want)) != fmt.Sprintf("%q", sortedScan(got)) {
			t.Fatalf("HSCAN mykey -1:\n redis-server: %q\n dynakv:       %q", want, got)
		}
		read.do("HSCAN", "mykey", 0, "COUNT", 0)
		read.do("HSCAN", "mykey", 0, "COUNT", -1)
		read.do("HSCAN", "mykey", 0, "COUNT", "abc")
		read.do("HSCAN", "mykey", 0, "COUNT")
		read.do("HSCAN", "mykey", 0, "MATCH")
		read.do("HSCAN", "mykey", 0, "BOGUS", 1)
		read.do("HSCAN", "mykey", 0, "TYPE", "string")
	})

	run("fuzzing", func(t *testing.T, d, read *differ) {
		for _, size := range []int{10, 512} {
			for range 3 {
				d.do("DEL", "hash")
				hash := map[string]string{}
				for range size {
					f, v := randomValue(rng), randomValue(rng)
					d.do("HSET", "hash", f, v)
					hash[f] = v
				}
				for _, f := range sortedKeys(hash) {
					read.do("HGET", "hash", f)
				}
				read.do("HLEN", "hash")
			}
			for range 3 {
				d.do("DEL", "hash")
				hash := map[string]string{}
				for range size {
					switch rng.IntN(3) {
					case 0:
						f, v := randomValue(rng), randomValue(rng)
						d.do("HSET", "hash", f, v)
						hash[f] = v
					case 1:
						f, v := strconv.Itoa(rng.IntN(1024)-512), strconv.Itoa(rng.IntN(1024)-512)
						d.do("HSET", "hash", f, v)
						hash[f] = v
					default:
						f := randomValue(rng)
						if rng.IntN(2) == 0 {
							f = strconv.Itoa(rng.IntN(1024) - 512)
						}
						d.do("HDEL", "hash", f)
						delete(hash, f)
					}
				}
				for _, f := range sortedKeys(hash) {
					read.do("HGET", "hash", f)
				}
				read.do("HLEN", "hash")
				read.doPairs("HGETALL", "hash")
			}
		}
		// Large fields (the ziplist regression test).
		long := strings.Repeat("k", 336)
		d.do("HSET", "hash", long, "a")
		d.do("HSET", "hash", long, "b")
		read.do("HGET", "hash", long)
		d.do("DEL", "myhash")
		for range 64 {
			d.do("HSET", "myhash", randomValue(rng), randomValue(rng))
		}
		read.doPairs("HGETALL", "myhash")
		read.do("HLEN", "myhash")
	})

	run("binary-safe fields and values", func(t *testing.T, d, read *differ) {
		d.do("DEL", "bin")
		hash := map[string]string{}
		for range 200 {
			f, v := randBytes(rng, 40), randBytes(rng, 200)
			d.do("HSET", "bin", f, v)
			hash[f] = v
		}
		for _, f := range []string{"", "\x00", "\r\n", "a\x00b", "\xff\x00E\x00", "*3\r\n$3\r\nSET\r\n"} {
			d.do("HSET", "bin", f, f+"v")
			hash[f] = f + "v"
		}
		for _, f := range sortedKeys(hash) {
			read.do("HGET", "bin", f)
			read.do("HSTRLEN", "bin", f)
		}
		read.do("HLEN", "bin")
		read.doPairs("HGETALL", "bin")
		read.doScan("HSCAN", "bin")
		fields := []any{"HMGET", "bin"}
		for _, f := range sortedKeys(hash)[:20] {
			fields = append(fields, f)
		}
		read.do(fields...)
		d.do("HDEL", "bin", "", "\x00")
		read.do("HEXISTS", "bin", "")
		read.do("HLEN", "bin")
	})

	run("hashes in the keyspace", func(t *testing.T, d, read *differ) {
		d.do("DEL", "kh")
		d.do("HSET", "kh", "a", 1, "b", 2)
		read.do("TYPE", "kh")
		read.do("EXISTS", "kh")
		read.do("TTL", "kh")
		d.do("EXPIRE", "kh", 100)
		read.do("TTL", "kh")
		read.do("TYPE", "kh")
		read.doPairs("HGETALL", "kh")
		d.do("HSET", "kh", "c", 3)
		read.do("TTL", "kh")
		d.do("HINCRBY", "kh", "a", 1)
		read.do("TTL", "kh")
		d.do("HDEL", "kh", "b")
		read.do("TTL", "kh")
		d.do("PERSIST", "kh")
		read.do("TTL", "kh")
		read.doPairs("HGETALL", "kh")
		d.do("DEL", "kh")
		read.do("EXISTS", "kh")
		read.do("TYPE", "kh")
		read.do("HGETALL", "kh")
		d.do("HSET", "kh", "z", 1)
		read.doPairs("HGETALL", "kh")

		// An expired hash is gone: its fields do not come back.
		d.do("HSET", "kh", "y", 2)
		d.do("PEXPIRE", "kh", 100)
		time.Sleep(300 * time.Millisecond)
		read.do("EXISTS", "kh")
		read.do("TYPE", "kh")
		read.do("HLEN", "kh")
		read.do("HGET", "kh", "y")
		read.do("HGETALL", "kh")
		d.do("HSET", "kh", "x", 3)
		read.doPairs("HGETALL", "kh")
		read.do("TTL", "kh")

		// A string over a hash, a hash over a deleted string.
		d.do("SET", "kh", "str")
		read.do("TYPE", "kh")
		read.do("HGET", "kh", "x")
		read.do("GET", "kh")
		d.do("DEL", "kh")
		d.do("HSET", "kh", "w", 4)
		read.doPairs("HGETALL", "kh")
		d.do("SET", "kh", "str2")
		read.do("GET", "kh")
		d.do("HSETNX", "kh", "w", 5)
		d.do("DEL", "kh", "kh2")
		d.do("HSETNX", "kh", "w", 5)
		read.doPairs("HGETALL", "kh")
		d.do("EXPIRE", "kh", 100)
		d.do("HINCRBYFLOAT", "kh", "w", 1)
		read.do("TTL", "kh")
		d.do("DEL", "kh")
		read.do("DEL", "kh")

		// Hashes deleted and written again at once, over and over.
		for i := range 50 {
			d.do("HSET", "rk", "a", i, "b", 2)
			d.do("HDEL", "rk", "a", "a")
			d.do("HINCRBYFLOAT", "rk", "float", "1.5")
			d.do("DEL", "rk")
			for _, f := range []string{"a", "b", "c"} {
				d.do("HSET", "rk", f, i)
			}
			read.doPairs("HGETALL", "rk")
			d.do("DEL", "rk")
			read.do("HGETALL", "rk")
		}
	})

	t.Logf("%d commands, the same replies from redis-server and a 3-node dynakv", suite.ran)
}

// both runs args against both servers and requires the same error (or
// none); it answers the two replies.
// port runs the cases of one of Redis's test files: a real redis-server,
// a 3-node cluster, and groups of cases, each a subtest whose differs
// write through n1 and read through n2.
type port struct {
	t     *testing.T
	real  *redis.Client
	nodes []*Node
	ran   int // commands compared
}

func newPort(t *testing.T) *port {
	return &port{t: t, real: startRedisServer(t), nodes: StartCluster(t, 3, "")}
}

// run runs one group of cases as a subtest, so that a difference stops
// only its group.
func (p *port) run(name string, f func(t *testing.T, d, read *differ)) {
	p.t.Run(name, func(t *testing.T) {
		d := &differ{t: t, real: p.real, ours: p.nodes[0].Redis()}
		read := &differ{t: t, real: p.real, ours: p.nodes[1].Redis()}
		defer func() { p.ran += d.ran + read.ran }()
		f(t, d, read)
	})
}

func (d *differ) both(args ...any) (want, got any) {
	d.t.Helper()
	c := ctx(d.t)
	want, wantErr := d.real.Do(c, args...).Result()
	got, gotErr := d.ours.Do(c, args...).Result()
	d.ran++
	if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
		d.t.Fatalf("%q:\n redis-server: %q %v\n dynakv:       %q %v", args, want, wantErr, got, gotErr)
	}
	return want, got
}

// doSorted is do for replies whose order Redis does not define: arrays
// are compared as multisets.
func (d *differ) doSorted(args ...any) {
	d.t.Helper()
	want, got := d.both(args...)
	if fmt.Sprintf("%q", sortedReply(want, 1)) != fmt.Sprintf("%q", sortedReply(got, 1)) {
		d.t.Fatalf("%q:\n redis-server: %q\n dynakv:       %q", args, want, got)
	}
}

// doPairs is do for flat field value arrays (HGETALL, HRANDFIELD
// WITHVALUES) in an order Redis does not define: they are compared as
// multisets of pairs.
func (d *differ) doPairs(args ...any) {
	d.t.Helper()
	want, got := d.both(args...)
	if fmt.Sprintf("%q", sortedReply(want, 2)) != fmt.Sprintf("%q", sortedReply(got, 2)) {
		d.t.Fatalf("%q:\n redis-server: %q\n dynakv:       %q", args, want, got)
	}
}

// doRandom runs a command with a random reply against both servers;
// check judges each reply.
func (d *differ) doRandom(check func(reply any) error, args ...any) {
	d.t.Helper()
	want, got := d.both(args...)
	if err := check(want); err != nil {
		d.t.Fatalf("%q: redis-server's reply fails the check (the test is wrong): %v\n %q", args, err, want)
	}
	if err := check(got); err != nil {
		d.t.Fatalf("%q: dynakv's reply: %v\n %q", args, err, got)
	}
}

// doScan iterates HSCAN or SSCAN (cmd key, then options after the
// cursor) to the end on both servers and compares what each collected.
// dynakv must return every element exactly once; redis-server may repeat
// one (while it rehashes), so its repeats are dropped.
func (d *differ) doScan(cmd, key string, opts ...any) {
	d.t.Helper()
	args := append([]any{cmd, key}, opts...)
	want := slices.Compact(slices.Sorted(slices.Values(scanAll(d.t, d.real, args...))))
	got := scanAll(d.t, d.ours, args...)
	slices.Sort(got)
	d.ran++
	if !slices.Equal(want, got) {
		d.t.Fatalf("%q iterated:\n redis-server: %d %q\n dynakv:       %d %q", args, len(want), want, len(got), got)
	}
}

// scanAll iterates args (cmd key options, the cursor put in after key) on
// c to the end and answers the elements, a hash's as field=value.
func scanAll(t testing.TB, c *redis.Client, args ...any) []string {
	t.Helper()
	var out []string
	cursor := "0"
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatalf("%q: the cursor never came back to 0", args)
		}
		call := append([]any{args[0], args[1], cursor}, args[2:]...)
		res, err := c.Do(ctx(t), call...).Slice()
		if err != nil || len(res) != 2 {
			t.Fatalf("%q: %q %v", call, res, err)
		}
		items, _ := res[1].([]any)
		pairs := strings.EqualFold(fmt.Sprint(args[0]), "hscan") && !slices.ContainsFunc(args, func(a any) bool {
			return strings.EqualFold(fmt.Sprint(a), "novalues")
		})
		for j := 0; j < len(items); j++ {
			if pairs && j+1 < len(items) {
				out = append(out, fmt.Sprintf("%q=%q", items[j], items[j+1]))
				j++
			} else {
				out = append(out, fmt.Sprint(items[j]))
			}
		}
		cursor = fmt.Sprint(res[0])
		if cursor == "0" {
			return out
		}
	}
}

// sortedScan is a scan reply with its elements' pairs sorted.
func sortedScan(v any) any {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return v
	}
	return []any{a[0], sortedReply(a[1], 2)}
}

// sortedReply sorts an array reply by groups of n elements (pairs for
// n=2); other replies are returned as they are.
func sortedReply(v any, n int) any {
	a, ok := v.([]any)
	if !ok || len(a)%n != 0 {
		return v
	}
	var out []string
	for i := 0; i < len(a); i += n {
		out = append(out, fmt.Sprintf("%q", a[i:i+n]))
	}
	slices.Sort(out)
	return out
}

// randomFields checks an HRANDFIELD or SRANDMEMBER (SPOP) reply for count
// of the container contents: count >= 0 distinct elements (at most the
// size), count < 0 -count with repeats; with values, each with its field.
// nested is RESP3's form of WITHVALUES, an array of pairs.
func randomFields(contents map[string]string, count int, withValues, nested bool) func(any) error {
	return func(reply any) error {
		a, ok := reply.([]any)
		if !ok {
			return errors.New("not an array")
		}
		var fields []string
		for i := 0; i < len(a); i++ {
			f := fmt.Sprint(a[i])
			switch {
			case withValues && nested:
				p, ok := a[i].([]any)
				if !ok || len(p) != 2 {
					return fmt.Errorf("element %d is not a pair", i)
				}
				f = fmt.Sprint(p[0])
				if v := fmt.Sprint(p[1]); v != contents[f] {
					return fmt.Errorf("field %q: value %q, want %q", f, v, contents[f])
				}
			case withValues:
				if i+1 == len(a) {
					return errors.New("an odd length")
				}
				i++
				if v := fmt.Sprint(a[i]); v != contents[f] {
					return fmt.Errorf("field %q: value %q, want %q", f, v, contents[f])
				}
			}
			if _, ok := contents[f]; !ok {
				return fmt.Errorf("%q is not an element", f)
			}
			fields = append(fields, f)
		}
		want := -count
		if count >= 0 {
			want = min(count, len(contents))
			if len(slices.Compact(slices.Sorted(slices.Values(fields)))) != len(fields) {
				return errors.New("a repeated element")
			}
		}
		if len(fields) != want {
			return fmt.Errorf("%d elements, want %d", len(fields), want)
		}
		return nil
	}
}

// chiSquare checks that a random reply's elements are spread evenly over
// contents, as Redis's chi_square_value test does: below limit.
func chiSquare(contents map[string]string, limit float64) func(any) error {
	return func(reply any) error {
		a, ok := reply.([]any)
		if !ok || len(a) == 0 {
			return errors.New("not an array")
		}
		counts := map[string]int{}
		for _, e := range a {
			counts[fmt.Sprint(e)]++
		}
		expected := float64(len(a)) / float64(len(contents))
		sum := 0.0
		for k := range contents {
			diff := float64(counts[k]) - expected
			sum += diff * diff / expected
		}
		if sum >= limit {
			return fmt.Errorf("chi square %.1f, over %v: %v", sum, limit, counts)
		}
		return nil
	}
}

// eventuallyAll runs cmd(i) on c until its replies (single elements or
// arrays) have named every element of contents (a flat reply's odd
// elements are ignored for commands ending in WITHVALUES), at most 1000
// times.
func eventuallyAll(t testing.TB, c *redis.Client, contents map[string]string, cmd func(i int) []any) {
	t.Helper()
	seen := map[string]bool{}
	for i := range 1000 {
		args := cmd(i)
		reply, err := c.Do(ctx(t), args...).Result()
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		res, ok := reply.([]any)
		if !ok {
			res = []any{reply}
		}
		step := 1
		if strings.EqualFold(fmt.Sprint(args[len(args)-1]), "withvalues") {
			step = 2
		}
		for j := 0; j < len(res); j += step {
			seen[fmt.Sprint(res[j])] = true
		}
		if len(seen) == len(contents) {
			return
		}
	}
	t.Fatalf("%v: 1000 random replies named %d of the %d elements", c, len(seen), len(contents))
}

// evenSingles checks that 1000 calls of a random command without a count
// (HRANDFIELD, SRANDMEMBER) on each client name the elements of contents
// evenly, as chiSquare judges.
func evenSingles(t testing.TB, clients []*redis.Client, contents map[string]string, args ...any) {
	t.Helper()
	for i, cl := range clients {
		var all []any
		for range 1000 {
			res, err := cl.Do(ctx(t), args...).Text()
			if err != nil {
				t.Fatalf("%q: %v", args, err)
			}
			all = append(all, res)
		}
		if err := chiSquare(contents, 40)(all); err != nil {
			t.Fatalf("%q 1000 times on %s: %v", args, []string{"redis-server", "dynakv"}[i], err)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// randAlpha is Redis's randstring min max alpha: bytes '0' to 'z'.
func randAlpha(rng *rand.Rand, lo, hi int) string {
	b := make([]byte, lo+rng.IntN(hi-lo+1))
	for i := range b {
		b[i] = byte('0' + rng.IntN('z'-'0'+1))
	}
	return string(b)
}

// randBytes is up to n random bytes.
func randBytes(rng *rand.Rand, n int) string {
	b := make([]byte, rng.IntN(n+1))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return string(b)
}

// randomValue is Redis's randomValue: integers of several sizes, or
// strings of letters, of restricted bytes or of any bytes.
func randomValue(rng *rand.Rand) string {
	switch rng.IntN(6) {
	case 0:
		return strconv.FormatInt(rng.Int64N(2000000000)-1000000000, 10)
	case 1:
		return strconv.FormatInt(rng.Int64N(1<<62)-1<<61, 10)
	case 2:
		return strconv.Itoa(rng.IntN(256))
	case 3:
		return randAlpha(rng, 0, 256)
	case 4:
		b := make([]byte, rng.IntN(257))
		for i := range b {
			b[i] = "\x00\r\nab\xff"[rng.IntN(6)]
		}
		return string(b)
	}
	return randBytes(rng, 256)
}

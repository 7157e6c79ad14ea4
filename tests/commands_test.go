package tests

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// expect fails the test when a reply is not what Redis would give.
func expect(t *testing.T, what string, got any, err error, want any) {
	t.Helper()
	if err != nil && err != redis.Nil {
		t.Fatalf("%s: %v", what, err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func expectErr(t *testing.T, what string, err error, prefix string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("%s: %v, want an error starting %q", what, err, prefix)
	}
}

func TestStringCommandsOnACluster(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	a, b := nodes[0].Redis(), nodes[2].Redis()
	c := ctx(t)

	v, err := a.SetArgs(c, "s", "v1", redis.SetArgs{Mode: "NX", TTL: time.Hour}).Result()
	expect(t, "SET NX EX", v, err, "OK")
	ttl, err := b.TTL(c, "s").Result()
	expect(t, "TTL via another node", ttl > 59*time.Minute && ttl <= time.Hour, err, true)
	v, err = a.SetArgs(c, "s", "v2", redis.SetArgs{KeepTTL: true, Get: true}).Result()
	expect(t, "SET KEEPTTL GET", v, err, "v1")
	ttl, err = b.TTL(c, "s").Result()
	expect(t, "TTL kept", ttl > 59*time.Minute, err, true)
	expect(t, "SETNX existing", must(a.SetNX(c, "s", "x", 0)), nil, false)
	expect(t, "SETNX new", must(a.SetNX(c, "n", "x", 0)), nil, true)
	expect(t, "GETSET", must(b.GetSet(c, "n", "y")), nil, "x")
	expect(t, "GETDEL", must(a.GetDel(c, "n")), nil, "y")
	_, err = b.Get(c, "n").Result()
	expect(t, "GET after GETDEL", err, nil, redis.Nil)
	expect(t, "SETEX", must(a.SetEx(c, "e", "v", 30*time.Second)), nil, "OK")
	pttl, err := b.PTTL(c, "e").Result()
	expect(t, "PTTL", pttl > 29*time.Second && pttl <= 30*time.Second, err, true)
	expect(t, "GETEX PERSIST", must(a.Do(c, "GETEX", "e", "PERSIST")), nil, "v")
	expect(t, "TTL after PERSIST", must(b.TTL(c, "e")), nil, time.Duration(-1))
	expect(t, "TTL missing", must(b.TTL(c, "missing")), nil, time.Duration(-2))
	expect(t, "APPEND", must(a.Append(c, "log", "hello")), nil, 5)
	expect(t, "APPEND again", must(b.Append(c, "log", " world")), nil, 11)
	expect(t, "STRLEN", must(a.StrLen(c, "log")), nil, 11)
	expect(t, "TYPE", must(b.Type(c, "log")), nil, "string")
	expect(t, "TYPE none", must(b.Type(c, "nothing")), nil, "none")
	expectErr(t, "SET EX 0", a.Do(c, "SET", "x", "v", "EX", "0").Err(), "ERR invalid expire time in 'set' command")
	expectErr(t, "SETEX 0", a.Do(c, "SETEX", "x", "0", "v").Err(), "ERR invalid expire time in 'setex' command")
	expectErr(t, "SET NX XX", a.Do(c, "SET", "x", "v", "NX", "XX").Err(), "ERR syntax error")
	expectErr(t, "GETEX bad", a.Do(c, "GETEX", "x", "EX").Err(), "ERR syntax error")
}

func must[T any](cmd interface{ Result() (T, error) }) T {
	v, _ := cmd.Result()
	return v
}

func TestCountersOnACluster(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	for i := range 30 {
		if err := nodes[i%3].Redis().Incr(c, "hits").Err(); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, "INCR x30 through three nodes", must(nodes[1].Redis().Get(c, "hits")), nil, "30")
	expect(t, "INCRBY", must(nodes[0].Redis().IncrBy(c, "hits", 12)), nil, 42)
	expect(t, "DECRBY", must(nodes[2].Redis().DecrBy(c, "hits", 40)), nil, 2)
	expect(t, "DECR", must(nodes[1].Redis().Decr(c, "hits")), nil, 1)
	expect(t, "INCR on a SET value", must(nodes[0].Redis().Set(c, "n", "10", 0)), nil, "OK")
	expect(t, "INCR", must(nodes[1].Redis().Incr(c, "n")), nil, 11)
	nodes[0].Redis().Set(c, "t", "abc", 0)
	expectErr(t, "INCR on text", nodes[0].Redis().Incr(c, "t").Err(), "ERR value is not an integer or out of range")
	expectErr(t, "INCRBY not a number", nodes[0].Redis().Do(c, "INCRBY", "n", "x").Err(), "ERR value is not an integer or out of range")
	nodes[0].Redis().Set(c, "big", fmt.Sprint(int64(math.MaxInt64)-1), 0)
	expect(t, "INCR to MaxInt64", must(nodes[2].Redis().Incr(c, "big")), nil, int64(math.MaxInt64))
	expectErr(t, "INCR past MaxInt64", nodes[1].Redis().Incr(c, "big").Err(), "ERR increment or decrement would overflow")
	expect(t, "value after the refused INCR", must(nodes[0].Redis().Get(c, "big")), nil, fmt.Sprint(int64(math.MaxInt64)))
	expectErr(t, "DECRBY MinInt64", nodes[0].Redis().Do(c, "DECRBY", "n", fmt.Sprint(int64(math.MinInt64))).Err(), "ERR decrement would overflow")
	expect(t, "INCRBYFLOAT", must(nodes[1].Redis().IncrByFloat(c, "f", 10.5)), nil, 10.5)
	expect(t, "INCRBYFLOAT again", must(nodes[2].Redis().IncrByFloat(c, "f", 0.1)), nil, 10.6)
	expectErr(t, "INCRBYFLOAT on text", nodes[0].Redis().IncrByFloat(c, "t", 1).Err(), "ERR value is not a valid float")
	expectErr(t, "INCRBYFLOAT bad arg", nodes[0].Redis().Do(c, "INCRBYFLOAT", "f", "x").Err(), "ERR value is not a valid float")
	// DGET shows a counter's siblings; GET their merged value.
	if _, sibs, err := dget(c, nodes[0].Redis(), "hits", 3); err != nil || len(sibs) == 0 {
		t.Fatalf("DGET of a counter: %v %v", sibs, err)
	}
}

func TestExpiryOnACluster(t *testing.T) {
	nodes := StartCluster(t, 3, "[antientropy]\ninterval = \"300ms\"\ntombstone_grace = \"1s\"\n")
	a, b := nodes[0].Redis(), nodes[1].Redis()
	c := ctx(t)
	a.Set(c, "k", "v", 0)
	expect(t, "EXPIRE XX without TTL", must(a.Do(c, "EXPIRE", "k", "100", "XX")), nil, 0)
	expect(t, "EXPIRE NX", must(b.Do(c, "EXPIRE", "k", "100", "NX")), nil, 1)
	expect(t, "EXPIRE NX again", must(a.Do(c, "EXPIRE", "k", "200", "NX")), nil, 0)
	expect(t, "EXPIRE GT sooner", must(a.Do(c, "EXPIRE", "k", "50", "GT")), nil, 0)
	expect(t, "EXPIRE GT later", must(b.Do(c, "EXPIRE", "k", "200", "GT")), nil, 1)
	expect(t, "EXPIRE LT sooner", must(a.Do(c, "EXPIRE", "k", "150", "LT")), nil, 1)
	expectErr(t, "EXPIRE NX GT", a.Do(c, "EXPIRE", "k", "1", "NX", "GT").Err(), "ERR NX and XX, GT or LT options at the same time are not compatible")
	expectErr(t, "EXPIRE GT LT", a.Do(c, "EXPIRE", "k", "1", "GT", "LT").Err(), "ERR GT and LT options at the same time are not compatible")
	expectErr(t, "EXPIRE x", a.Do(c, "EXPIRE", "k", "soon").Err(), "ERR value is not an integer or out of range")
	at := time.Now().Add(time.Hour).Unix()
	expect(t, "EXPIREAT", must(a.ExpireAt(c, "k", time.Unix(at, 0))), nil, true)
	expect(t, "EXPIRETIME", must(b.Do(c, "EXPIRETIME", "k")), nil, at)
	expect(t, "PEXPIRETIME", must(b.Do(c, "PEXPIRETIME", "k")), nil, at*1000)
	expect(t, "PERSIST", must(b.Persist(c, "k")), nil, true)
	expect(t, "PERSIST again", must(a.Persist(c, "k")), nil, false)
	expect(t, "EXPIRE missing", must(a.Expire(c, "missing", time.Second)), nil, false)
	expect(t, "EXPIRE in the past deletes", must(a.Do(c, "PEXPIRE", "k", "-1")), nil, 1)
	expect(t, "EXISTS after", must(b.Exists(c, "k")), nil, 0)
	// A value that expires reads as absent through every node, and its
	// space is reclaimed: the replicas turn it into a tombstone and reap it.
	for i := range 10 {
		a.Set(c, fmt.Sprintf("short:%d", i), "v", 300*time.Millisecond)
	}
	time.Sleep(400 * time.Millisecond)
	for _, n := range nodes {
		for i := range 10 {
			if _, err := n.Redis().Get(c, fmt.Sprintf("short:%d", i)).Result(); err != redis.Nil {
				t.Fatalf("expired value through %s: %v", n.ID, err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for sumInfo(t, nodes, "ae_tombstones_reaped") < 3*11 { // 10 expired keys and k, on 3 replicas
		if time.Now().After(deadline) {
			t.Fatalf("expired values not reclaimed: %d reaped", sumInfo(t, nodes, "ae_tombstones_reaped"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestKeyspaceOnACluster(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	const keys = 1000
	loadKeys(t, nodes[0], keys)
	for i := range 10 {
		nodes[1].Redis().Set(c, fmt.Sprintf("other:%d", i), "x", 0)
	}
	nodes[2].Redis().Del(c, "key:0")
	// Each partition is counted on one replica, which may lag a write
	// acknowledged by the others for a moment.
	for _, n := range nodes {
		deadline := time.Now().Add(5 * time.Second)
		for must(n.Redis().DBSize(c)) != keys-1+10 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		expect(t, "DBSIZE via "+n.ID, must(n.Redis().DBSize(c)), nil, keys-1+10)
	}
	// SCAN through different nodes in turn returns every key exactly once.
	seen := map[string]int{}
	cursor := uint64(0)
	for i := 0; ; i++ {
		ks, next, err := nodes[i%3].Redis().Scan(c, cursor, "key:*", 37).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			seen[k]++
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	if len(seen) != keys-1 {
		t.Fatalf("SCAN MATCH key:* found %d keys, want %d", len(seen), keys-1)
	}
	for k, n := range seen {
		if n != 1 || k == "key:0" {
			t.Fatalf("SCAN returned %s %d times", k, n)
		}
	}
	ks, err := nodes[1].Redis().Keys(c, "other:*").Result()
	slices.Sort(ks)
	expect(t, "KEYS other:*", len(ks), err, 10)
	ks, _, err = nodes[0].Redis().ScanType(c, 0, "*", 100, "list").Result()
	expect(t, "SCAN TYPE list", len(ks), err, 0)
	expectErr(t, "SCAN bad cursor", nodes[0].Redis().Do(c, "SCAN", "abc").Err(), "ERR invalid cursor")
	// FLUSHALL through one node empties the cluster.
	expect(t, "FLUSHALL", must(nodes[2].Redis().FlushAll(c)), nil, "OK")
	for _, n := range nodes {
		expect(t, "DBSIZE after FLUSHALL via "+n.ID, must(n.Redis().DBSize(c)), nil, 0)
		if _, err := n.Redis().Get(c, "key:5").Result(); err != redis.Nil {
			t.Fatalf("GET after FLUSHALL via %s: %v", n.ID, err)
		}
	}
	expect(t, "SET after FLUSHALL", must(nodes[0].Redis().Set(c, "fresh", "v", 0)), nil, "OK")
	expect(t, "GET after FLUSHALL", must(nodes[1].Redis().Get(c, "fresh")), nil, "v")
}

func TestInlineCommands(t *testing.T) {
	n := StartNode(t, "n1", "")
	rc := dialRaw(t, n.Client)
	rc.send("PING\r\nSET greeting \"hello world\"\r\nGET greeting\r\n")
	if got := rc.line(); got != "+PONG" {
		t.Fatalf("inline PING: %q", got)
	}
	if got := rc.line(); got != "+OK" {
		t.Fatalf("inline SET: %q", got)
	}
	if got, v := rc.line(), rc.line(); got != "$11" || v != "hello world" {
		t.Fatalf("inline GET: %q %q", got, v)
	}
	info, err := n.Redis().Info(ctx(t), "server", "persistence", "memory", "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"redis_version:7.", "dynakv_version:", "loading:0", "used_memory:", "connected_clients:"} {
		if !strings.Contains(info, f) {
			t.Fatalf("INFO lacks %s:\n%s", f, info)
		}
	}
}

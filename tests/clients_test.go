package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// clientScript runs a client library's script from tests/clients against
// the nodes and requires it to succeed.
func clientScript(t *testing.T, nodes []*Node, interpreter string, args ...string) string {
	t.Helper()
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Client)
	}
	cmd := exec.Command(interpreter, append(args, addrs...)...)
	cmd.Dir = "clients"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", interpreter, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// needNodeModules requires the npm packages .ci/run installs.
func needNodeModules(t *testing.T) string {
	t.Helper()
	node := needTool(t, "node")
	if _, err := os.Stat(filepath.Join("clients", "node_modules", "ioredis")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tests/clients/node_modules is missing: run npm ci in tests/clients")
		}
		t.Skip("tests/clients/node_modules missing (npm ci in tests/clients)")
	}
	return node
}

// TestClientLibraries drives a 3-node cluster with the client libraries
// people use: each sets with options, MGET/MSET, the INCR family, EXPIRE and
// TTL, a pipeline, and DGET/DPUT through its generic command call.
func TestClientLibraries(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	t.Run("redis-py", func(t *testing.T) {
		python := "/usr/bin/python3" // Debian's python3-redis lives there
		if err := exec.Command(python, "-c", "import redis").Run(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("redis-py (apt python3-redis) is required in CI: %v", err)
			}
			t.Skip("redis-py not installed")
		}
		t.Log(clientScript(t, nodes, python, "redis_py.py"))
	})
	t.Run("ioredis", func(t *testing.T) {
		node := needNodeModules(t)
		t.Log(clientScript(t, nodes, node, "ioredis.js"))
	})
	t.Run("node-redis 5", func(t *testing.T) {
		node := needNodeModules(t)
		t.Log(clientScript(t, nodes, node, "node_redis.js", "redis5", "default"))
	})
	t.Run("node-redis 6 with RESP 2", func(t *testing.T) {
		node := needNodeModules(t)
		t.Log(clientScript(t, nodes, node, "node_redis.js", "redis", "2"))
	})
	t.Run("node-redis 6 with RESP 3", func(t *testing.T) {
		node := needNodeModules(t)
		t.Log(clientScript(t, nodes, node, "node_redis.js", "redis", "3"))
	})
	t.Run("go-redis", func(t *testing.T) {
		goRedisExercise(t, nodes)
	})
	t.Run("redis-cli", func(t *testing.T) {
		redisCLIExercise(t, nodes)
	})
}

// goRedisExercise is the scripts' exercise in go-redis, with its default
// options: it asks for RESP3 with HELLO 3, and gets it.
func goRedisExercise(t *testing.T, nodes []*Node) {
	clients := make([]*redis.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.Client})
		defer clients[i].Close()
	}
	a, b := clients[0], clients[len(clients)-1]
	c := ctx(t)
	expect(t, "SET NX EX", must(a.SetArgs(c, "gr:s", "v1", redis.SetArgs{Mode: "NX", TTL: 100e9})), nil, "OK")
	expect(t, "SET GET", must(b.SetArgs(c, "gr:s", "v2", redis.SetArgs{Get: true})), nil, "v1")
	expect(t, "MSET", must(a.MSet(c, "gr:a", "1", "gr:b", "2")), nil, "OK")
	expect(t, "MGET", must(b.MGet(c, "gr:a", "gr:b", "gr:none")), nil, []any{"1", "2", nil})
	expect(t, "INCR", must(a.Incr(c, "gr:n")), nil, 1)
	expect(t, "INCRBY", must(b.IncrBy(c, "gr:n", 10)), nil, 11)
	expect(t, "DECR", must(a.Decr(c, "gr:n")), nil, 10)
	expect(t, "DECRBY", must(b.DecrBy(c, "gr:n", 3)), nil, 7)
	expect(t, "EXPIRE", must(a.Expire(c, "gr:n", 50e9)), nil, true)
	if ttl := must(b.TTL(c, "gr:n")); ttl <= 0 || ttl > 50e9 {
		t.Fatalf("TTL %v", ttl)
	}
	pipe := a.Pipeline()
	var gets []*redis.StringCmd
	for i := range 100 {
		pipe.Set(c, "gr:p", i, 0)
		gets = append(gets, pipe.Get(c, "gr:p"))
	}
	if _, err := pipe.Exec(c); err != nil {
		t.Fatal(err)
	}
	for i, g := range gets {
		expect(t, "pipelined GET", must(g), nil, i)
	}
	v, err := a.Do(c, "DGET", "gr:a").Slice()
	expect(t, "DGET", v[1], err, []any{"1"})
	expect(t, "DPUT", b.Do(c, "DPUT", "gr:a", v[0], "merged").Err(), nil, nil)
	v, err = b.Do(c, "DGET", "gr:a").Slice()
	expect(t, "DGET after DPUT", v[1], err, []any{"merged"})
	info, err := a.ClientInfo(c).Result()
	if err != nil || info.Resp != 3 {
		t.Fatalf("CLIENT INFO of go-redis's default connection: %+v, %v; want resp=3", info, err)
	}
	expect(t, "CONFIG GET as a RESP3 map", must(a.ConfigGet(c, "maxclients")), nil, map[string]string{"maxclients": "10000"})
	incr := redis.NewScript("return redis.call('incrby', KEYS[1], ARGV[1])")
	expect(t, "EVALSHA, then EVAL", must(incr.Run(c, a, []string{"gr:lua"}, 5)), nil, int64(5))
	expect(t, "EVALSHA", must(incr.Run(c, a, []string{"gr:lua"}, 5)), nil, int64(10))
	expect(t, "HSET", must(a.HSet(c, "gr:cart", "sku1", "2", "sku2", "1")), nil, int64(2))
	expect(t, "HGETALL as a RESP3 map", must(b.HGetAll(c, "gr:cart")), nil, map[string]string{"sku1": "2", "sku2": "1"})
	expect(t, "SADD", must(a.SAdd(c, "gr:tags", "red", "green", "red")), nil, int64(2))
	members := must(b.SMembers(c, "gr:tags"))
	slices.Sort(members)
	expect(t, "SMEMBERS as a RESP3 set", members, nil, []string{"green", "red"})
	sub := b.Subscribe(c, "gr:news")
	defer sub.Close()
	if _, err := sub.Receive(c); err != nil {
		t.Fatal(err)
	}
	expect(t, "PUBLISH", must(a.Publish(c, "gr:news", "hello")), nil, 1)
	m, err := sub.ReceiveMessage(c)
	expect(t, "message pushed over RESP3", m.Channel+" "+m.Payload, err, "gr:news hello")
}

// redisCLIExercise is the exercise with redis-cli.
func redisCLIExercise(t *testing.T, nodes []*Node) {
	first, last := nodes[0], nodes[len(nodes)-1]
	steps := []struct {
		n    *Node
		args []string
		want string
	}{
		{first, []string{"SET", "cli:s", "v1", "EX", "100", "NX"}, "OK"},
		{last, []string{"SET", "cli:s", "v2", "GET"}, "v1"},
		{first, []string{"MSET", "cli:a", "1", "cli:b", "2"}, "OK"},
		{last, []string{"MGET", "cli:a", "cli:b"}, "1\n2"},
		{first, []string{"INCR", "cli:n"}, "1"},
		{last, []string{"INCRBY", "cli:n", "10"}, "11"},
		{first, []string{"DECRBY", "cli:n", "3"}, "8"},
		{first, []string{"EXPIRE", "cli:n", "50"}, "1"},
		{last, []string{"PERSIST", "cli:n"}, "1"},
		{last, []string{"TTL", "cli:n"}, "-1"},
	}
	for _, s := range steps {
		if got := redisCLI(t, s.n, s.args...); got != s.want {
			t.Fatalf("redis-cli %v = %q, want %q", s.args, got, s.want)
		}
	}
	ctxt := lines(redisCLI(t, first, "DGET", "cli:a"))[0]
	redisCLI(t, last, "DPUT", "cli:a", ctxt, "merged")
	if got := lines(redisCLI(t, last, "DGET", "cli:a")); len(got) != 2 || got[1] != "merged" {
		t.Fatalf("redis-cli DGET after DPUT: %q", got)
	}
}

// TestRedisBenchmarkDefaultTests runs redis-benchmark's default test list
// against a 3-node cluster: the tests of supported commands report no
// error, and each other test meets the unknown-command error (redis-benchmark
// stops at the first error, so each runs alone).
func TestRedisBenchmarkDefaultTests(t *testing.T) {
	bench := needTool(t, "redis-benchmark")
	nodes := StartCluster(t, 3, "")
	host, port, _ := strings.Cut(nodes[0].Client, ":")
	run := func(tests string, n string) string {
		out, _ := exec.Command(bench, "-h", host, "-p", port, "-t", tests, "-n", n, "-q").CombinedOutput()
		return strings.ReplaceAll(string(out), "\r", "\n")
	}
	supported := run("ping,set,get,incr,sadd,hset,spop,mset", "5000")
	for _, name := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "SADD", "HSET", "SPOP", "MSET (10 keys)"} {
		if !strings.Contains(supported, name+": ") {
			t.Fatalf("redis-benchmark did not report %s:\n%s", name, supported)
		}
	}
	if strings.Contains(supported, "Error") || strings.Contains(supported, "ERR") {
		t.Fatalf("a supported test reported an error:\n%s", supported)
	}
	t.Logf("supported: %s", strings.Join(lines(strings.Join(grepLines(supported, "requests per second"), "\n")), " | "))
	for test, cmd := range map[string]string{
		"lpush": "LPUSH", "rpush": "RPUSH", "lpop": "LPOP", "rpop": "RPOP",
		"zadd": "ZADD", "zpopmin": "ZPOPMIN", "lrange": "LPUSH",
	} {
		out := run(test, "10")
		if !strings.Contains(out, "ERR unknown command '"+cmd+"'") {
			t.Fatalf("redis-benchmark -t %s: want the unknown-command error for %s, got:\n%s", test, cmd, out)
		}
	}
}

func grepLines(s, sub string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

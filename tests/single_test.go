package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestGoRedisBasics(t *testing.T) {
	n := StartNode(t, "n1", "")
	rdb := n.Redis()
	c := ctx(t)
	if err := rdb.Set(c, "greeting", "hello", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(c, "greeting").Result(); err != nil || v != "hello" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	if _, err := rdb.Get(c, "missing").Result(); err != redis.Nil {
		t.Fatalf("GET missing = %v, want nil", err)
	}
	if ok, err := rdb.SetNX(c, "greeting", "other", 0).Result(); err != nil || ok {
		t.Fatalf("SETNX on existing = %v, %v", ok, err)
	}
	if ok, err := rdb.SetXX(c, "absent", "x", 0).Result(); err != nil || ok {
		t.Fatalf("SET XX on absent = %v, %v", ok, err)
	}
	if old, err := rdb.SetArgs(c, "greeting", "bye", redis.SetArgs{Get: true}).Result(); err != nil || old != "hello" {
		t.Fatalf("SET GET = %q, %v", old, err)
	}
	if err := rdb.MSet(c, "a", "1", "b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	vals, err := rdb.MGet(c, "a", "b", "nope").Result()
	if err != nil || !slices.Equal(vals, []any{"1", "2", nil}) {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
	if n, err := rdb.Exists(c, "a", "b", "nope", "a").Result(); err != nil || n != 3 {
		t.Fatalf("EXISTS = %d, %v", n, err)
	}
	if n, err := rdb.DBSize(c).Result(); err != nil || n != 3 {
		t.Fatalf("DBSIZE = %d, %v", n, err)
	}
	if n, err := rdb.Del(c, "a", "nope").Result(); err != nil || n != 1 {
		t.Fatalf("DEL = %d, %v", n, err)
	}
	if n, err := rdb.Unlink(c, "b").Result(); err != nil || n != 1 {
		t.Fatalf("UNLINK = %d, %v", n, err)
	}
	if n, err := rdb.DBSize(c).Result(); err != nil || n != 1 {
		t.Fatalf("DBSIZE after deletes = %d, %v", n, err)
	}
	if err := rdb.Set(c, "ttl", "v", 50*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Get(c, "ttl").Err() != redis.Nil {
		if time.Now().After(deadline) {
			t.Fatal("SET PX value never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	info, err := rdb.Info(c, "cluster").Result()
	if err != nil || !strings.Contains(info, "node_id:n1") || !strings.Contains(info, "replication_n:3") {
		t.Fatalf("INFO cluster = %q, %v", info, err)
	}
}

func TestPipelineOf1000(t *testing.T) {
	n := StartNode(t, "n1", "")
	rdb := n.Redis()
	c := ctx(t)
	pipe := rdb.Pipeline()
	var gets []*redis.StringCmd
	for i := range 500 {
		k := fmt.Sprintf("key:%d", i%100) // repeated keys: order per key matters
		pipe.Set(c, k, fmt.Sprint(i), 0)
		gets = append(gets, pipe.Get(c, k))
	}
	if _, err := pipe.Exec(c); err != nil {
		t.Fatal(err)
	}
	for i, g := range gets {
		if v, err := g.Result(); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("GET #%d in pipeline = %q, %v: the pipeline ran out of order", i, v, err)
		}
	}
	for i := range 100 {
		want := fmt.Sprint(400 + i)
		if v, err := rdb.Get(c, fmt.Sprintf("key:%d", i)).Result(); err != nil || v != want {
			t.Fatalf("key:%d = %q, %v, want %s", i, v, err, want)
		}
	}
}

// redisCLI runs redis-cli against the node and returns its raw output.
func redisCLI(t *testing.T, n *Node, args ...string) string {
	t.Helper()
	cli := needTool(t, "redis-cli")
	host, port, _ := net.SplitHostPort(n.Client)
	out, err := exec.Command(cli, append([]string{"-h", host, "-p", port, "--raw"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimRight(string(out), "\n")
}

func TestRedisCLI(t *testing.T) {
	n := StartNode(t, "n1", "")
	if out := redisCLI(t, n, "SET", "cart", "apple"); out != "OK" {
		t.Fatalf("SET = %q", out)
	}
	if out := redisCLI(t, n, "GET", "cart"); out != "apple" {
		t.Fatalf("GET = %q", out)
	}
	// Two writers that saw the same version write back concurrently...
	ctxOut := lines(redisCLI(t, n, "DGET", "cart"))
	if len(ctxOut) != 2 || ctxOut[1] != "apple" {
		t.Fatalf("DGET = %q", ctxOut)
	}
	seen := ctxOut[0]
	redisCLI(t, n, "DPUT", "cart", seen, "apple,banana")
	redisCLI(t, n, "DPUT", "cart", seen, "apple,cherry")
	// ...and both survive as siblings.
	got := lines(redisCLI(t, n, "DGET", "cart"))
	if len(got) != 3 || !slices.Equal(sorted(got[1:]), []string{"apple,banana", "apple,cherry"}) {
		t.Fatalf("DGET after concurrent DPUTs = %q, want two siblings", got)
	}
	// A DPUT with that context merges them into one value.
	newCtx := redisCLI(t, n, "DPUT", "cart", got[0], "apple,banana,cherry")
	if newCtx == "" {
		t.Fatal("DPUT returned an empty context")
	}
	final := lines(redisCLI(t, n, "DGET", "cart"))
	if len(final) != 2 || final[1] != "apple,banana,cherry" {
		t.Fatalf("DGET after merge = %q", final)
	}
	if out := redisCLI(t, n, "DDEL", "cart", final[0]); out != "OK" {
		t.Fatalf("DDEL = %q", out)
	}
	if out := redisCLI(t, n, "EXISTS", "cart"); out != "0" {
		t.Fatalf("EXISTS after DDEL = %q", out)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestRedisBenchmark(t *testing.T) {
	bench := needTool(t, "redis-benchmark")
	n := StartNode(t, "n1", "")
	host, port, _ := net.SplitHostPort(n.Client)
	out, err := exec.Command(bench, "-h", host, "-p", port, "-t", "ping,set,get", "-n", "20000", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	text := string(out)
	for _, l := range lines(text) {
		low := strings.ToLower(l)
		if strings.Contains(low, "err") || strings.Contains(low, "warning") {
			t.Fatalf("redis-benchmark printed an error line: %q\n%s", l, text)
		}
	}
	for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET"} {
		if !strings.Contains(text, test+": ") {
			t.Fatalf("redis-benchmark did not report %s:\n%s", test, text)
		}
	}
	t.Logf("\n%s", text)
}

// writeKeys SETs n keys through one connection and returns once every SET
// was acknowledged.
func writeKeys(t *testing.T, rdb *redis.Client, prefix string, count int) {
	t.Helper()
	c := ctx(t)
	for i := range count {
		if err := rdb.Set(c, fmt.Sprintf("%s:%d", prefix, i), fmt.Sprintf("value-%d", i), 0).Err(); err != nil {
			t.Fatalf("SET #%d: %v", i, err)
		}
	}
}

// writeKeysPipelined writes as writeKeys does, in pipelines of 100 SETs:
// on one node they run in line and share one wait for durability.
func writeKeysPipelined(t *testing.T, rdb *redis.Client, prefix string, count int) {
	t.Helper()
	c := ctx(t)
	for from := 0; from < count; from += 100 {
		pipe := rdb.Pipeline()
		for i := from; i < min(from+100, count); i++ {
			pipe.Set(c, fmt.Sprintf("%s:%d", prefix, i), fmt.Sprintf("value-%d", i), 0)
		}
		if _, err := pipe.Exec(c); err != nil {
			t.Fatalf("pipeline from SET #%d: %v", from, err)
		}
	}
}

func checkKeys(t *testing.T, rdb *redis.Client, prefix string, count int) {
	t.Helper()
	c := ctx(t)
	for i := range count {
		v, err := rdb.Get(c, fmt.Sprintf("%s:%d", prefix, i)).Result()
		if err != nil || v != fmt.Sprintf("value-%d", i) {
			t.Fatalf("%s:%d = %q, %v after restart", prefix, i, v, err)
		}
	}
}

func TestDurabilityKill9FsyncAlways(t *testing.T) {
	n := StartNode(t, "n1", "[storage]\nfsync = \"always\"\n")
	writeKeys(t, n.Redis(), "durable", 1000)
	writeKeysPipelined(t, n.Redis(), "piped", 1000)
	n.Kill()
	n.Start()
	checkKeys(t, n.Redis(), "durable", 1000)
	checkKeys(t, n.Redis(), "piped", 1000)
}

// A crash of the process loses no acknowledged write under any fsync
// policy, as with Redis: everysec and no only risk the last second (or
// what the OS has not written back) on a crash of the machine.
func TestDurabilityKill9EverysecAndNo(t *testing.T) {
	for _, policy := range []string{"everysec", "no"} {
		t.Run(policy, func(t *testing.T) {
			n := StartNode(t, "n1", fmt.Sprintf("[storage]\nfsync = %q\n", policy))
			writeKeys(t, n.Redis(), "crash", 1000)
			writeKeysPipelined(t, n.Redis(), "piped", 1000)
			n.Kill()
			n.Start()
			checkKeys(t, n.Redis(), "crash", 1000)
			checkKeys(t, n.Redis(), "piped", 1000)
		})
	}
}

func TestCleanShutdownFsyncNo(t *testing.T) {
	n := StartNode(t, "n1", "[storage]\nfsync = \"no\"\n")
	writeKeys(t, n.Redis(), "clean", 1000)
	n.Stop()
	if !strings.Contains(n.Logs(), "stopped") {
		t.Fatalf("no clean-stop log line:\n%s", n.Logs())
	}
	n.Start()
	checkKeys(t, n.Redis(), "clean", 1000)
}

func TestSIGINTExitsCleanly(t *testing.T) {
	n := StartNode(t, "n1", "")
	writeKeys(t, n.Redis(), "int", 10)
	n.Signal(syscall.SIGINT)
	if err := n.Wait(30 * time.Second); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
}

// rawConn is a plain TCP connection for sending bytes no client library
// would send.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second)) // a missing reply fails the test rather than hanging it
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatal(err)
	}
}

// line reads one reply line.
func (rc *rawConn) line() string {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("reading reply: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command as a RESP array.
func (rc *rawConn) cmd(args ...string) {
	rc.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	rc.send(b.String())
}

func TestBadInput(t *testing.T) {
	n := StartNode(t, "n1", "[limits]\nproto_max_bulk_len = 1024\n")
	rdb := n.Redis()
	c := ctx(t)
	if err := rdb.Set(c, "k", "original", 0).Err(); err != nil {
		t.Fatal(err)
	}
	dget := func() []any {
		v, err := rdb.Do(c, "DGET", "k").Slice()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := dget()
	other := dialRaw(t, n.Client) // a bystander that must keep working
	rc := dialRaw(t, n.Client)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong arity", []string{"GET"}, "-ERR wrong number of arguments for 'get' command"},
		{"wrong arity sub", []string{"CLIENT", "SETNAME"}, "-ERR wrong number of arguments for 'client|setname' command"},
		{"unknown command", []string{"FLY", "k", "away"}, "-ERR unknown command 'FLY', with args beginning with: 'k' 'away' "},
		{"unknown subcommand", []string{"CLIENT", "FLY"}, "-ERR unknown subcommand 'FLY'. Try CLIENT HELP."},
		{"malformed context DPUT", []string{"DPUT", "k", "%%%not-a-context", "v"}, "-ERR invalid context"},
		{"truncated context DPUT", []string{"DPUT", "k", "AQ", "v"}, "-ERR invalid context"},
		{"malformed context DDEL", []string{"DDEL", "k", "zzzz"}, "-ERR invalid context"},
		{"non-integer EX", []string{"SET", "k", "v", "EX", "soon"}, "-ERR value is not an integer or out of range"},
		{"non-integer R", []string{"DGET", "k", "R", "two"}, "-ERR value is not an integer or out of range"},
		{"R out of range", []string{"DGET", "k", "R", "9"}, "-ERR quorum out of range: R must be between 1 and 3"},
		{"W zero", []string{"DPUT", "k", "", "v", "W", "0"}, "-ERR quorum out of range: W must be between 1 and 3"},
		{"syntax", []string{"SET", "k", "v", "NX", "XX"}, "-ERR syntax error"},
		{"select", []string{"SELECT", "3"}, "-ERR DB index is out of range"},
		{"hello 4", []string{"HELLO", "4"}, "-NOPROTO unsupported protocol version"},
		{"peer read on client port", []string{"R.GET", "k"}, "-ERR unknown command 'R.GET', with args beginning with: 'k' "},
		{"peer merge on client port", []string{"R.MERGE", "k", "x"}, "-ERR unknown command 'R.MERGE', with args beginning with: 'k' 'x' "},
		{"peer write on client port", []string{"C.WRITE", "k", "x"}, "-ERR unknown command 'C.WRITE', with args beginning with: 'k' 'x' "},
	}
	for _, tc := range cases {
		rc.cmd(tc.args...)
		if got := rc.line(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// An oversized bulk is refused before it is buffered whole; the
	// connection carries on.
	big := strings.Repeat("x", 4096)
	rc.cmd("SET", "k", big)
	if got := rc.line(); !strings.HasPrefix(got, "-ERR Protocol error: invalid bulk length") {
		t.Errorf("oversized bulk: got %q", got)
	}
	// The same when its bytes arrive slowly: the command is refused as
	// its header arrives, not run with the value left out.
	rc.send(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s", len(big), big[:1000]))
	if got := rc.line(); !strings.HasPrefix(got, "-ERR Protocol error: invalid bulk length") {
		t.Errorf("oversized bulk arriving slowly: got %q", got)
	}
	time.Sleep(100 * time.Millisecond)
	rc.send(big[1000:] + "\r\n")
	rc.cmd("PING")
	if got := rc.line(); got != "+PONG" {
		t.Errorf("PING after the errors: %q", got)
	}
	other.cmd("GET", "k")
	if got := other.line(); got != "$8" || other.line() != "original" {
		t.Errorf("bystander GET: %q", got)
	}
	if after := dget(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("bad input changed the key: %v -> %v", before, after)
	}
	if n, err := rdb.DBSize(c).Result(); err != nil || n != 1 {
		t.Errorf("DBSIZE = %d, %v", n, err)
	}
	// Malformed framing ends the connection after the error, as in Redis,
	// and answers the commands before it first.
	bad := dialRaw(t, n.Client)
	bad.send("PING\r\n*1\r\n$x\r\n")
	if got := bad.line(); got != "+PONG" {
		t.Errorf("command before bad framing: %q", got)
	}
	if got := bad.line(); got != "-ERR Protocol error: invalid bulk length" {
		t.Errorf("bad framing: %q", got)
	}
	if _, err := bad.r.ReadString('\n'); err == nil {
		t.Error("connection stayed open after a protocol error")
	}
	other.cmd("PING")
	if got := other.line(); got != "+PONG" {
		t.Errorf("bystander after protocol error: %q", got)
	}
}

// TestClientLimits checks the query buffer limit and the idle timeout: a
// command that grows past the limit is refused with an error, the
// connection closed and nothing written; a silent client is disconnected;
// both show in CONFIG GET.
func TestClientLimits(t *testing.T) {
	n := StartNode(t, "n1", "[limits]\nproto_max_bulk_len = \"1mb\"\nquery_buffer_limit = \"2mb\"\nidle_timeout = \"1s\"\n")
	c := ctx(t)
	rdb := n.Redis()
	cfg, err := rdb.ConfigGet(c, "*").Result()
	if err != nil || cfg["timeout"] != "1" || cfg["client-query-buffer-limit"] != "2097152" {
		t.Fatalf("CONFIG GET: timeout %q, client-query-buffer-limit %q, %v", cfg["timeout"], cfg["client-query-buffer-limit"], err)
	}

	// Every value under proto_max_bulk_len, the command past the limit.
	greedy := dialRaw(t, n.Client)
	value := strings.Repeat("v", 900_000)
	greedy.cmd("MSET", "g1", value, "g2", value, "g3", value)
	if got := greedy.line(); !strings.Contains(got, "query buffer limit") {
		t.Fatalf("a 2.7 MB command under a 2 MB limit: %q", got)
	}
	if _, err := greedy.r.ReadString('\n'); err == nil {
		t.Fatal("the connection stayed open past the query buffer limit")
	}
	if n, err := rdb.Exists(c, "g1", "g2", "g3").Result(); err != nil || n != 0 {
		t.Fatalf("the refused MSET wrote %d keys, %v", n, err)
	}
	// Under the limit, the same command works.
	if err := rdb.MSet(c, "g1", value, "g2", value).Err(); err != nil {
		t.Fatalf("MSET of 1.8 MB: %v", err)
	}

	idle := dialRaw(t, n.Client)
	idle.cmd("PING")
	if got := idle.line(); got != "+PONG" {
		t.Fatalf("PING: %q", got)
	}
	start := time.Now()
	if _, err := idle.r.ReadString('\n'); err == nil {
		t.Fatal("an idle client got a reply instead of being disconnected")
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("an idle client was disconnected after %v, before idle_timeout", waited)
	}
	// A busy client is not idle: ten PINGs 300 ms apart span 3 s.
	busy := dialRaw(t, n.Client)
	for range 10 {
		busy.cmd("PING")
		if got := busy.line(); got != "+PONG" {
			t.Fatalf("a client active every 300 ms was cut: %q", got)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// startAuthNode starts a node whose clients must AUTH with "s3cret"; the
// harness's own client logs in.
func startAuthNode(t *testing.T) *Node {
	n := NewNode(t, "n1", "[security]\nrequirepass = \"s3cret\"\n")
	n.rdb = redis.NewClient(&redis.Options{Addr: n.Client, Protocol: 2, Password: "s3cret"})
	n.Start()
	return n
}

func TestAuth(t *testing.T) {
	n := startAuthNode(t)
	rc := dialRaw(t, n.Client)
	rc.cmd("GET", "k")
	if got := rc.line(); got != "-NOAUTH Authentication required." {
		t.Errorf("before AUTH: %q", got)
	}
	rc.cmd("AUTH", "wrong")
	if got := rc.line(); got != "-WRONGPASS invalid username-password pair or user is disabled." {
		t.Errorf("bad password: %q", got)
	}
	rc.cmd("AUTH", "s3cret")
	if got := rc.line(); got != "+OK" {
		t.Errorf("AUTH: %q", got)
	}
	rc.cmd("SET", "k", "v")
	if got := rc.line(); got != "+OK" {
		t.Errorf("SET after AUTH: %q", got)
	}
	if v, err := n.Redis().Get(ctx(t), "k").Result(); err != nil || v != "v" {
		t.Errorf("go-redis with password: %q, %v", v, err)
	}
}

func TestVersion(t *testing.T) {
	code, out := runDynakv(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "dynakv ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// TestBadConfig checks that each config that cannot work stops the node at
// start with status 2 and one line that names the key.
func TestBadConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	base := func(extra string) string {
		return fmt.Sprintf("[node]\nid = \"n1\"\ndata_dir = \"data\"\n[listen]\nclient = \"127.0.0.1:%d\"\npeer = \"127.0.0.1:%d\"\ngossip = \"127.0.0.1:%d\"\n%s",
			freePort(t), freePort(t), freePort(t), extra)
	}
	cases := []struct {
		name, config, key string
	}{
		{"unknown key", base("[replication]\nfactor = 3\n"), "replication.factor"},
		{"bad duration", base("[replication]\ntimeout = \"soon\"\n"), "replication.timeout"},
		{"w > n", base("[replication]\nn = 2\nw = 3\n"), "replication.w"},
		{"missing id", "[node]\ndata_dir = \"data\"\n", "node.id"},
		{"bad fsync", base("[storage]\nfsync = \"sometimes\"\n"), "storage.fsync"},
		{"address in use", strings.Replace(base(""), "client = ", fmt.Sprintf("client = %q\n#", busy.Addr().String()), 1), "listen.client"},
		{"not toml", base("[replication\n"), "line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.toml")
			if err := os.WriteFile(path, []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out := runDynakv(t, dir, "--config", path)
			if code != 2 {
				t.Fatalf("exit %d, want 2; output:\n%s", code, out)
			}
			if l := lines(out); len(l) != 1 || !strings.Contains(l[0], tc.key) || strings.Contains(out, "panic") {
				t.Fatalf("want one line naming %s, got:\n%s", tc.key, out)
			}
		})
	}
}

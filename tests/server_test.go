package tests

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestServerCommandsLikeRedis runs the introspection and administration
// commands operators' tools use against a real redis-server and a 3-node
// dynakv cluster: where Redis's reply is deterministic the replies must be
// the same; elsewhere the shape and the figures are checked.
func TestServerCommandsLikeRedis(t *testing.T) {
	real := startRedisServer(t)
	nodes := StartCluster(t, 3, "")
	ours := nodes[0].Redis()
	d := &differ{t: t, real: real, ours: ours}
	c := ctx(t)

	for _, cmd := range [][]any{
		{"COMMAND", "GETKEYS", "GET", "k"}, {"COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"},
		{"COMMAND", "GETKEYS", "LCS", "x", "y"}, {"COMMAND", "GETKEYS", "PING"}, {"COMMAND", "GETKEYS", "NOSUCH", "x"},
		{"COMMAND", "GETKEYS", "GET"}, {"COMMAND", "GETKEYS", "MEMORY", "USAGE", "k"},
	} {
		d.do(cmd...)
	}
	for _, v := range []string{"1234", "-5", "hello", strings.Repeat("x", 44), strings.Repeat("x", 45), "007"} {
		d.do("SET", "enc", v)
		d.do("OBJECT", "ENCODING", "enc")
		d.do("OBJECT", "REFCOUNT", "enc")
	}
	d.do("OBJECT", "ENCODING", "missing")
	d.do("OBJECT", "FREQ", "enc")
	d.do("OBJECT", "BOGUS", "enc")
	d.do("LATENCY", "LATEST")
	d.do("LATENCY", "RESET")
	d.do("RESET")
	d.do("CLIENT", "NO-EVICT", "on")
	d.do("CLIENT", "NO-EVICT", "maybe")
	d.do("CONFIG", "SET", "slowlog-max-len", "64")
	d.do("CONFIG", "GET", "slowlog-max-len")
	d.do("CONFIG", "SET", "slowlog-log-slower-than", "notanumber")
	d.do("CONFIG", "SET", "no-such-option", "1")
	d.do("SLOWLOG", "RESET")
	d.do("SLOWLOG", "LEN")
	d.do("WAIT", "0", "-1")
	d.do("CLIENT", "KILL", "127.0.0.1:1")
	d.do("CLIENT", "KILL", "ID", "0")
	d.do("TOUCH", "enc", "missing", "enc")

	// CLIENT NO-TOUCH came in Redis 7.2, after the redis-server tests run.
	expect(t, "CLIENT NO-TOUCH on", must(ours.Do(c, "CLIENT", "NO-TOUCH", "on")), nil, "OK")

	// Every command slower than 0 µs is logged, with its arguments.
	expect(t, "CONFIG SET slowlog-log-slower-than 0", must(ours.ConfigSet(c, "slowlog-log-slower-than", "0")), nil, "OK")
	if err := ours.Set(c, "slow", "value", 0).Err(); err != nil {
		t.Fatal(err)
	}
	entries, err := ours.SlowLogGet(c, -1).Result()
	if err != nil || len(entries) == 0 {
		t.Fatalf("SLOWLOG GET -1 = %v, %v", entries, err)
	}
	found := false
	for _, e := range entries {
		found = found || strings.Join(e.Args, " ") == "set slow value"
	}
	if !found {
		t.Fatalf("SET slow value is not in the slow log: %+v", entries)
	}
	expect(t, "CONFIG SET slowlog-log-slower-than -1", must(ours.ConfigSet(c, "slowlog-log-slower-than", "-1")), nil, "OK")

	// INFO's command and error statistics, the byte and rate counters.
	ours.Do(c, "NOSUCHCOMMAND")
	ours.Do(c, "GET")
	ours.Incr(c, "slow")
	info := infoOf(t, nodes[0], "commandstats", "errorstats", "stats")
	for _, want := range []string{"cmdstat_set:calls=", "cmdstat_get:calls=", "rejected_calls=1", "cmdstat_incr:calls=1,", "failed_calls=1",
		"errorstat_ERR:count=", "total_net_output_bytes:", "instantaneous_ops_per_sec:"} {
		if !strings.Contains(info, want) {
			t.Fatalf("INFO commandstats errorstats stats lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(infoOf(t, nodes[0]), "cmdstat_") {
		t.Fatal("INFO without arguments shows commandstats; Redis shows it only on request or with all")
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				ours.Get(context.Background(), "slow")
			}
		}
	}()
	time.Sleep(time.Second)
	rate := infoField(t, infoOf(t, nodes[0], "stats"), "instantaneous_ops_per_sec")
	close(stop)
	if rate <= 0 {
		t.Fatalf("instantaneous_ops_per_sec = %d under a GET loop", rate)
	}
	if infoField(t, infoOf(t, nodes[0], "stats"), "total_net_output_bytes") <= 0 {
		t.Fatal("total_net_output_bytes did not grow")
	}
	expect(t, "CONFIG RESETSTAT", must(ours.ConfigResetStat(c)), nil, "OK")
	if strings.Contains(infoOf(t, nodes[0], "commandstats"), "cmdstat_incr") {
		t.Fatal("CONFIG RESETSTAT left commandstats")
	}

	// What has no fixed reply in Redis: a key, a size, a time, a count.
	if k, err := nodes[1].Redis().RandomKey(c).Result(); err != nil || (k != "enc" && k != "slow") {
		t.Fatalf("RANDOMKEY = %q, %v, want one of the keys", k, err)
	}
	if err := ours.Set(c, "enc", strings.Repeat("v", 1000), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := ours.MemoryUsage(c, "enc").Result(); err != nil || n < 1003 || n > 1200 {
		t.Fatalf("MEMORY USAGE enc = %d, %v; want the key, its 1000-byte value and a clock", n, err)
	}
	if err := ours.MemoryUsage(c, "missing").Err(); err != redis.Nil {
		t.Fatalf("MEMORY USAGE of a missing key: %v", err)
	}
	// WAIT counts the replicas besides the first that hold the
	// connection's last write: all three copies arrive.
	waiter := nodes[1].Redis().Conn() // WAIT is about this connection's writes
	defer waiter.Close()
	if err := waiter.Set(c, "waited", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := waiter.Wait(c, 2, 5*time.Second).Result(); err != nil || n != 2 {
		t.Fatalf("WAIT 2 5000 after a SET = %d, %v; want the 2 other replicas", n, err)
	}
	nodes[2].Signal(syscall.SIGSTOP)
	if err := waiter.Set(c, "waited", "w", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := waiter.Wait(c, 2, 300*time.Millisecond).Result()
	nodes[2].Signal(syscall.SIGCONT)
	if err != nil || n != 1 {
		t.Fatalf("WAIT 2 300 with a replica paused = %d, %v; want the 1 that answered", n, err)
	}
	if at, err := ours.LastSave(c).Result(); err != nil || time.Since(time.Unix(at, 0)) > time.Minute {
		t.Fatalf("LASTSAVE = %d, %v", at, err)
	}
	role, err := ours.Do(c, "ROLE").Slice()
	if err != nil || len(role) != 3 || role[0] != "master" {
		t.Fatalf("ROLE = %v, %v", role, err)
	}
	if n, err := ours.Do(c, "FLUSHALL").Result(); err != nil {
		t.Fatalf("FLUSHALL = %v, %v", n, err)
	}
	if err := nodes[2].Redis().RandomKey(c).Err(); err != redis.Nil {
		t.Fatalf("RANDOMKEY of an empty cluster: %v", err)
	}

	// CLIENT KILL closes another connection; RESET asks for AUTH again.
	victim := dialRaw(t, nodes[0].Client)
	victim.cmd("CLIENT", "ID")
	id := strings.TrimPrefix(victim.line(), ":")
	expect(t, "CLIENT KILL ID", must(ours.Do(c, "CLIENT", "KILL", "ID", id)), nil, 1)
	victim.cmd("PING")
	_ = victim.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := victim.r.ReadString('\n'); err == nil {
		t.Fatalf("a killed connection still answers: %q", l)
	}
	t.Logf("%d commands with the same replies as redis-server; slow log, statistics, RANDOMKEY, MEMORY USAGE, WAIT, LASTSAVE, ROLE, CLIENT KILL checked", d.ran)
}

// infoOf returns INFO's text for the sections (none: the default).
func infoOf(t *testing.T, n *Node, sections ...string) string {
	t.Helper()
	s, err := n.Redis().Info(ctx(t), sections...).Result()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// infoField parses an integer field of INFO's text.
func infoField(t *testing.T, info, field string) int64 {
	t.Helper()
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s = %q", field, v)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s:\n%s", field, info)
	return 0
}

// TestResetAsksForAuthAgain: RESET on a password-protected node leaves the
// connection unauthenticated, as Redis does.
func TestResetAsksForAuthAgain(t *testing.T) {
	n := startAuthNode(t)
	rc := dialRaw(t, n.Client)
	rc.cmd("AUTH", "s3cret")
	if l := rc.line(); l != "+OK" {
		t.Fatalf("AUTH: %q", l)
	}
	rc.cmd("RESET")
	if l := rc.line(); l != "+RESET" {
		t.Fatalf("RESET: %q", l)
	}
	rc.cmd("GET", "k")
	if l := rc.line(); !strings.HasPrefix(l, "-NOAUTH") {
		t.Fatalf("GET after RESET: %q, want -NOAUTH", l)
	}
}

// replyScript drives CLIENT REPLY and MONITOR's neighbours on one
// connection: what is read must be the same as from redis-server.
func replyScript(t *testing.T, rc, other *rawConn) []string {
	var out []string
	rc.cmd("CLIENT", "REPLY", "OFF")
	rc.cmd("SET", "rx", "1")
	rc.cmd("GET", "rx")
	rc.cmd("NOSUCHCOMMAND")
	rc.cmd("CLIENT", "REPLY", "ON")
	out = append(out, rc.reply())
	rc.cmd("CLIENT", "REPLY", "SKIP")
	rc.cmd("PING", "skipped")
	rc.cmd("PING", "answered")
	out = append(out, rc.reply())
	rc.cmd("CLIENT", "REPLY", "MAYBE")
	out = append(out, rc.reply())
	rc.cmd("GET", "rx")
	out = append(out, rc.reply())
	for _, cmd := range [][]string{{"CLIENT", "PAUSE", "abc"}, {"CLIENT", "PAUSE", "10", "SOME"}, {"CLIENT", "UNPAUSE"}} {
		other.cmd(cmd...)
		out = append(out, strings.Join(cmd, " ")+" -> "+other.reply())
	}
	return out
}

// TestClientReplyLikeRedis: CLIENT REPLY OFF, SKIP and ON withhold
// replies as in Redis.
func TestClientReplyLikeRedis(t *testing.T) {
	t.Logf("%d replies the same as redis-server's", likeRedis(t, 2, replyScript))
}

// TestMonitorAndPause: MONITOR streams the node's commands in Redis's
// format; CLIENT PAUSE WRITE holds writes but not reads until UNPAUSE.
func TestMonitorAndPause(t *testing.T) {
	nodes := StartCluster(t, 2, "")
	mon := dialRaw(t, nodes[0].Client)
	mon.cmd("MONITOR")
	if l := mon.line(); l != "+OK" {
		t.Fatalf("MONITOR: %q", l)
	}
	rc := dialRaw(t, nodes[0].Client)
	rc.cmd("SET", "mk", "a b\n\"c\"")
	rc.line()
	rc.cmd("GET", "mk")
	rc.reply()
	line := regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] (.*)$`)
	for _, want := range []string{`"SET" "mk" "a b\n\"c\""`, `"GET" "mk"`} {
		m := line.FindStringSubmatch(mon.line())
		if m == nil || m[1] != want {
			t.Fatalf("MONITOR line %v, want %s", m, want)
		}
	}

	admin, writer, reader := dialRaw(t, nodes[0].Client), dialRaw(t, nodes[0].Client), dialRaw(t, nodes[0].Client)
	admin.cmd("CLIENT", "PAUSE", "60000", "WRITE")
	if l := admin.line(); l != "+OK" {
		t.Fatalf("CLIENT PAUSE: %q", l)
	}
	writer.cmd("SET", "paused", "1")
	reader.cmd("GET", "mk")
	if got := reader.reply(); got != "a b\n\"c\"" {
		t.Fatalf("a read while writes are paused: %q", got)
	}
	_ = writer.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if l, err := writer.r.ReadString('\n'); err == nil {
		t.Fatalf("a write answered while writes are paused: %q", l)
	}
	admin.cmd("CLIENT", "UNPAUSE")
	if l := admin.line(); l != "+OK" {
		t.Fatalf("CLIENT UNPAUSE: %q", l)
	}
	if l := writer.line(); l != "+OK" {
		t.Fatalf("the held write after UNPAUSE: %q", l)
	}
}

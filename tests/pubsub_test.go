package tests

import (
	"context"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// reply reads one whole RESP2 or RESP3 reply and renders it compactly:
// arrays in brackets, maps in braces, sets and pushes in brackets after
// "~" and ">", RESP2's nulls as (nil) and RESP3's as "_", errors with
// their "-", integers with ":", a verbatim string as its format alone
// ("=txt": its text is the server's own).
func (rc *rawConn) reply() string {
	rc.t.Helper()
	l := rc.line()
	switch l[0] {
	case '*', '~', '>', '%':
		n, err := strconv.Atoi(l[1:])
		if err != nil {
			rc.t.Fatalf("bad aggregate header %q", l)
		}
		if n < 0 {
			return "(nil)"
		}
		if l[0] == '%' {
			n *= 2
		}
		parts := make([]string, n)
		for i := range parts {
			parts[i] = rc.reply()
		}
		switch l[0] {
		case '%':
			return "{" + strings.Join(parts, " ") + "}"
		case '*':
			return "[" + strings.Join(parts, " ") + "]"
		}
		return l[:1] + "[" + strings.Join(parts, " ") + "]"
	case '=':
		n, err := strconv.Atoi(l[1:])
		if err != nil || n < 4 {
			rc.t.Fatalf("bad verbatim header %q", l)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, b); err != nil {
			rc.t.Fatalf("reading verbatim: %v", err)
		}
		return "=" + string(b[:3])
	case '$':
		n, err := strconv.Atoi(l[1:])
		if err != nil {
			rc.t.Fatalf("bad bulk header %q", l)
		}
		if n < 0 {
			return "(nil)"
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, b); err != nil {
			rc.t.Fatalf("reading bulk: %v", err)
		}
		return string(b[:n])
	case '+':
		return l[1:]
	default:
		return l
	}
}

// pubsubScript ports the cases of Redis's tests/unit/pubsub.tcl: sub is a
// subscriber's connection, pub a publisher's (on another node for dynakv),
// peek a plain connection to the subscriber's node (PUBSUB answers for
// its node, as in Redis Cluster), and the transcript of everything each
// read is returned, to be compared with redis-server's.
func pubsubScript(t *testing.T, sub, sub2, pub, peek *rawConn) []string {
	var out []string
	read := func(rc *rawConn, n int) {
		for range n {
			out = append(out, rc.reply())
		}
	}
	do := func(rc *rawConn, n int, args ...string) {
		rc.cmd(args...)
		out = append(out, strings.Join(args, " ")+" ->")
		read(rc, n)
	}
	// PUBLISH/SUBSCRIBE basics, with two clients, one channel more than once.
	do(sub, 2, "SUBSCRIBE", "chan1", "chan2")
	do(pub, 1, "PUBLISH", "chan1", "hello")
	do(pub, 1, "PUBLISH", "chan2", "world")
	read(sub, 2)
	do(sub, 1, "UNSUBSCRIBE", "chan1")
	do(pub, 1, "PUBLISH", "chan1", "hello")
	do(pub, 1, "PUBLISH", "chan2", "world")
	read(sub, 1)
	do(sub2, 3, "SUBSCRIBE", "chan2", "chan2", "chan2")
	do(pub, 1, "PUBLISH", "chan2", "both")
	read(sub, 1)
	read(sub2, 1)
	// In the subscribed state: PING's shape, other commands refused.
	do(sub, 1, "PING")
	do(sub, 1, "PING", "hi")
	do(sub, 1, "GET", "k")
	do(sub, 1, "UNSUBSCRIBE", "chan2")
	do(sub2, 1, "UNSUBSCRIBE")
	do(pub, 1, "PUBLISH", "chan2", "nobody")
	do(sub, 3, "UNSUBSCRIBE", "foo", "bar", "quux")
	// PSUBSCRIBE basics; mixed with SUBSCRIBE.
	do(sub, 2, "PSUBSCRIBE", "foo.*", "bar.*")
	for _, ch := range []string{"foo.1", "bar.1", "foo1", "barfoo.1", "qux.1"} {
		do(pub, 1, "PUBLISH", ch, "hello")
	}
	read(sub, 2)
	do(sub, 1, "PUNSUBSCRIBE", "foo.*")
	do(pub, 1, "PUBLISH", "foo.1", "hello")
	do(pub, 1, "PUBLISH", "bar.1", "hello")
	read(sub, 1)
	do(sub, 1, "SUBSCRIBE", "bar.x")
	do(pub, 1, "PUBLISH", "bar.x", "twice")
	read(sub, 2)
	do(peek, 1, "PUBSUB", "NUMPAT")
	do(peek, 1, "PUBSUB", "NUMSUB", "bar.x", "chan2")
	do(peek, 1, "PUBSUB", "CHANNELS")
	do(peek, 1, "PUBSUB", "CHANNELS", "bar.?")
	do(peek, 1, "PUBSUB", "CHANNELS", "a", "b")
	do(sub, 1, "PUNSUBSCRIBE", "bar.*")
	do(sub, 1, "UNSUBSCRIBE", "bar.x")
	do(sub, 3, "PUNSUBSCRIBE", "foo.*", "bar.*", "quux.*")
	// PUNSUBSCRIBE and UNSUBSCRIBE always reply, subscribed or not.
	do(pub, 1, "PUNSUBSCRIBE")
	do(pub, 1, "UNSUBSCRIBE")
	// Shard channels.
	do(sub, 1, "SSUBSCRIBE", "orders")
	do(pub, 1, "SPUBLISH", "orders", "o1")
	do(pub, 1, "PUBLISH", "orders", "not-a-shard-message")
	read(sub, 1)
	do(sub, 1, "SUNSUBSCRIBE")
	do(sub, 1, "SUBSCRIBE")
	// RESET leaves the subscribed state.
	do(sub, 1, "SUBSCRIBE", "r")
	do(sub, 1, "RESET")
	do(pub, 1, "PUBLISH", "r", "gone")
	do(sub, 1, "GET", "k")
	return out
}

// sameTranscript fails the test where dynakv's transcript differs from
// redis-server's.
func sameTranscript(t *testing.T, want, got []string) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		if got[i] != want[i] {
			t.Fatalf("transcripts differ at line %d:\nredis-server: %s\ndynakv:       %s\n\nredis-server's:\n%s", i, want[i], got[i], strings.Join(want, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("dynakv's transcript has %d lines, redis-server's %d", len(got), len(want))
	}
}

// TestPubSubLikeRedis runs the pub/sub cases of Redis's own suite against
// a real redis-server and a 3-node dynakv cluster whose subscribers and
// publisher are on different nodes: the transcripts must be the same.
func TestPubSubLikeRedis(t *testing.T) {
	real := startRedisServer(t)
	nodes := StartCluster(t, 3, "")
	addr := real.Options().Addr
	want := pubsubScript(t, dialRaw(t, addr), dialRaw(t, addr), dialRaw(t, addr), dialRaw(t, addr))
	got := pubsubScript(t, dialRaw(t, nodes[1].Client), dialRaw(t, nodes[2].Client), dialRaw(t, nodes[0].Client), dialRaw(t, nodes[1].Client))
	sameTranscript(t, want, got)
	t.Logf("%d replies and messages the same as redis-server's", len(want))
}

// TestPubSubAcrossNodes: go-redis subscribers on two nodes receive every
// message published on a third, in order; a subscriber's node killed and
// restarted does not stall the publisher, and subscribers on it get the
// messages published after they subscribe again.
func TestPubSubAcrossNodes(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	sub2 := nodes[1].Redis().Subscribe(c, "news")
	defer sub2.Close()
	sub3 := nodes[2].Redis().PSubscribe(c, "new*")
	defer sub3.Close()
	shard := nodes[1].Redis().SSubscribe(c, "orders")
	defer shard.Close()
	for _, s := range []*redis.PubSub{sub2, sub3, shard} {
		if _, err := s.Receive(c); err != nil {
			t.Fatal(err)
		}
	}
	const msgs = 200
	pub := nodes[0].Redis()
	for i := range msgs {
		expect(t, "PUBLISH news", must(pub.Publish(c, "news", strconv.Itoa(i))), nil, int64(2))
	}
	expect(t, "SPUBLISH orders", must(pub.SPublish(c, "orders", "o1")), nil, int64(1))
	expect(t, "PUBLISH nobody", must(pub.Publish(c, "nobody", "x")), nil, int64(0))
	for name, s := range map[string]*redis.PubSub{"n2 SUBSCRIBE news": sub2, "n3 PSUBSCRIBE new*": sub3} {
		for i := range msgs {
			m, err := s.ReceiveMessage(c)
			if err != nil {
				t.Fatalf("%s: message %d: %v", name, i, err)
			}
			if m.Channel != "news" || m.Payload != strconv.Itoa(i) {
				t.Fatalf("%s: message %d is %q on %q", name, i, m.Payload, m.Channel)
			}
		}
	}
	if m, err := shard.ReceiveMessage(c); err != nil || m.Payload != "o1" {
		t.Fatalf("SSUBSCRIBE orders on n2: %v, %v", m, err)
	}
	expect(t, "PUBSUB NUMSUB news on n2", must(nodes[1].Redis().PubSubNumSub(c, "news")), nil, map[string]int64{"news": 1})

	// n3 pauses, then dies: the publisher carries on, waiting at most
	// its bound on a node that does not answer, and the subscribers on n2
	// still get everything.
	nodes[2].Signal(syscall.SIGSTOP)
	var paused time.Duration
	for i := range 5 {
		start := time.Now()
		if err := pub.Publish(c, "news", "paused-"+strconv.Itoa(i)).Err(); err != nil {
			t.Fatalf("PUBLISH with n3 paused: %v", err)
		}
		paused = max(paused, time.Since(start))
		if m, err := sub2.ReceiveMessage(c); err != nil || m.Payload != "paused-"+strconv.Itoa(i) {
			t.Fatalf("n2 with n3 paused: %v, %v", m, err)
		}
	}
	nodes[2].Signal(syscall.SIGCONT)
	got := 0
	for {
		short, cancel := context.WithTimeout(c, 2*time.Second)
		m, err := sub3.ReceiveMessage(short)
		cancel()
		if err != nil {
			break
		}
		if !strings.HasPrefix(m.Payload, "paused-") {
			t.Fatalf("n3 after its pause got %q", m.Payload)
		}
		got++
	}
	t.Logf("n3's subscriber got %d of the 5 messages published while it was paused (at most once)", got)
	nodes[2].Kill()
	var slowest time.Duration
	for i := range 50 {
		start := time.Now()
		if err := pub.Publish(c, "news", "down-"+strconv.Itoa(i)).Err(); err != nil {
			t.Fatalf("PUBLISH with n3 down: %v", err)
		}
		slowest = max(slowest, time.Since(start))
		m, err := sub2.ReceiveMessage(c)
		if err != nil || m.Payload != "down-"+strconv.Itoa(i) {
			t.Fatalf("n2 with n3 down: %v, %v", m, err)
		}
	}
	nodes[2].Start()
	again := nodes[2].Redis().Subscribe(c, "news")
	defer again.Close()
	if _, err := again.Receive(c); err != nil {
		t.Fatal(err)
	}
	// n1 may still count n3 as dead for a moment: publish until it is back.
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := pub.Publish(c, "news", "back").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUBLISH after n3's restart reaches %d subscribers, want 2", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m, err := again.ReceiveMessage(c); err != nil || m.Payload != "back" {
		t.Fatalf("the new subscriber on n3: %v, %v", m, err)
	}
	t.Logf("%d messages in order on two nodes; slowest PUBLISH with n3 paused: %v, killed: %v", 2*msgs, paused, slowest)
}

// TestSlowSubscriberCutOff: a subscriber that never reads is disconnected
// once what is queued for it passes the pubsub output limit (32 MB), and
// publishers never wait on it.
func TestSlowSubscriberCutOff(t *testing.T) {
	nodes := StartCluster(t, 2, "")
	lazy := dialRaw(t, nodes[1].Client)
	lazy.cmd("SUBSCRIBE", "flood")
	if got := lazy.reply(); got != "[subscribe flood :1]" {
		t.Fatalf("SUBSCRIBE: %s", got)
	}
	_ = lazy.c.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096)
	c := ctx(t)
	pub := nodes[0].Redis()
	payload := strings.Repeat("x", 1<<20)
	published := 0
	for published < 200 {
		n, err := pub.Publish(c, "flood", payload).Result()
		if err != nil {
			t.Fatal(err)
		}
		published++
		if n == 0 {
			break // the subscriber is gone
		}
	}
	if published >= 200 {
		t.Fatalf("a subscriber that reads nothing still receives after %d MB", published)
	}
	numsub, err := nodes[1].Redis().PubSubNumSub(c, "flood").Result()
	if err != nil || numsub["flood"] != 0 {
		t.Fatalf("PUBSUB NUMSUB flood = %v, %v after the cut", numsub, err)
	}
	t.Logf("the non-reading subscriber was cut off after %d messages of 1 MB", published)
}

// resp3Script asks for RESP3 and reads the replies whose shape changes:
// nulls, maps, sets, verbatim text, pushes, and the way back to RESP2.
func resp3Script(t *testing.T, rc, pub *rawConn) []string {
	var out []string
	do := func(rc *rawConn, n int, args ...string) {
		rc.cmd(args...)
		out = append(out, strings.Join(args, " ")+" ->")
		for range n {
			out = append(out, rc.reply())
		}
	}
	// hello renders HELLO's reply without the version and the id, which
	// are the server's own.
	hello := func(proto string) {
		rc.cmd("HELLO", proto)
		h := rc.reply()
		fields := strings.Fields(h[1 : len(h)-1])
		for i := 3; i < len(fields); i += 2 {
			if fields[i-1] == "version" || fields[i-1] == "id" {
				fields[i] = "?"
			}
		}
		out = append(out, "HELLO "+proto+" -> "+h[:1]+strings.Join(fields, " "))
	}
	hello("3")
	do(rc, 1, "SET", "r3", "v")
	do(rc, 1, "GET", "missing")
	do(rc, 1, "MGET", "r3", "missing")
	do(rc, 1, "CONFIG", "GET", "slowlog-max-len")
	do(rc, 1, "COMMAND", "INFO", "nosuchcommand")
	do(rc, 1, "INFO", "server")
	do(rc, 1, "CLIENT", "INFO")
	do(rc, 1, "SET", "l1", "ohmytext")
	do(rc, 1, "SET", "l2", "mynewtext")
	do(rc, 1, "LCS", "l1", "l2", "IDX", "MINMATCHLEN", "4")
	do(rc, 1, "SUBSCRIBE", "ch")
	do(rc, 1, "GET", "r3") // RESP3 clients may run any command while subscribed
	do(rc, 1, "PING")
	do(pub, 1, "PUBLISH", "ch", "hi")
	out = append(out, rc.reply())
	do(rc, 1, "PSUBSCRIBE", "c*")
	do(pub, 1, "PUBLISH", "ch", "twice")
	out = append(out, rc.reply(), rc.reply())
	do(rc, 1, "PUBSUB", "NUMSUB", "ch")
	do(rc, 1, "UNSUBSCRIBE", "ch")
	do(rc, 1, "PUNSUBSCRIBE", "c*")
	hello("2")
	do(rc, 1, "GET", "missing")
	hello("3")
	do(rc, 1, "RESET")
	do(rc, 1, "GET", "missing")
	do(rc, 1, "HELLO", "4")
	return out
}

// TestRESP3LikeRedis: after HELLO 3 every reply whose RESP3 shape differs
// comes in that shape, as redis-server sends it; HELLO 2 and RESET go
// back to RESP2.
func TestRESP3LikeRedis(t *testing.T) {
	t.Logf("%d RESP3 replies and pushes the same as redis-server's", likeRedis(t, 2, resp3Script))
}

// likeRedis runs script against a real redis-server and against a
// cluster of n nodes, its two connections to the first and the last
// node, requires the same transcripts and returns their length.
func likeRedis(t *testing.T, n int, script func(t *testing.T, a, b *rawConn) []string) int {
	real := startRedisServer(t)
	nodes := StartCluster(t, n, "")
	addr := real.Options().Addr
	want := script(t, dialRaw(t, addr), dialRaw(t, addr))
	got := script(t, dialRaw(t, nodes[0].Client), dialRaw(t, nodes[n-1].Client))
	sameTranscript(t, want, got)
	return len(want)
}

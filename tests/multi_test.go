package tests

import (
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// multiScript ports the cases of Redis's tests/unit/multi.tcl that apply
// (no lists, SWAPDB, DEBUG or replication stream), its list cases on
// hashes and sets, with more of those inside transactions and under
// WATCH: r runs the transactions, other is another client (on another
// node for dynakv) that touches watched keys. The transcript is compared
// with redis-server's.
func multiScript(t *testing.T, r, other *rawConn) []string {
	var out []string
	do := func(rc *rawConn, args ...string) {
		rc.cmd(args...)
		out = append(out, strings.Join(args, " ")+" -> "+rc.reply())
	}
	tx := func(rc *rawConn, cmds ...[]string) {
		do(rc, "MULTI")
		for _, c := range cmds {
			do(rc, c...)
		}
		do(rc, "EXEC")
	}
	ping := []string{"PING"}
	do(r, "FLUSHALL")
	// MULTI / EXEC basics, DISCARD, nesting, WATCH inside MULTI.
	do(r, "SET", "mykey", "a")
	tx(r, []string{"GET", "mykey"}, ping, []string{"APPEND", "mykey", "b"}, []string{"GET", "mykey"})
	do(r, "MULTI")
	do(r, "DEL", "mykey")
	do(r, "DISCARD")
	do(r, "GET", "mykey")
	do(r, "MULTI")
	do(r, "MULTI")
	do(r, "WATCH", "x")
	do(r, "EXEC")
	do(r, "EXEC")
	do(r, "DISCARD")
	// A command Redis propagates rewritten (SPOP as SREM) still answers
	// in EXEC as itself.
	do(r, "SADD", "myset", "a")
	tx(r, []string{"SPOP", "myset"})
	do(r, "EXISTS", "myset")
	// The basics and DISCARD of the suite, on a hash and a set for its
	// list: their replies are in a defined order (HMGET, SMISMEMBER).
	do(r, "HSET", "{m}h", "a", "1", "b", "2", "c", "3")
	do(r, "SADD", "{m}s", "a", "b", "c")
	tx(r, []string{"HMGET", "{m}h", "a", "b", "c", "nosuch"}, []string{"SMISMEMBER", "{m}s", "a", "b", "c", "nosuch"}, ping)
	do(r, "MULTI")
	do(r, "DEL", "{m}h", "{m}s")
	do(r, "DISCARD")
	do(r, "HLEN", "{m}h")
	do(r, "SCARD", "{m}s")
	// A transaction reads its own writes to hashes and sets, and another
	// node reads them after EXEC.
	tx(r, []string{"HSET", "{m}h", "d", "4"}, []string{"HINCRBY", "{m}h", "a", "10"}, []string{"HGET", "{m}h", "a"},
		[]string{"HLEN", "{m}h"}, []string{"HEXISTS", "{m}h", "d"}, []string{"HDEL", "{m}h", "b", "nosuch"},
		[]string{"HSETNX", "{m}h", "b", "x"}, []string{"HSETNX", "{m}h", "b", "y"}, []string{"HMGET", "{m}h", "a", "b", "c", "d"},
		[]string{"HINCRBYFLOAT", "{m}h", "c", "1.5"}, []string{"HSTRLEN", "{m}h", "c"})
	tx(r, []string{"SADD", "{m}s", "d", "e"}, []string{"SREM", "{m}s", "a", "nosuch"}, []string{"SCARD", "{m}s"},
		[]string{"SMOVE", "{m}s", "{m}t", "b"}, []string{"SMOVE", "{m}s", "{m}t", "nosuch"}, []string{"SISMEMBER", "{m}t", "b"},
		[]string{"SMISMEMBER", "{m}s", "a", "b", "c", "d", "e"}, []string{"SADD", "{m}t", "c", "d"},
		[]string{"SINTERSTORE", "{m}i", "{m}s", "{m}t"}, []string{"SUNIONSTORE", "{m}u", "{m}s", "{m}t"},
		[]string{"SDIFFSTORE", "{m}d", "{m}s", "{m}t"}, []string{"SCARD", "{m}i"}, []string{"SCARD", "{m}u"},
		[]string{"SMISMEMBER", "{m}d", "c", "d", "e"}, []string{"SINTERCARD", "2", "{m}s", "{m}t"})
	do(other, "HMGET", "{m}h", "a", "b", "c", "d")
	do(other, "SMISMEMBER", "{m}i", "b", "c", "d", "e")
	do(other, "SCARD", "{m}u")
	// Moves and stores within one key, random replies that a set or hash
	// of one element makes certain, a store that empties its destination.
	do(r, "DEL", "{m}s", "{m}h", "{m}d")
	do(r, "SADD", "{m}s", "a")
	do(r, "HSET", "{m}h", "f", "v")
	do(r, "SADD", "{m}d", "x")
	tx(r, []string{"SMOVE", "{m}s", "{m}s", "a"}, []string{"SMOVE", "{m}s", "{m}s", "b"}, []string{"SRANDMEMBER", "{m}s", "-3"},
		[]string{"HRANDFIELD", "{m}h", "-2", "WITHVALUES"}, []string{"SDIFFSTORE", "{m}d", "{m}nosuch", "{m}s"},
		[]string{"EXISTS", "{m}d"}, []string{"SINTERSTORE", "{m}s", "{m}s", "{m}s"}, []string{"SPOP", "{m}s", "5"},
		[]string{"SPOP", "{m}s"}, []string{"SCARD", "{m}s"}, []string{"HGETALL", "{m}h"}, []string{"HDEL", "{m}h", "f"},
		[]string{"EXISTS", "{m}h"}, []string{"HGETALL", "{m}h"}, []string{"SMEMBERS", "{m}nosuch"})
	do(other, "EXISTS", "{m}s", "{m}h", "{m}d")
	// EXEC fails if there are errors while queueing commands; the MULTI
	// state is cleared afterwards.
	do(r, "DEL", "foo1{t}", "foo2{t}")
	do(r, "MULTI")
	do(r, "SET", "foo1{t}", "bar1")
	do(r, "NON-EXISTING-COMMAND")
	do(r, "SET", "foo2{t}", "bar2")
	do(r, "EXEC")
	do(r, "EXISTS", "foo1{t}", "foo2{t}")
	do(r, "MULTI")
	do(r, "GET")
	do(r, "EXEC")
	do(r, "PING")
	// A runtime error inside EXEC answers in place; the rest runs.
	tx(r, []string{"SET", "n{t}", "1"}, []string{"INCR", "n{t}"}, []string{"SET", "n{t}", "x"}, []string{"INCR", "n{t}"}, []string{"GET", "n{t}"})
	// A hash or set command of the wrong arity aborts the transaction;
	// one against the wrong type, or with a bad argument, answers in place.
	do(r, "HSET", "{m}h", "a", "1")
	do(r, "MULTI")
	do(r, "HSET", "{m}h", "b", "2")
	do(r, "HSET", "{m}h", "c")
	do(r, "SADD", "{m}s")
	do(r, "SADD", "{m}s", "a")
	do(r, "EXEC")
	do(r, "HEXISTS", "{m}h", "b")
	do(r, "EXISTS", "{m}s")
	do(r, "SADD", "{m}s", "a")
	tx(r, []string{"SET", "{m}str", "x"}, []string{"SADD", "{m}str", "a"}, []string{"HSET", "{m}s", "f", "v"},
		[]string{"HGET", "{m}s", "f"}, []string{"SCARD", "{m}h"}, []string{"SMOVE", "{m}h", "{m}t", "a"},
		[]string{"SMOVE", "{m}s", "{m}h", "a"}, []string{"SINTERSTORE", "{m}x", "{m}s", "{m}h"},
		[]string{"HSET", "{m}h", "b", "x"}, []string{"HINCRBY", "{m}h", "b", "1"}, []string{"HINCRBY", "{m}h", "a", "notanumber"},
		[]string{"HINCRBY", "{m}h", "a", "9223372036854775807"}, []string{"HINCRBYFLOAT", "{m}h", "a", "nan"},
		[]string{"SINTERCARD", "0", "{m}s"}, []string{"SINTERCARD", "1", "{m}s", "LIMIT", "-1"},
		[]string{"SADD", "{m}s", "e"}, []string{"HGET", "{m}h", "a"}, []string{"SCARD", "{m}s"})
	do(r, "EXISTS", "{m}x")
	do(other, "TYPE", "{m}str")
	// WATCH: not modified, modified (1 of 1, 1 of 5), by another client,
	// after EXEC no longer watched, UNWATCH, FLUSHALL, EXPIRE, DISCARD.
	do(r, "WATCH", "x{t}", "y{t}", "z{t}")
	do(r, "WATCH", "k{t}")
	tx(r, ping)
	do(r, "SET", "x", "30")
	do(r, "WATCH", "x")
	do(r, "SET", "x", "40")
	tx(r, ping)
	do(r, "SET", "x{t}", "30")
	do(r, "WATCH", "a{t}", "b{t}", "x{t}", "k{t}", "z{t}")
	do(other, "SET", "x{t}", "40")
	tx(r, ping)
	do(r, "SET", "x", "30")
	do(r, "WATCH", "x")
	tx(r, ping)
	do(r, "SET", "x", "40")
	tx(r, ping)
	do(r, "WATCH", "x")
	do(other, "SET", "x", "50")
	do(r, "UNWATCH")
	tx(r, ping)
	do(r, "UNWATCH")
	do(r, "WATCH", "x")
	do(other, "FLUSHALL")
	tx(r, ping)
	do(r, "DEL", "x")
	do(r, "WATCH", "x")
	do(other, "FLUSHALL")
	tx(r, ping)
	do(r, "SET", "x", "foo")
	do(r, "WATCH", "x")
	do(other, "EXPIRE", "x", "10")
	tx(r, ping)
	do(r, "WATCH", "x")
	do(other, "SET", "x", "10")
	do(r, "MULTI")
	do(r, "DISCARD")
	tx(r, []string{"INCR", "x"})
	do(r, "WATCH", "gone")
	do(other, "SET", "gone", "1")
	do(other, "DEL", "gone")
	tx(r, ping)
	// WATCH of hashes and sets: creating, replacing, expiring or
	// emptying one touches it, as does a store that leaves it as it was;
	// a write that changes nothing (a member already there or not there,
	// a field already set, a count of 0, an empty result for a missing
	// key) does not. A check-and-set on a hash nobody touched runs.
	// Not ported: SADD of a member already there, which Redis does not
	// count as a touch and dynakv does (it writes the member again, so
	// that a removal made concurrently elsewhere does not take it; the
	// README says so).
	do(r, "DEL", "{m}h", "{m}s", "{m}t")
	do(r, "HSET", "{m}h", "a", "1", "b", "2")
	do(r, "SADD", "{m}s", "x", "y")
	do(r, "SADD", "{m}t", "y")
	for _, c := range [][]string{
		{"{m}new", "SADD", "{m}new", "a"},
		{"{m}newh", "HSET", "{m}newh", "f", "v"},
		{"{m}newn", "HINCRBY", "{m}newn", "n", "1"},
		{"{m}t", "SINTERSTORE", "{m}t", "{m}s", "{m}s"},
		{"{m}t", "SUNIONSTORE", "{m}t", "{m}t"},
		{"{m}t", "EXPIRE", "{m}t", "100"},
		{"{m}new", "SREM", "{m}new", "a"},
		{"{m}newh", "HDEL", "{m}newh", "f"},
		{"{m}newn", "DEL", "{m}newn"},
		{"{m}s", "SREM", "{m}s", "nosuch"},
		{"{m}h", "HDEL", "{m}h", "nosuch"},
		{"{m}h", "HSETNX", "{m}h", "a", "9"},
		{"{m}s", "SPOP", "{m}s", "0"},
		{"{m}s", "SMOVE", "{m}s", "{m}t", "nosuch"},
		{"{m}empty", "SINTERSTORE", "{m}empty", "{m}s", "{m}nosuch"},
		// A member or field written in a hash or set that exists
		// touches it, though its header stays as it was.
		{"{m}s", "SADD", "{m}s", "new"},
		{"{m}s", "SREM", "{m}s", "new"},
		{"{m}h", "HSET", "{m}h", "c", "3"},
		{"{m}h", "HSET", "{m}h", "c", "4"},
		{"{m}h", "HSET", "{m}h", "c", "4"},
		{"{m}h", "HDEL", "{m}h", "c"},
		{"{m}h", "HINCRBY", "{m}h", "a", "0"},
		{"{m}s", "SMOVE", "{m}s", "{m}t", "x"},
		{"{m}s", "SMOVE", "{m}t", "{m}s", "x"},
	} {
		do(r, "WATCH", c[0])
		do(other, c[1:]...)
		tx(r, ping)
	}
	do(r, "WATCH", "{m}h", "{m}s")
	do(r, "HGET", "{m}h", "a")
	tx(r, []string{"HINCRBY", "{m}h", "a", "1"}, []string{"SADD", "{m}s", "z"})
	do(other, "HGET", "{m}h", "a")
	// RESET leaves the transaction.
	do(r, "MULTI")
	do(r, "SET", "a", "1")
	do(r, "RESET")
	do(r, "EXEC")
	return out
}

// TestMultiLikeRedis runs multi.tcl's cases against a real redis-server
// and a 3-node dynakv cluster, the other client on another node: the
// transcripts must be the same.
func TestMultiLikeRedis(t *testing.T) {
	t.Logf("%d replies the same as redis-server's", likeRedis(t, 3, multiScript))
}

// TestTransactionCrossSlot: a transaction whose writes span two slots is
// refused while queuing and aborts, as in Redis Cluster; reads may span
// slots.
func TestTransactionCrossSlot(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	rc := dialRaw(t, nodes[0].Client)
	for _, step := range []struct{ cmd, want string }{
		{"MULTI", "+OK"},
		{"SET {a}1 x", "+QUEUED"},
		{"GET {b}1", "+QUEUED"},
		{"SET {b}1 y", "-CROSSSLOT Keys in request don't hash to the same slot"},
		{"EXEC", "-EXECABORT Transaction discarded because of previous errors."},
		{"MULTI", "+OK"},
		{"MSET {a}1 x {a}2 y", "+QUEUED"},
		{"GET {b}1", "+QUEUED"},
		{"EXEC", "*2"},
	} {
		rc.cmd(strings.Fields(step.cmd)...)
		if got := rc.line(); got != step.want {
			t.Fatalf("%s: %q, want %q", step.cmd, got, step.want)
		}
	}
}

// TestTransactionsFromGoRedis: go-redis's TxPipelined and Watch with
// retries against a 3-node cluster. Clients on different nodes take turns
// on one counter: an update made between another's WATCH and EXEC makes
// that EXEC fail, and the retry counts it.
func TestTransactionsFromGoRedis(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	a := nodes[0].Redis()
	cmds, err := a.TxPipelined(c, func(p redis.Pipeliner) error {
		p.Set(c, "{tx}k", "v", 0)
		p.Incr(c, "{tx}n")
		p.Get(c, "{tx}k")
		return nil
	})
	if err != nil || len(cmds) != 3 || cmds[2].(*redis.StringCmd).Val() != "v" {
		t.Fatalf("TxPipelined: %v, %v", cmds, err)
	}
	incr := func(rdb *redis.Client, between func()) (retries int) {
		for {
			err := rdb.Watch(c, func(tx *redis.Tx) error {
				n, err := tx.Get(c, "tx:counter").Int()
				if err != nil && err != redis.Nil {
					return err
				}
				between()
				_, err = tx.TxPipelined(c, func(p redis.Pipeliner) error {
					p.Set(c, "tx:counter", n+1, 0)
					return nil
				})
				return err
			}, "tx:counter")
			if err == nil {
				return retries
			}
			if err != redis.TxFailedErr {
				t.Fatal(err)
			}
			retries++
		}
	}
	b := nodes[2].Redis()
	total := 0
	for i := range 20 {
		interfere := func() {}
		if i%2 == 0 {
			// Between this client's read and its EXEC, a client on
			// another node increments the counter, once.
			done := false
			interfere = func() {
				if !done {
					done = true
					incr(b, func() {})
				}
			}
			total++
		}
		total++
		if r := incr(a, interfere); (i%2 == 0) != (r == 1) {
			t.Fatalf("round %d: %d retries", i, r)
		}
	}
	n, err := nodes[1].Redis().Get(c, "tx:counter").Int()
	if err != nil || n != total {
		t.Fatalf("counter = %d, %v; want %d increments", n, err, total)
	}
}

// TestWatchCountersAcrossNodes: four clients on three nodes increment one
// counter with WATCH, GET, MULTI, SET, EXEC and retry when EXEC fails.
// Transactions on a slot run at its leader and take turns there, so no
// increment is lost: the counter ends at the number of successful EXECs.
func TestWatchCountersAcrossNodes(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	const clients, each = 4, 50
	var wg sync.WaitGroup
	var retries atomic.Int64
	for i := range clients {
		rdb := nodes[i%len(nodes)].Redis()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				for {
					err := rdb.Watch(c, func(tx *redis.Tx) error {
						n, err := tx.Get(c, "watched").Int()
						if err != nil && err != redis.Nil {
							return err
						}
						_, err = tx.TxPipelined(c, func(p redis.Pipeliner) error {
							p.Set(c, "watched", n+1, 0)
							return nil
						})
						return err
					}, "watched")
					if err == nil {
						break
					}
					if err != redis.TxFailedErr {
						t.Error(err)
						return
					}
					retries.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	n, err := nodes[2].Redis().Get(c, "watched").Int()
	if err != nil || n != clients*each {
		t.Fatalf("counter = %d, %v after %d successful EXECs: %d increments lost", n, err, clients*each, clients*each-n)
	}
	t.Logf("%d increments from %d clients on %d nodes, none lost; %d EXECs failed and were retried", n, clients, len(nodes), retries.Load())
}

// TestTransactionLeaderPaused: transactions on a slot whose leader is
// paused (SIGSTOP) fail with UNAVAILABLE until gossip declares it down,
// then run at the next primary; when the leader resumes, the transactions
// it received too late do not run. Every INCR that EXEC acknowledged
// counts once, and none that it did not acknowledge counts.
func TestTransactionLeaderPaused(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	const key = "{paused}n"
	leader := byID(nodes, preflist(t, nodes[0], key)[0])
	var client *Node
	for _, n := range nodes {
		if n != leader {
			client = n
		}
	}
	rdb := client.Redis()
	c := ctx(t)
	incr := func() error {
		_, err := rdb.TxPipelined(c, func(p redis.Pipeliner) error {
			p.Incr(c, key)
			return nil
		})
		return err
	}
	acked := 0
	for range 10 {
		if err := incr(); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	leader.Signal(syscall.SIGSTOP)
	// Let the signal land: a transaction the leader receives before it
	// stops may run and lose only its reply (UNAVAILABLE: "may still run
	// once"); those it receives stopped must never run.
	time.Sleep(200 * time.Millisecond)
	failed := 0
	start := time.Now()
	for acked < 30 {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no transaction ran in 20 s with the leader paused (%d failed)", failed)
		}
		switch err := incr(); {
		case err == nil:
			acked++
		case strings.HasPrefix(err.Error(), "UNAVAILABLE"):
			failed++
		default:
			t.Fatalf("EXEC with the leader paused: %v", err)
		}
	}
	t.Logf("leader %s paused: %d EXECs failed with UNAVAILABLE, then 20 ran in %v", leader.ID, failed, time.Since(start).Round(time.Millisecond))
	leader.Signal(syscall.SIGCONT)
	time.Sleep(2 * time.Second) // what the leader had queued runs now, or is refused as late
	for _, n := range nodes {
		got, err := n.Redis().Get(c, key).Int()
		if err != nil || got != acked {
			t.Fatalf("%s reads %d, %v; %d transactions acknowledged, %d failed", n.ID, got, err, acked, failed)
		}
	}
}

package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestClusterPipelines: a pipeline through one node of a 3-node cluster
// answers as if its commands ran one after another (blind writes are
// applied in line and their quorums waited for together, the rest run on
// workers), and a pipeline whose writes cannot reach W replicas answers
// each of them UNAVAILABLE rather than OK.
func TestClusterPipelines(t *testing.T) {
	nodes := StartCluster(t, 3, "")
	c := ctx(t)
	n1 := nodes[0].Redis()

	type step struct {
		args []any
		want string // the reply as fmt prints go-redis's value, or "nil"
	}
	steps := []step{
		{[]any{"SET", "a", "1"}, "OK"},
		{[]any{"GET", "a"}, "1"},
		{[]any{"SETNX", "a", "2"}, "0"},
		{[]any{"SET", "a", "3"}, "OK"},
		{[]any{"GET", "a"}, "3"},
		{[]any{"INCR", "n"}, "1"},
		{[]any{"SET", "b", "x"}, "OK"},
		{[]any{"APPEND", "b", "y"}, "2"},
		{[]any{"GET", "b"}, "xy"},
		{[]any{"DEL", "a"}, "1"},
		{[]any{"GET", "a"}, "nil"},
		{[]any{"SET", "a", "4", "GET"}, "nil"},
		{[]any{"SET", "a", "5"}, "OK"},
		{[]any{"INCR", "n"}, "2"},
		{[]any{"GET", "a"}, "5"},
	}
	for i := range 40 {
		steps = append(steps, step{[]any{"SET", fmt.Sprintf("p%d", i), fmt.Sprint(i)}, "OK"})
	}
	pipe := n1.Pipeline()
	cmds := make([]*redis.Cmd, len(steps))
	for i, s := range steps {
		cmds[i] = pipe.Do(c, s.args...)
	}
	_, _ = pipe.Exec(c)
	for i, s := range steps {
		v, err := cmds[i].Result()
		got := fmt.Sprint(v)
		if err == redis.Nil {
			got = "nil"
		} else if err != nil {
			got = "error " + err.Error()
		}
		if got != s.want {
			t.Fatalf("command %d %v answered %s, want %s", i, s.args, got, s.want)
		}
	}
	// Every write is on a quorum: each other node reads it at R=2.
	for _, n := range nodes[1:] {
		for i := range 40 {
			key := fmt.Sprintf("p%d", i)
			if v, err := n.Redis().Get(c, key).Result(); err != nil || v != fmt.Sprint(i) {
				t.Fatalf("GET %s via %s = %q, %v", key, n.ID, v, err)
			}
		}
	}

	// The other two nodes gone: no write can reach W=2.
	nodes[1].Kill()
	nodes[2].Kill()
	pipe = n1.Pipeline()
	sets := make([]*redis.StatusCmd, 10)
	for i := range sets {
		sets[i] = pipe.Set(c, fmt.Sprintf("lost%d", i), "v", 0)
	}
	_, _ = pipe.Exec(c)
	for i, s := range sets {
		if err := s.Err(); err == nil || !strings.HasPrefix(err.Error(), "UNAVAILABLE") {
			t.Fatalf("SET %d with both replicas down answered %v, want UNAVAILABLE", i, err)
		}
	}
}

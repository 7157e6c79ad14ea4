package coord

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestDeferredQuorum: with its quorum deferred a blind write is applied and sent
// at once and its quorum is waited for later; a write that must read
// first, a read, and a write this node must forward are refused before
// they do anything.
func TestDeferredQuorum(t *testing.T) {
	tc := newTestCluster(t, 4, 5, 3, 2, 2, 300*time.Millisecond)
	var q Quorums
	key := "deferred"
	p := tc.primaries(key)
	ctx, pl := context.Background(), &Pipelined{Quorums: &q}
	c := tc.nodes[p[0]].coord

	if _, err := c.WriteIn(ctx, pl, []byte(key), Op{Kind: Put, Value: []byte("v1")}); err != nil {
		t.Fatalf("deferred SET: %v", err)
	}
	if q.Blocked() || q.Len() != 1 {
		t.Fatalf("deferred SET: blocked %v, %d waiting; want a quorum to wait for", q.Blocked(), q.Len())
	}
	if got := tc.local(p[0], key); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("the coordinator holds %v before the wait, want [v1]", got)
	}
	if errs := q.Wait(context.Background()); len(errs) != 1 || errs[0] != nil {
		t.Fatalf("Wait: %v", errs)
	}
	acked := 0
	for _, n := range p {
		if slices.Equal(tc.local(n, key), []string{"v1"}) {
			acked++
		}
	}
	if acked < 2 {
		t.Fatalf("after Wait the write is on %d replicas, want W=2", acked)
	}

	refused := map[string]func() error{
		"SET NX": func() error {
			_, err := c.WriteIn(ctx, pl, []byte(key), Op{Kind: Put, Value: []byte("nx"), Cond: IfAbsent})
			return err
		},
		"INCR": func() error {
			_, err := c.WriteIn(ctx, pl, []byte("n"), Op{Kind: Incr, Delta: 1})
			return err
		},
		"GET": func() error {
			_, err := c.GetIn(ctx, pl, []byte(key), 0)
			return err
		},
		"forwarded SET": func() error {
			_, err := tc.nodes[tc.outsider(key)].coord.WriteIn(ctx, pl, []byte(key), Op{Kind: Put, Value: []byte("fw")})
			return err
		},
	}
	for name, run := range refused {
		if err := run(); !errors.Is(err, ErrWouldBlock) || !q.Blocked() {
			t.Fatalf("%s with its quorum deferred: %v, blocked noted %v; want ErrWouldBlock", name, err, q.Blocked())
		}
		if q.Len() != 0 {
			t.Fatalf("%s left a quorum to wait for", name)
		}
	}
	if q.Blocked() {
		t.Fatal("Blocked did not forget")
	}
	for _, n := range tc.ids {
		if got := tc.local(n, key); len(got) > 0 && !slices.Equal(got, []string{"v1"}) {
			t.Fatalf("%s holds %v: a refused write was applied", n, got)
		}
		if got := tc.local(n, "n"); len(got) != 0 {
			t.Fatalf("%s holds %v for n: a refused INCR was applied", n, got)
		}
	}

	// Cut off from every other node, fallbacks included: the write is
	// applied here and its quorum fails at the wait.
	var others []string
	for _, n := range tc.ids {
		if n != p[0] {
			others = append(others, n)
		}
	}
	tc.net.Partition([]string{p[0]}, others)
	if _, err := c.WriteIn(ctx, pl, []byte(key), Op{Kind: Put, Value: []byte("v2")}); err != nil {
		t.Fatalf("deferred SET with the replicas cut off: %v (the failure belongs to Wait)", err)
	}
	if errs := q.Wait(context.Background()); len(errs) != 1 || !errors.Is(errs[0], ErrUnavailable) {
		t.Fatalf("Wait with the replicas cut off: %v, want ErrUnavailable", errs)
	}
}

// TestPrefetch: a GetIn with a read started ahead takes its answer
// once, for its key at the configured R only; anything else reads afresh.
func TestPrefetch(t *testing.T) {
	tc := newTestCluster(t, 5, 3, 3, 2, 2, 300*time.Millisecond)
	key := "pre"
	p := tc.primaries(key)
	c := tc.nodes[p[0]].coord
	if _, err := tc.put(p[0], key, "v1", Op{}); err != nil {
		t.Fatal(err)
	}
	rd := c.Prefetch(context.Background(), []byte(key))
	eventually(t, "the prefetched read to finish", func() bool {
		rd.g.mu.Lock()
		defer rd.g.mu.Unlock()
		return rd.g.closed
	})
	// Written after the read: the prefetched answer predates it.
	if _, err := tc.put(p[0], key, "v2", Op{}); err != nil {
		t.Fatal(err)
	}
	pl := &Pipelined{Read: rd}
	value := func(k string, r int) string {
		t.Helper()
		o, err := c.GetIn(context.Background(), pl, []byte(k), r)
		if err != nil {
			t.Fatalf("Get %s R=%d: %v", k, r, err)
		}
		v, _ := o.Resolve(time.Now().UnixMilli())
		return string(v.Bytes)
	}
	if got := value(key, 3); got != "v2" {
		t.Fatalf("Get at R=3 with the read started ahead read %q, want a fresh read (v2)", got)
	}
	if got := value("other", 0); got != "" {
		t.Fatalf("Get of another key with the read started ahead read %q", got)
	}
	if got := value(key, 0); got != "v1" {
		t.Fatalf("Get with the read started ahead read %q, want the prefetched answer (v1)", got)
	}
	if got := value(key, 0); got != "v2" {
		t.Fatalf("second Get with the read started ahead read %q, want a fresh read (v2)", got)
	}
}

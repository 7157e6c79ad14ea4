package tests

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// cartLoad is the shopping-cart workload: clients add unique items to shared
// carts with DGET -> union of siblings -> add -> DPUT(context), through
// every node, and remember every add that was acknowledged.
type cartLoad struct {
	t     *testing.T
	carts int

	mu          sync.Mutex
	nodes       []*Node             // the nodes clients go through; may change
	acked       map[string][]string // cart -> acknowledged items
	via         map[string]int      // node id -> adds acknowledged through it
	maxSiblings int
	attempts    atomic.Int64
	errs        sync.Map // error text -> *atomic.Int64
}

func newCartLoad(t *testing.T, nodes []*Node, carts int) *cartLoad {
	return &cartLoad{t: t, nodes: nodes, carts: carts, acked: map[string][]string{}, via: map[string]int{}}
}

// setNodes changes the nodes clients go through.
func (cl *cartLoad) setNodes(nodes []*Node) {
	cl.mu.Lock()
	cl.nodes = nodes
	cl.mu.Unlock()
}

func (cl *cartLoad) node(i int) *Node {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.nodes[i%len(cl.nodes)]
}

func cartKey(i int) string { return fmt.Sprintf("cart:%d", i) }

// items parses a cart's siblings into the union of their items.
func items(siblings []any) []string {
	var out []string
	for _, s := range siblings {
		for _, it := range strings.Split(fmt.Sprint(s), ",") {
			if it != "" && !slices.Contains(out, it) {
				out = append(out, it)
			}
		}
	}
	slices.Sort(out)
	return out
}

// dget runs DGET and returns the context and siblings.
func dget(ctx context.Context, rdb *redis.Client, key string, r int) (string, []any, error) {
	args := []any{"DGET", key}
	if r > 0 {
		args = append(args, "R", r)
	}
	v, err := rdb.Do(ctx, args...).Slice()
	if err != nil {
		return "", nil, err
	}
	if len(v) != 2 {
		return "", nil, fmt.Errorf("DGET reply %v", v)
	}
	sibs, _ := v[1].([]any)
	return fmt.Sprint(v[0]), sibs, nil
}

// client runs one client's adds until stop is closed or it made max adds
// (0: no limit). Each add goes through the next node in turn.
func (cl *cartLoad) client(id int, stop <-chan struct{}, max int) {
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	for seq := 0; max == 0 || seq < max; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		cart := cartKey(rng.IntN(cl.carts))
		item := fmt.Sprintf("c%d-%d", id, seq)
		node := cl.node(id + seq)
		cl.attempts.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cl.add(ctx, node.Redis(), cart, item)
		cancel()
		if err != nil {
			cl.countErr(err)
			continue
		}
		cl.mu.Lock()
		cl.acked[cart] = append(cl.acked[cart], item)
		cl.via[node.ID]++
		cl.mu.Unlock()
	}
}

func (cl *cartLoad) add(ctx context.Context, rdb *redis.Client, cart, item string) error {
	c, sibs, err := dget(ctx, rdb, cart, 0)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	cl.maxSiblings = max(cl.maxSiblings, len(sibs))
	cl.mu.Unlock()
	next := append(items(sibs), item)
	return rdb.Do(ctx, "DPUT", cart, c, strings.Join(next, ",")).Err()
}

func (cl *cartLoad) countErr(err error) {
	v, _ := cl.errs.LoadOrStore(errKind(err), new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// errKind names the kind of a client error, for the test's figures.
func errKind(err error) string {
	text := err.Error()
	switch {
	case errIs(err, "UNAVAILABLE"):
		return "UNAVAILABLE"
	case strings.Contains(text, "connection refused"):
		return "refused (node down)"
	case strings.Contains(text, "timeout"), strings.Contains(text, "deadline exceeded"):
		return "timeout (node paused)"
	case strings.Contains(text, "EOF"), strings.Contains(text, "connection reset"), strings.Contains(text, "broken pipe"):
		return "connection lost (node killed)"
	}
	return text
}

// run starts clients that each make adds adds (0: until stop), and returns
// a function that waits for them.
func (cl *cartLoad) run(clients, adds int, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.client(id, stop, adds)
		}()
	}
	return wg.Wait
}

// errorSummary returns the errors clients met, by kind.
func (cl *cartLoad) errorSummary() map[string]int64 {
	out := map[string]int64{}
	cl.errs.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// ackedCount returns how many adds were acknowledged.
func (cl *cartLoad) ackedCount() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	n := 0
	for _, its := range cl.acked {
		n += len(its)
	}
	return n
}

// ackedVia returns how many adds were acknowledged through the nodes.
func (cl *cartLoad) ackedVia(nodes []*Node) int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	n := 0
	for _, node := range nodes {
		n += cl.via[node.ID]
	}
	return n
}

// lost reads every cart through node with quorum r and returns the
// acknowledged items missing from it.
func (cl *cartLoad) lost(node *Node, r int) ([]string, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var missing []string
	for i := range cl.carts {
		cart := cartKey(i)
		_, sibs, err := dget(context.Background(), node.Redis(), cart, r)
		if err != nil {
			return nil, fmt.Errorf("reading %s through %s: %w", cart, node.ID, err)
		}
		have := items(sibs)
		for _, it := range cl.acked[cart] {
			if _, found := slices.BinarySearch(have, it); !found {
				missing = append(missing, cart+"/"+it)
			}
		}
	}
	return missing, nil
}

// verify requires every acknowledged add in every cart, read through every
// given node, and logs the workload's figures.
func (cl *cartLoad) verify(nodes []*Node, r int) {
	cl.t.Helper()
	for _, n := range nodes {
		missing, err := cl.lost(n, r)
		for try := 0; err != nil && try < 5; try++ {
			// A read at a high R can miss its quorum on a loaded machine (a
			// dial timing out); what is checked is loss, so read again.
			time.Sleep(time.Second)
			missing, err = cl.lost(n, r)
		}
		if err != nil {
			cl.t.Fatal(err)
		}
		if len(missing) > 0 {
			cl.explain(nodes, missing[0])
			cl.t.Fatalf("read through %s: %d acknowledged adds lost, e.g. %v", n.ID, len(missing), missing[:min(5, len(missing))])
		}
	}
	cl.t.Logf("cart: %d attempts, %d acknowledged adds, 0 lost, largest sibling count %d, errors %v",
		cl.attempts.Load(), cl.ackedCount(), cl.maxSiblings, cl.errorSummary())
}

// explain logs what each node's replica holds of a lost add's cart, read
// alone on its peer port: which copies hold the item, under which clock.
func (cl *cartLoad) explain(nodes []*Node, lost string) {
	cart, item, _ := strings.Cut(lost, "/")
	for _, n := range nodes {
		o := peerRead(cl.t, n, cart)
		var dots []string
		for _, s := range o.Siblings {
			dots = append(dots, fmt.Sprintf("%s:%d", s.Dot.Actor, s.Dot.Counter))
		}
		_, has := slices.BinarySearch(itemsOf(o), item)
		cl.t.Logf("%s holds %s: has %s %v, clock %v, sibling dots %v", n.ID, cart, item, has, o.Clock, dots)
		c, sibs, err := dget(context.Background(), n.Redis(), cart, 3)
		pl, _ := n.Redis().Do(context.Background(), "DYN.PREFLIST", cart).Slice()
		cl.t.Logf("%s reads %s with R 3: %d items, context %q, err %v; its preference list %v", n.ID, cart, len(items(sibs)), c, err, pl)
	}
}

// errIs reports whether a client error is a RESP error with prefix.
func errIs(err error, prefix string) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), prefix)
}

package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// firewall cuts links between nodes with iptables rules in a chain of its
// own, hooked into OUTPUT (loopback traffic passes OUTPUT once per
// packet). Rules name only the nodes' own loopback addresses, so clients
// on 127.0.0.1 keep reaching every node.
type firewall struct {
	t     *testing.T
	bin   string
	chain string
}

func newFirewall(t *testing.T) *firewall {
	t.Helper()
	bin := needTool(t, "iptables")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("firewall tests need root in CI")
		}
		t.Skip("firewall tests need root")
	}
	f := &firewall{t: t, bin: bin, chain: fmt.Sprintf("DYNAKV-%d", os.Getpid())}
	f.run("-N", f.chain)
	f.run("-I", "OUTPUT", "-j", f.chain)
	t.Cleanup(func() {
		_ = exec.Command(bin, "-D", "OUTPUT", "-j", f.chain).Run()
		_ = exec.Command(bin, "-F", f.chain).Run()
		_ = exec.Command(bin, "-X", f.chain).Run()
	})
	return f
}

func (f *firewall) run(args ...string) {
	f.t.Helper()
	if out, err := exec.Command(f.bin, append([]string{"-w"}, args...)...).CombinedOutput(); err != nil {
		f.t.Fatalf("iptables %v: %v\n%s", args, err, out)
	}
}

// cut drops every packet from the nodes of a to the nodes of b.
func (f *firewall) cut(a, b []*Node) {
	for _, x := range a {
		for _, y := range b {
			f.run("-A", f.chain, "-s", hostOf(x), "-d", hostOf(y), "-j", "DROP")
		}
	}
}

// split cuts every link between a and b, both ways.
func (f *firewall) split(a, b []*Node) {
	f.cut(a, b)
	f.cut(b, a)
}

// heal removes every rule.
func (f *firewall) heal() { f.run("-F", f.chain) }

func hostOf(n *Node) string {
	h, _, _ := net.SplitHostPort(n.Gossip)
	return h
}

// startNetCluster starts size nodes, each on its own loopback address
// 127.0.0.(i+2) for its client, peer and gossip ports.
func startNetCluster(t *testing.T, size int, extra string) []*Node {
	return startNodes(t, size, extra, ownHost)
}

// ownHost moves node i to its own loopback address 127.0.0.(i+2), which
// a firewall rule can name.
func ownHost(i int, n *Node) {
	host := fmt.Sprintf("127.0.0.%d", i+2)
	for _, a := range []*string{&n.Client, &n.Peer, &n.Gossip} {
		_, port, _ := net.SplitHostPort(*a)
		*a = net.JoinHostPort(host, port)
	}
}

// converged reports whether every replica of every cart holds every
// acknowledged item, each replica read alone on its peer port.
func (cl *cartLoad) converged(t *testing.T, nodes []*Node) bool {
	cl.mu.Lock()
	acked := map[string][]string{}
	for k, v := range cl.acked {
		acked[k] = slices.Clone(v)
	}
	cl.mu.Unlock()
	c := ctx(t)
	for i := range cl.carts {
		cart := cartKey(i)
		v, err := nodes[0].Redis().Do(c, "DYN.PREFLIST", cart).Slice()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range v {
			have := itemsOf(peerRead(t, byID(nodes, e.([]any)[0].(string)), cart))
			for _, it := range acked[cart] {
				if _, ok := slices.BinarySearch(have, it); !ok {
					return false
				}
			}
		}
	}
	return true
}

// TestNetworkPartitions runs the shopping cart through real network
// faults made with iptables between five nodes on their own loopback
// addresses: a minority cut off, a majority/minority split with clients
// writing on both sides, a one-way partition and a flapping link. After
// each heals, the replicas converge by hints and anti-entropy: every
// acknowledged add is on every replica, and the next add merges the
// siblings.
func TestNetworkPartitions(t *testing.T) {
	fw := newFirewall(t)
	nodes := startNetCluster(t, 5, "[antientropy]\ninterval = \"2s\"\n")
	n := func(ids ...int) []*Node {
		var out []*Node
		for _, i := range ids {
			out = append(out, nodes[i-1])
		}
		return out
	}
	// A fault starts when called and has made its last change once the
	// function it returns does.
	scenarios := []struct {
		name  string
		fault func(stop <-chan struct{}) (settled func())
	}{
		{"minority cut off", func(<-chan struct{}) func() { fw.split(n(5), n(1, 2, 3, 4)); return func() {} }},
		{"majority/minority split", func(<-chan struct{}) func() { fw.split(n(1, 2, 3), n(4, 5)); return func() {} }},
		{"one-way", func(<-chan struct{}) func() { fw.cut(n(1), n(2, 3)); return func() {} }},
		{"flapping link", func(stop <-chan struct{}) func() {
			done := make(chan struct{})
			go func() {
				defer close(done)
				for cut := true; ; cut = !cut {
					select {
					case <-stop:
						return
					case <-time.After(700 * time.Millisecond):
					}
					if cut {
						fw.split(n(2), n(1, 3, 4, 5))
					} else {
						fw.heal()
					}
				}
			}()
			// A split under way when stop closes goes on adding rules
			// (iptables is slow on a loaded machine): heal after it.
			return func() { <-done }
		}},
	}
	var report []string
	for _, sc := range scenarios {
		load := newCartLoad(t, nodes, 20)
		stop := make(chan struct{})
		wait := load.run(10, 0, stop)
		time.Sleep(time.Second)
		faultStop := make(chan struct{})
		settled := sc.fault(faultStop)
		time.Sleep(8 * time.Second)
		close(faultStop)
		close(stop)
		wait()
		settled()
		fw.heal()
		healed := time.Now()
		deadline := healed.Add(120 * time.Second)
		for !load.converged(t, nodes) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: replicas did not converge within 120 s of healing", sc.name)
			}
			time.Sleep(250 * time.Millisecond)
		}
		took := time.Since(healed)
		load.verify(nodes, 3)
		// The next add, reading every replica, merges whatever siblings the
		// fault left.
		waitHintsDrained(t, nodes, 60*time.Second)
		maxAfter, maxAdds := 0, 0
		for i := range load.carts {
			sibs, adds := mergeCart(t, nodes[i%len(nodes)], nodes[0], cartKey(i))
			maxAfter, maxAdds = max(maxAfter, sibs), max(maxAdds, adds)
		}
		if maxAfter != 1 {
			t.Fatalf("%s: a cart still has %d siblings after %d merging adds", sc.name, maxAfter, maxAdds)
		}
		line := fmt.Sprintf("%-24s acked %5d  lost 0  largest siblings %2d  converged %v after healing  merged in %d add(s)  errors %v",
			sc.name, load.ackedCount(), load.maxSiblings, took.Round(10*time.Millisecond), maxAdds, load.errorSummary())
		report = append(report, line)
		t.Log(line)
	}
	t.Log("\n" + strings.Join(report, "\n"))
}

// mergeAttempts bounds the merging adds mergeCart makes.
const mergeAttempts = 3

// mergeCart makes merging adds to cart through via, each reading every
// replica (R=3) and writing back the union of the siblings under their
// context, until a read through check finds one sibling. It returns the
// siblings that read found and the adds made. One add is enough when its
// read heard from every primary; a primary that misses the read's timeout
// on a loaded machine is stood in for by a fallback (sloppy quorum), whose
// answer lacks that primary's siblings, and those then take another add.
// Errors a loaded machine gives (a quorum not met in time) are retried
// the same way.
func mergeCart(t *testing.T, via, check *Node, cart string) (siblings, adds int) {
	t.Helper()
	c := ctx(t)
	var err error
	for adds = 1; adds <= mergeAttempts; adds++ {
		var cctx string
		var sibs []any
		if cctx, sibs, err = dget(c, via.Redis(), cart, 3); err != nil {
			continue
		}
		if err = via.Redis().Do(c, "DPUT", cart, cctx, strings.Join(append(items(sibs), "merge"), ",")).Err(); err != nil {
			continue
		}
		if _, sibs, err = dget(c, check.Redis(), cart, 3); err != nil {
			continue
		}
		if siblings = len(sibs); siblings == 1 {
			return siblings, adds
		}
	}
	if err != nil {
		t.Fatalf("merging %s: %v", cart, err)
	}
	return siblings, mergeAttempts
}

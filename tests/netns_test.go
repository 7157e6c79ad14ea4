package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netLab is a few hosts on one machine: a network namespace each, joined
// by a bridge in a hub namespace, each with its own address in
// 127.1.0.0/16 on its own interface (loopback addresses, routed between
// namespaces with route_localnet). Pulling a host's cable is setting its
// bridge port down. Everything is made by the test and removed after it;
// the machine's own namespace is not touched.
type netLab struct {
	t      *testing.T
	prefix string
	hosts  []string // namespace names
	addrs  []string // each host's address
}

// newNetLab makes n hosts. It needs root and iproute2.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	needTool(t, "ip")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("network namespace tests need root in CI")
		}
		t.Skip("network namespace tests need root")
	}
	l := &netLab{t: t, prefix: fmt.Sprintf("dk%d", os.Getpid()%100000)}
	hub := l.prefix + "hub"
	t.Cleanup(func() {
		for _, ns := range append(slices.Clone(l.hosts), hub) {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	l.ip("netns", "add", hub)
	l.ip("-n", hub, "link", "add", "br0", "type", "bridge")
	l.ip("-n", hub, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("%sh%d", l.prefix, i+1)
		host, port := fmt.Sprintf("%sh%d", l.prefix, i+1), fmt.Sprintf("%sp%d", l.prefix, i+1)
		addr := fmt.Sprintf("127.1.0.%d", i+1)
		l.ip("netns", "add", ns)
		l.hosts, l.addrs = append(l.hosts, ns), append(l.addrs, addr)
		l.ip("link", "add", host, "netns", ns, "type", "veth", "peer", "name", port, "netns", hub)
		l.ip("-n", hub, "link", "set", port, "master", "br0", "up")
		for _, key := range []string{"all", host} {
			l.run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf."+key+".route_localnet=1")
		}
		l.ip("-n", ns, "link", "set", "lo", "up")
		l.ip("-n", ns, "addr", "add", addr+"/16", "dev", host)
		l.ip("-n", ns, "link", "set", host, "up")
	}
	return l
}

func (l *netLab) ip(args ...string) { l.t.Helper(); l.run("ip", args...) }

func (l *netLab) run(name string, args ...string) {
	l.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// unplug takes host i (0-based) off the bridge; plug puts it back.
func (l *netLab) unplug(i int) {
	l.ip("-n", l.prefix+"hub", "link", "set", fmt.Sprintf("%sp%d", l.prefix, i+1), "down")
}

func (l *netLab) plug(i int) {
	l.ip("-n", l.prefix+"hub", "link", "set", fmt.Sprintf("%sp%d", l.prefix, i+1), "up")
}

// netnsDialer dials from inside the network namespace ns: the socket is
// made on a thread switched into it, then used from anywhere.
func netnsDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("entering %s: %w", ns, err)
		}
		var d net.Dialer
		conn, dialErr := d.DialContext(ctx, network, addr)
		if err := setns(self); err != nil {
			// The thread stays locked, and so ends with its goroutine
			// rather than serving others from the wrong namespace.
			return nil, fmt.Errorf("leaving %s: %w", ns, err)
		}
		runtime.UnlockOSThread()
		return conn, dialErr
	}
}

func setns(f *os.File) error { return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET) }

// TestNetworkNamespaces runs three nodes as three hosts: each in its own
// network namespace with its own address, listening on 0.0.0.0 with the
// same ports as the others and advertising its address. They form a
// cluster that shows and hands out only the advertised addresses,
// replicate, keep serving while one host's cable is pulled, and take it
// back when it is plugged in again, with every acknowledged write on it.
func TestNetworkNamespaces(t *testing.T) {
	lab := newNetLab(t, 3)
	var nodes []*Node
	name := uniqueName(t)
	for i, ns := range lab.hosts {
		n := NewNode(t, fmt.Sprintf("n%d", i+1), "[antientropy]\ninterval = \"2s\"\n")
		n.Netns, n.Bind, n.ClusterName = ns, "0.0.0.0", name
		n.Client = net.JoinHostPort(lab.addrs[i], "6379")
		n.Peer = net.JoinHostPort(lab.addrs[i], "16379")
		n.Gossip = net.JoinHostPort(lab.addrs[i], "7946")
		if i > 0 {
			n.Seeds = []string{nodes[0].Gossip}
		}
		n.Start()
		nodes = append(nodes, n)
	}
	waitRing(t, nodes, 3)
	c := ctx(t)
	for _, n := range nodes {
		rows, err := n.Redis().Do(c, "DYN.MEMBERS").Slice()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			row := r.([]any)
			m := byID(nodes, row[0].(string))
			if row[1] != m.Client || row[2] != m.Peer || row[3] != m.Gossip {
				t.Fatalf("DYN.MEMBERS on %s shows %v, want the advertised %s %s %s", n.ID, row, m.Client, m.Peer, m.Gossip)
			}
		}
	}
	slots, err := nodes[1].Redis().ClusterSlots(c).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		for _, sn := range s.Nodes {
			if !slices.ContainsFunc(nodes, func(n *Node) bool { return n.Client == sn.Addr }) {
				t.Fatalf("CLUSTER SLOTS hands out %s, not an advertised client address", sn.Addr)
			}
		}
	}

	const before, during = 2000, 1000
	loadKeys(t, nodes[0], before)
	checkKeysR(t, nodes[2], before, 3)

	lab.unplug(2)
	unplugged := time.Now()
	pipe := nodes[0].Redis().Pipeline()
	for i := before; i < before+during; i++ {
		pipe.Set(c, fmt.Sprintf("key:%d", i), fmt.Sprintf("value-%d", i), 0)
	}
	if _, err := pipe.Exec(c); err != nil {
		t.Fatalf("writes through n1 with n3's host unplugged: %v", err)
	}
	checkKeysR(t, nodes[1], before+during, 2)
	deadline := time.Now().Add(30 * time.Second)
	for infoInt(t, nodes[0], "members_alive") != 2 {
		if time.Now().After(deadline) {
			t.Fatal("n1 never saw n3 down with its host unplugged")
		}
		time.Sleep(100 * time.Millisecond)
	}
	down := time.Since(unplugged)
	pending := sumInfo(t, nodes[:2], "hints_pending")

	lab.plug(2)
	plugged := time.Now()
	waitAlive(t, nodes)
	back := time.Since(plugged)
	drained := waitHintsDrained(t, nodes, 60*time.Second)
	checkKeysR(t, nodes[2], before+during, 3)
	for i := range before + during {
		key := fmt.Sprintf("key:%d", i)
		if o := peerRead(t, nodes[2], key); len(itemsOf(o)) != 1 {
			t.Fatalf("n3 alone holds %s as %v after the heal", key, itemsOf(o))
		}
	}
	t.Logf("3 hosts in network namespaces, 0.0.0.0 advertised as 127.1.0.1-3: n3 unplugged, seen down after %v, %d writes acknowledged meanwhile (%d hints kept), back up %v after plugging in, hints drained %v later, every key on n3 alone",
		down.Round(10*time.Millisecond), during, pending, back.Round(10*time.Millisecond), drained.Round(10*time.Millisecond))
	for _, line := range lines(nodes[0].Logs()) {
		if strings.Contains(line, "member down") || strings.Contains(line, "member up") || strings.Contains(line, "hints delivered") || strings.Contains(line, "node started") {
			t.Log(line)
		}
	}
}

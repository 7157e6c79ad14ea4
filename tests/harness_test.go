package tests

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// binary is the dynakv binary built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dynakv-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dynakv")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goTool(), append(args, "github.com/dynakv/dynakv/cmd/dynakv")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dynakv:", err)
		os.Exit(1)
	}
	redis.SetLogger(quietDials{})
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// quietDials drops go-redis's "failed to dial" lines: the tests kill and
// stop nodes on purpose, and the lines buried the failures that matter.
type quietDials struct{}

func (quietDials) Printf(_ context.Context, format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); !strings.Contains(msg, "failed to dial") {
		fmt.Fprintln(os.Stderr, "redis:", msg)
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// needTool returns the path of an outside tool. Without it the test fails
// in CI (CI=true) and is skipped elsewhere.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI but not installed", name)
	}
	t.Skipf("%s not installed", name)
	return ""
}

func partitionsOr(q int) int {
	if q == 0 {
		return 256
	}
	return q
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// uniqueName is a cluster name no other test uses, so that clusters of
// different tests never merge even when ports are reused.
func uniqueName(t testing.TB) string {
	return fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), time.Now().UnixNano())
}

// Ports for nodes come from below the kernel's ephemeral range: a port
// from that range can be taken by any outgoing connection in the moment
// between choosing it and a node binding it, or while a node is stopped
// and about to restart on it, and the node then fails to start.
var ports struct {
	sync.Mutex
	next, low, high int
}

// ephemeralLow is the first port the kernel hands out to outgoing
// connections (32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil || low < 12000 {
		return 32768
	}
	return low
}

// freePort returns a loopback port outside the ephemeral range that was
// free for TCP and UDP a moment ago. Each test process starts at its own
// random place in the range, so that packages tested in parallel rarely
// meet.
func freePort(t testing.TB) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.high == 0 {
		ports.low, ports.high = 10000, ephemeralLow()
		ports.next = ports.low + rand.IntN(ports.high-ports.low)
	}
	for range ports.high - ports.low {
		port := ports.next
		if ports.next++; ports.next >= ports.high {
			ports.next = ports.low
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr) // gossip needs UDP too
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

// Node is one real dynakv process.
type Node struct {
	t      testing.TB
	ID     string
	Dir    string
	Client string // client address
	Peer   string
	Gossip string
	// Zone is node.zone ("": none).
	Zone string
	// Extra is TOML appended to the generated config (not [node] or
	// [cluster]).
	Extra string
	// ClusterName, Seeds and Partitions (0: the default) fill the
	// [cluster] table.
	ClusterName string
	Seeds       []string
	Partitions  int
	// Env is added to the process's environment (DYNAKV_CLOCK_SKEW=...).
	Env []string
	// TLS, when set, is how Redis() reaches a client port that speaks TLS.
	TLS *tls.Config
	// Netns, when set, is the network namespace the node runs in; Redis()
	// dials into it.
	Netns string
	// Bind, when set, is the host the node listens on instead of the
	// hosts of Client, Peer and Gossip, which it then advertises
	// (listen.advertise).
	Bind string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	exit   error
	logs   *bytes.Buffer
	rdb    *redis.Client
}

// NewNode prepares a node with fresh ports and a temporary data dir.
func NewNode(t testing.TB, id string, extra string) *Node {
	t.Helper()
	n := &Node{
		t: t, ID: id, Dir: t.TempDir(), Extra: extra, ClusterName: uniqueName(t),
		Client: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Peer:   fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Gossip: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		logs:   &bytes.Buffer{},
	}
	t.Cleanup(func() {
		n.Kill()
		// DYNAKV_KEEP_LOGS=1 keeps the logs of passing tests too, to
		// compare a failure with.
		if t.Failed() || os.Getenv("DYNAKV_KEEP_LOGS") != "" {
			path := n.saveLog()
			if t.Failed() {
				t.Logf("--- last lines of the log of %s (all of it in %s) ---\n%s", n.ID, path, n.LogTail(failTail))
			}
		}
	})
	return n
}

// StartNode starts a node and waits until it answers PING.
func StartNode(t testing.TB, id string, extra string) *Node {
	n := NewNode(t, id, extra)
	n.Start()
	return n
}

// Config is the node's config.toml.
func (n *Node) Config() string {
	client, peer, gossip, advertise := n.Client, n.Peer, n.Gossip, ""
	if n.Bind != "" {
		advertise, _, _ = net.SplitHostPort(n.Client)
		client, peer, gossip = rehost(n.Client, n.Bind), rehost(n.Peer, n.Bind), rehost(n.Gossip, n.Bind)
	}
	return fmt.Sprintf(`[node]
id = %q
data_dir = "data"
zone = %q

[listen]
client = %q
peer = %q
gossip = %q
advertise = %q

[cluster]
name = %q
seeds = [%s]
partitions = %d
%s
`, n.ID, n.Zone, client, peer, gossip, advertise, n.ClusterName, quoteList(n.Seeds), partitionsOr(n.Partitions), n.Extra)
}

// rehost is addr with its host replaced by host.
func rehost(addr, host string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, port)
}

// Start launches the process and waits for PING.
func (n *Node) Start() {
	n.t.Helper()
	cfg := filepath.Join(n.Dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(n.Config()), 0o644); err != nil {
		n.t.Fatal(err)
	}
	n.mu.Lock()
	cmd := exec.Command(binary, "--config", cfg)
	if n.Netns != "" {
		cmd = exec.Command("ip", "netns", "exec", n.Netns, binary, "--config", cfg)
	}
	cmd.Env = append(os.Environ(), n.Env...)
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &n.mu, w: n.logs}, &lockedWriter{mu: &n.mu, w: n.logs}
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		n.t.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	exited := n.exited
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exit = err
		n.mu.Unlock()
		close(exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			n.t.Fatalf("%s exited at start: %v\n%s", n.ID, n.exitErr(), n.LogTail(20))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := n.Redis().Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s did not answer PING: %v\n%s", n.ID, err, n.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *Node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exit
}

// Redis returns a go-redis client of the node (one per node, pooled).
func (n *Node) Redis() *redis.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rdb == nil {
		opts := &redis.Options{Addr: n.Client, Protocol: 2, MaxRetries: -1, TLSConfig: n.TLS}
		if n.Netns != "" {
			opts.Dialer = netnsDialer(n.Netns)
		}
		n.rdb = redis.NewClient(opts)
		n.t.Cleanup(func() { n.rdb.Close() })
	}
	return n.rdb
}

// Signal sends sig to the running process.
func (n *Node) Signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(sig)
	}
}

// Wait waits for the process to exit and returns its exit error.
func (n *Node) Wait(timeout time.Duration) error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return nil
	}
	select {
	case <-exited:
		return n.exitErr()
	case <-time.After(timeout):
		return errors.New("timed out waiting for exit")
	}
}

// Stop sends SIGTERM and requires a clean exit with status 0.
func (n *Node) Stop() {
	n.t.Helper()
	n.Signal(syscall.SIGTERM)
	if err := n.Wait(60 * time.Second); err != nil {
		n.t.Fatalf("%s did not stop cleanly: %v\n%s", n.ID, err, n.LogTail(20))
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() {
	n.Signal(syscall.SIGKILL)
	_ = n.Wait(30 * time.Second)
}

// Logs returns what the process has printed so far.
func (n *Node) Logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

// failTail is how many lines of each node's log a failed test prints: few
// enough that, for a five-node cluster, the failure's own message stays in
// view of whoever reads only the end of the output (CI shows the end).
const failTail = 12

// saveLog writes the whole log of the process to a file that outlives the
// test's temporary directories, and returns its path.
func (n *Node) saveLog() string {
	dir := filepath.Join(os.TempDir(), "dynakv-test-logs")
	name := strings.NewReplacer("/", "_", " ", "_").Replace(n.t.Name()) + "-" + n.ID + ".log"
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	if err := os.WriteFile(path, []byte(n.Logs()), 0o644); err != nil {
		return err.Error()
	}
	return path
}

// LogTail returns the last lines the process printed: enough to see why
// it failed without burying the test's own message.
func (n *Node) LogTail(lines int) string {
	all := strings.Split(strings.TrimRight(n.Logs(), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// runDynakv runs the binary with args and returns its exit code and output.
func runDynakv(t testing.TB, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("running dynakv: %v", err)
	return -1, ""
}

// ctx returns a context for one client call in a test.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// lines splits command output into non-empty trimmed lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

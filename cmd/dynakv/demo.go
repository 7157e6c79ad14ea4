package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// demo runs a local cluster in this process: --nodes nodes with client
// ports counting up from --port, data in a temporary folder that is removed
// at exit. It prints each node's address and a redis-cli line to try, and
// stops cleanly on SIGINT or SIGTERM.
func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dynakv demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 3, "how many nodes")
	port := fs.Int("port", 6379, "the first node's client port; the others count up from it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *nodes < 1 || *nodes > 64 || *port < 1 || *port+*nodes > 65536 {
		fmt.Fprintln(stderr, "dynakv demo: --nodes must be 1..64 and the ports must fit below 65536")
		return 2
	}
	dir, err := os.MkdirTemp("", "dynakv-demo-")
	if err != nil {
		fmt.Fprintln(stderr, "dynakv demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	var label [4]byte
	_, _ = rand.Read(label[:])
	log := slog.New(slog.NewTextHandler(stderr, nil))
	redis.SetLogger(redisLogger{log})
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	var running []*node
	// A node is stopped once: by stopAll, or by its watcher when it has
	// left the ring with DYN.LEAVE.
	var mu sync.Mutex
	stopped := map[*node]bool{}
	stop := func(n *node) error {
		mu.Lock()
		first := !stopped[n]
		stopped[n] = true
		mu.Unlock()
		if !first {
			return nil
		}
		sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer scancel()
		if err := n.stop(sctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("shutdown failed", "node", n.cfg.Node.ID, "err", err)
			return err
		}
		return nil
	}
	var watchers sync.WaitGroup
	stopAll := func() int {
		cancel() // releases the watchers
		code := 0
		for i := len(running) - 1; i >= 0; i-- {
			if stop(running[i]) != nil {
				code = 1
			}
		}
		watchers.Wait()
		return code
	}
	var seed string
	for i := range *nodes {
		cfg := DefaultConfig()
		cfg.Node.ID = fmt.Sprintf("n%d", i+1)
		cfg.Node.DataDir = filepath.Join(dir, cfg.Node.ID)
		cfg.Cluster.Name = "demo-" + hex.EncodeToString(label[:])
		cfg.Listen.Client = fmt.Sprintf("127.0.0.1:%d", *port+i)
		peer, gossip, err := demoPorts()
		if err != nil {
			fmt.Fprintln(stderr, "dynakv demo:", err)
			stopAll()
			return 1
		}
		cfg.Listen.Peer, cfg.Listen.Gossip = peer, gossip
		if seed != "" {
			cfg.Cluster.Seeds = []string{seed}
		}
		n, err := startNode(cfg, log.With("node", cfg.Node.ID))
		if err != nil {
			fmt.Fprintln(stderr, "dynakv demo:", err)
			stopAll()
			return 2
		}
		running = append(running, n)
		seed = gossip
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			select {
			case <-ctx.Done():
			case <-n.left:
				n.finishLeave()
				_ = stop(n)
			}
		}()
	}
	waitForRing(ctx, running, *nodes)
	fmt.Fprintf(stdout, "dynakv demo: %d nodes, data in %s\n", *nodes, dir)
	for _, n := range running {
		fmt.Fprintf(stdout, "  %s  client %s\n", n.cfg.Node.ID, n.cfg.Listen.Client)
	}
	_, first, _ := net.SplitHostPort(running[0].cfg.Listen.Client)
	_, last, _ := net.SplitHostPort(running[len(running)-1].cfg.Listen.Client)
	fmt.Fprintf(stdout, "try:  redis-cli -p %s SET cart apple && redis-cli -p %s GET cart\n", first, last)
	fmt.Fprintln(stdout, "      redis-cli -p "+first+" DYN.RING")
	fmt.Fprintln(stdout, "stop with Ctrl-C")
	<-ctx.Done()
	return stopAll()
}

// waitForRing waits (up to 10 s) until every node's ring lists all nodes
// and no ownership change is in progress.
func waitForRing(ctx context.Context, nodes []*node, want int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok := true
		for _, n := range nodes {
			r, has := n.cluster.Ring()
			ok = ok && has && r.Stable() && len(r.Members()) == want
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// demoPorts picks a free loopback port for the peer protocol and one free
// for gossip over both TCP and UDP.
func demoPorts() (peer, gossip string, err error) {
	free := func() (string, error) {
		for range 50 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return "", err
			}
			addr := l.Addr().String()
			u, err := net.ListenPacket("udp", addr)
			l.Close()
			if err == nil {
				u.Close()
				return addr, nil
			}
		}
		return "", errors.New("no free port on 127.0.0.1")
	}
	if peer, err = free(); err != nil {
		return "", "", err
	}
	gossip, err = free()
	return peer, gossip, err
}

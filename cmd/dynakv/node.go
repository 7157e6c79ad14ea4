package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/antientropy"
	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/peer"
	"github.com/dynakv/dynakv/replica"
	"github.com/dynakv/dynakv/resp"
)

// node is one running dynakv node and the parts it is wired from.
type node struct {
	cfg     Config
	log     *slog.Logger
	store   *replica.Store
	peers   *peer.Client
	peerSrv *peer.Server
	cluster *gossip.Cluster
	coord   *coord.Coordinator
	handoff *antientropy.Handoff
	hints   *antientropy.HintDelivery
	migrate *antientropy.Migration
	ae      *antientropy.AntiEntropy
	server  *resp.Server
	served  chan error // the client and peer servers' Serve results
	debug   *http.Server
	// left is closed when this node has left the ring (DYN.LEAVE): it
	// should stop.
	left     chan struct{}
	leftOnce sync.Once
	// serving is the coordinator once it exists: gossip may report a
	// node's return before it does.
	serving atomic.Pointer[coord.Coordinator]
	// front is the client front end once it exists: peers may publish
	// before it does.
	front atomic.Pointer[resp.Server]
}

// startNode opens the node's storage, joins (or founds) the cluster and
// starts serving peers and clients. Its error is one line naming the config
// key at fault.
func startNode(cfg Config, log *slog.Logger) (n *node, err error) {
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	clientLn, err := net.Listen("tcp", cfg.Listen.Client)
	if err != nil {
		return nil, fmt.Errorf("config: listen.client: %w", err)
	}
	closers = append(closers, func() { clientLn.Close() })
	if cfg.Security.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Security.TLSCertFile, cfg.Security.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("config: security.tls_cert_file: %w", err)
		}
		clientLn = tls.NewListener(clientLn, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	var debugLn net.Listener
	if cfg.Metrics.Listen != "" {
		if debugLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return nil, fmt.Errorf("config: metrics.listen: %w", err)
		}
		closers = append(closers, func() { debugLn.Close() })
	}
	peerLn, err := net.Listen("tcp", cfg.Listen.Peer)
	if err != nil {
		return nil, fmt.Errorf("config: listen.peer: %w", err)
	}
	closers = append(closers, func() { peerLn.Close() })
	now, err := wallClock()
	if err != nil {
		return nil, err
	}
	fsync, _ := replica.ParseFsync(cfg.Storage.Fsync)
	store, err := replica.Open(cfg.Node.DataDir, replica.Options{
		NodeID: cfg.Node.ID, Fsync: fsync, CacheSize: int64(cfg.Storage.CacheSize), Now: now,
		ObjectCache: int64(cfg.Storage.ObjectCache), Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("config: node.data_dir: %w", err)
	}
	closers = append(closers, func() { store.Close() })
	store.SetHintLimits(replica.HintLimits{
		MaxBytes: int64(cfg.Handoff.MaxHintBytes), Window: cfg.Handoff.HintWindow.Duration,
		TTL: cfg.AntiEntropy.TombstoneGrace.Duration,
	})
	n = &node{cfg: cfg, log: log, store: store, served: make(chan error, 2), left: make(chan struct{})}
	n.peers = peer.NewClient(cfg.Security.ClusterSecret, log)
	if host, _, err := net.SplitHostPort(cfg.Listen.Peer); err == nil {
		n.peers.BindSource(net.ParseIP(host))
	}
	closers = append(closers, func() { n.peers.Close() })
	n.cluster, err = gossip.Start(gossip.Options{
		NodeID: cfg.Node.ID, Zone: cfg.Node.Zone, Secret: cfg.Security.ClusterSecret, Gossip: cfg.Listen.Gossip,
		Client: cfg.advertised(clientLn.Addr().String()), Peer: cfg.advertised(peerLn.Addr().String()), Advertise: cfg.Listen.Advertise,
		Seeds: cfg.Cluster.Seeds, Partitions: cfg.Cluster.Partitions, N: cfg.Replication.N,
		Label: cfg.Cluster.Name, Store: store, FetchRing: n.peers.Ring, Flushes: store, Logger: log,
		Change: n.peers.Change, Left: func() { n.leftOnce.Do(func() { close(n.left) }) }, Returned: n.returned,
		ProbeInterval: cfg.Gossip.ProbeInterval.Duration, ProbeTimeout: cfg.Gossip.ProbeTimeout.Duration,
		SuspicionMult: cfg.Gossip.SuspicionMult,
	})
	if err != nil {
		return nil, fmt.Errorf("config: listen.gossip: %w", err)
	}
	closers = append(closers, func() { n.cluster.Close() })
	// Anti-entropy observes every write to the store: it starts before
	// anything writes concurrently.
	n.ae = antientropy.Start(antientropy.Options{
		Self: cfg.Node.ID, N: cfg.Replication.N, Interval: cfg.AntiEntropy.Interval.Duration,
		RepairRate: cfg.AntiEntropy.RepairRate, Grace: cfg.AntiEntropy.TombstoneGrace.Duration,
		Nodes: n.cluster, Store: store, Logger: log,
		Remote: func(addr string) antientropy.Remote { return antientropy.NetRemote{Peers: n.peers, Addr: addr} },
	})
	closers = append(closers, n.ae.Close)
	copts := coord.Options{
		Self: cfg.Node.ID, N: cfg.Replication.N, R: cfg.Replication.R, W: cfg.Replication.W,
		Timeout: cfg.Replication.Timeout.Duration, Logger: log, Now: now,
	}
	var m *metrics
	if debugLn != nil {
		m = newMetrics()
		m.reg.MustRegister(nodeCollector{n})
		copts.ReadSiblings = m.readSiblings
	}
	n.coord = coord.New(store, coord.NewNetTransport(n.peers, n.cluster.PeerAddr), n.cluster, copts)
	n.serving.Store(n.coord)
	n.peerSrv = peer.NewServer(store, cfg.Security.ClusterSecret, log)
	n.peerSrv.Handle(peer.CmdWrite, n.coord.ServeForward)
	n.peerSrv.Handle(peer.CmdRing, n.cluster.EncodedRing)
	n.peerSrv.Handle(peer.CmdChange, n.cluster.ServeChange)
	aes := antientropy.Service{Trees: n.ae.Trees}
	n.peerSrv.Handle(peer.CmdRoot, aes.ServeRoot)
	n.peerSrv.Handle(peer.CmdChildren, aes.ServeChildren)
	n.peerSrv.Handle(peer.CmdLeaves, aes.ServeLeaves)
	n.peerSrv.Handle(peer.CmdGroup, aes.ServeGroup)
	n.peerSrv.Handle(peer.CmdPublish, peer.ServePublish(n.deliver))
	n.peerSrv.Handle(peer.CmdExec, n.serveExec)
	go func() { n.served <- n.peerSrv.Serve(peerLn) }()
	n.handoff = antientropy.StartHandoff(antientropy.HandoffOptions{
		Self: cfg.Node.ID, N: cfg.Replication.N, Ring: n.cluster, Peers: n.peers, Store: store, Logger: log,
		Rate: cfg.Handoff.TransferRate, DropAfter: cfg.Handoff.DropAfter.Duration, Exchanger: n.ae, Counter: n.peers,
	})
	n.migrate = antientropy.StartMigration(antientropy.MigrationOptions{
		Self: cfg.Node.ID, N: cfg.Replication.N, Ring: n.cluster, Peers: n.peers, Store: store,
		Rate: cfg.Handoff.TransferRate, Logger: log,
	})
	n.hints = antientropy.StartHintDelivery(antientropy.HintOptions{
		Self: cfg.Node.ID, N: cfg.Replication.N,
		Store: store, Peers: n.peers, Nodes: n.cluster, Rate: cfg.Handoff.DeliverRate, Logger: log,
	})
	ropts := resp.Options{
		RequirePass:      cfg.Security.RequirePass,
		MaxBulk:          int64(cfg.Limits.ProtoMaxBulkLen),
		MaxClients:       cfg.Limits.MaxClients,
		QueryBufferLimit: int64(cfg.Limits.QueryBufferLimit),
		IdleTimeout:      cfg.Limits.IdleTimeout.Duration,
		Version:          version(),
		ConfigFile:       cfg.path,
		Params:           cfg.params(),
		Info:             n.info,
		Cluster:          clusterView{n.cluster, cfg.Replication.N, cfg.Node.ID, store, n.handoff.Progress},
		Repair:           n.ae.Repair,
		Checkpoint:       n.checkpoint,
		Copies:           cfg.Replication.N,
		Broadcast:        n.broadcast,
		ForwardExec:      n.forwardExec,
		ForwardTimeout:   cfg.Replication.Timeout.Duration,
		Logger:           log,
	}
	if m != nil {
		ropts.Observe = m.observe
	}
	n.server = resp.NewServer(n.coord, ropts)
	n.front.Store(n.server)
	go func() { n.served <- n.server.Serve(clientLn) }()
	if debugLn != nil {
		n.debug = &http.Server{Handler: m.handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := n.debug.Serve(debugLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener failed", "err", err)
			}
		}()
	}
	log.Info("node started", "client", clientLn.Addr().String(), "peer", peerLn.Addr().String(),
		"gossip", cfg.Listen.Gossip, "advertised", cfg.advertised(clientLn.Addr().String()), "data_dir", cfg.Node.DataDir, "actor", store.Actor(), "fsync", cfg.Storage.Fsync)
	return n, nil
}

// wallClock is the clock the node stamps versions with, in ms. The
// environment variable DYNAKV_CLOCK_SKEW (a Go duration, "-1h") shifts it:
// fault tests use it to show that a skewed clock changes only which
// sibling GET picks, never what survives.
func wallClock() (func() int64, error) {
	v := os.Getenv("DYNAKV_CLOCK_SKEW")
	if v == "" {
		return func() int64 { return time.Now().UnixMilli() }, nil
	}
	skew, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("DYNAKV_CLOCK_SKEW: %w", err)
	}
	return func() int64 { return time.Now().Add(skew).UnixMilli() }, nil
}

// checkpoint writes a backup of the store into a new directory named by
// the time under storage.checkpoint_dir.
func (n *node) checkpoint(ctx context.Context) (string, error) {
	parent := n.cfg.Storage.CheckpointDir
	if parent == "" {
		parent = filepath.Clean(n.cfg.Node.DataDir) + ".checkpoints"
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	dir := filepath.Join(parent, time.Now().UTC().Format("20060102T150405.000Z"))
	start := time.Now()
	if err := n.store.Checkpoint(dir); err != nil {
		n.log.Error("checkpoint failed", "dir", dir, "err", err)
		return "", err
	}
	n.log.Info("checkpoint written", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return dir, nil
}

// finishLeave runs once this node has left the ring (DYN.LEAVE), before
// it stops: it gives the hints it holds for others to the nodes that
// should keep them, so that nothing it accepted for another node leaves
// with it.
func (n *node) finishLeave() {
	n.log.Info("left the ring; handing over hints, then shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	n.hints.Close()
	start := time.Now()
	left, err := n.hints.HandOver(ctx)
	if err != nil {
		n.log.Error("hints not handed over before leaving", "left", left, "err", err)
		return
	}
	n.log.Info("hints handed over", "took", time.Since(start).Round(time.Millisecond))
}

// stop shuts the node down in dependency order: clients are drained first,
// then the background work, gossip and the peer port, and the store last,
// so every write that was acknowledged is on disk when it returns.
func (n *node) stop(ctx context.Context) error {
	errs := []error{n.server.Shutdown(ctx)}
	if n.debug != nil {
		errs = append(errs, n.debug.Shutdown(ctx))
	}
	n.handoff.Close()
	n.migrate.Close()
	n.hints.Close()
	n.ae.Close()
	errs = append(errs, n.cluster.Close(), n.peerSrv.Close(ctx), n.coord.Wait(ctx), n.peers.Close())
	for range 2 {
		errs = append(errs, <-n.served)
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	return errors.Join(errs...)
}

// info supplies INFO's Replication and Cluster sections.
func (n *node) info() []resp.Section {
	c := n.cfg
	itoa := strconv.Itoa
	alive, total := 0, 0
	for _, m := range n.cluster.Members() {
		total++
		if m.State == gossip.Alive {
			alive++
		}
	}
	ring, _ := n.cluster.Ring()
	ht := n.store.HintTotals()
	exchanges, repaired, reaped := n.ae.Stats()
	round, ran := n.ae.LastRound()
	roundAge := int64(-1) // no round yet
	if ran {
		roundAge = int64(time.Since(round.Ended).Seconds())
	}
	q := ring.Q()
	if q == 0 {
		q = c.Cluster.Partitions
	}
	return []resp.Section{
		{Name: "stats", Fields: []resp.Field{{Name: "expired_keys", Value: strconv.FormatInt(n.ae.Expired(), 10)}}},
		{Name: "replication", Fields: []resp.Field{
			{Name: "role", Value: "master"},
			{Name: "connected_slaves", Value: "0"},
			{Name: "hints_pending", Value: strconv.FormatInt(ht.Pending, 10)},
			{Name: "hints_delivered", Value: strconv.FormatInt(ht.Delivered, 10)},
			{Name: "read_repairs", Value: strconv.FormatInt(n.coord.ReadRepairs(), 10)},
			{Name: "ae_exchanges", Value: strconv.FormatInt(exchanges, 10)},
			{Name: "ae_keys_repaired", Value: strconv.FormatInt(repaired, 10)},
			{Name: "ae_tombstones_reaped", Value: strconv.FormatInt(reaped, 10)},
			{Name: "hints_bytes", Value: strconv.FormatInt(ht.Bytes, 10)},
			{Name: "hints_refused", Value: strconv.FormatInt(ht.Refused, 10)},
			{Name: "hints_expired", Value: strconv.FormatInt(n.hints.Expired(), 10)},
			{Name: "ae_exchange_failures", Value: strconv.FormatInt(n.ae.Failures(), 10)},
			{Name: "ae_last_round_age_seconds", Value: strconv.FormatInt(roundAge, 10)},
			{Name: "ae_last_round_ms", Value: strconv.FormatInt(round.Took.Milliseconds(), 10)},
			{Name: "ae_last_round_exchanges", Value: itoa(round.Exchanges)},
			{Name: "ae_last_round_failed", Value: itoa(round.Failed)},
			{Name: "ae_last_round_repaired", Value: itoa(round.Repaired)},
			{Name: "handoff_partitions_pending", Value: strconv.FormatInt(n.handoff.Pending(), 10)},
			{Name: "handoff_objects_copied", Value: strconv.FormatInt(n.handoff.Copied(), 10)},
			{Name: "migration_partitions_pending", Value: strconv.FormatInt(n.migrate.Pending(), 10)},
			{Name: "corrupt_objects", Value: strconv.FormatInt(n.store.Corrupt(), 10)},
			{Name: "late_forwards_dropped", Value: strconv.FormatInt(n.coord.LateForwards(), 10)},
			{Name: "dot_actor", Value: n.store.Actor()},
		}},
		{Name: "cluster", Fields: []resp.Field{
			{Name: "cluster_enabled", Value: "1"},
			{Name: "node_id", Value: c.Node.ID},
			{Name: "members_alive", Value: itoa(alive)},
			{Name: "members_total", Value: itoa(total)},
			{Name: "partitions", Value: itoa(q)},
			{Name: "ring_epoch", Value: strconv.FormatUint(ring.Epoch, 10)},
			{Name: "replication_n", Value: itoa(c.Replication.N)},
			{Name: "replication_r", Value: itoa(c.Replication.R)},
			{Name: "replication_w", Value: itoa(c.Replication.W)},
			{Name: "legacy_positions", Value: itoa(b2i(ring.Legacy))},
			{Name: "ring_change_in_progress", Value: itoa(b2i(ring.Next != nil))},
			{Name: "zone", Value: c.Node.Zone},
			{Name: "zone_spread_violations", Value: itoa(ring.SpreadViolations(c.Replication.N))},
		}},
	}
}

// returned is gossip's news that a node is alive again: the coordinator
// forgets its failure, so requests reach it as soon as gossip does rather
// than after the failure memory and a probe.
func (n *node) returned(id string) {
	if c := n.serving.Load(); c != nil {
		c.Returned(id)
	}
}

// b2i is 1 for true.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// params are what CONFIG GET answers: Redis's names for what dynakv has,
// so that tools asking for them get true values.
func (c Config) params() []resp.Param {
	host, port, _ := net.SplitHostPort(c.Listen.Client)
	return []resp.Param{
		{Name: "bind", Value: host},
		{Name: "port", Value: port},
		{Name: "dir", Value: c.Node.DataDir},
		{Name: "databases", Value: "1"},
		{Name: "save", Value: ""},
		{Name: "appendonly", Value: "yes"},
		{Name: "appendfsync", Value: c.Storage.Fsync},
		{Name: "maxclients", Value: strconv.Itoa(c.Limits.MaxClients)},
		{Name: "maxmemory", Value: "0"},
		{Name: "proto-max-bulk-len", Value: strconv.FormatInt(int64(c.Limits.ProtoMaxBulkLen), 10)},
		{Name: "timeout", Value: strconv.FormatInt(int64(c.Limits.IdleTimeout.Seconds()), 10)},
		{Name: "client-query-buffer-limit", Value: strconv.FormatInt(int64(c.Limits.QueryBufferLimit), 10)},
	}
}

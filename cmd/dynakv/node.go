package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
	"github.com/dynakv/dynakv/resp"
)

// node is one running dynakv node: its store, coordinator and front end.
type node struct {
	cfg    Config
	log    *slog.Logger
	store  *replica.Store
	coord  *coord.Coordinator
	server *resp.Server
	served chan error // the front end's Serve result
}

// startNode opens the node's storage and starts serving clients. Its error
// is one line naming the config key at fault.
func startNode(cfg Config, log *slog.Logger) (*node, error) {
	ln, err := net.Listen("tcp", cfg.Listen.Client)
	if err != nil {
		return nil, fmt.Errorf("config: listen.client: %w", err)
	}
	fsync, _ := replica.ParseFsync(cfg.Storage.Fsync)
	store, err := replica.Open(cfg.Node.DataDir, replica.Options{
		NodeID:    cfg.Node.ID,
		Fsync:     fsync,
		CacheSize: int64(cfg.Storage.CacheSize),
		Logger:    log,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("config: node.data_dir: %w", err)
	}
	n := &node{cfg: cfg, log: log, store: store, served: make(chan error, 1)}
	n.coord = coord.New(store, coord.Options{
		N: cfg.Replication.N, R: cfg.Replication.R, W: cfg.Replication.W,
		Timeout: cfg.Replication.Timeout.Duration,
	})
	n.server = resp.NewServer(n.coord, resp.Options{
		RequirePass: cfg.Security.RequirePass,
		MaxBulk:     int64(cfg.Limits.ProtoMaxBulkLen),
		MaxClients:  cfg.Limits.MaxClients,
		Version:     version(),
		ConfigFile:  cfg.path,
		Params:      cfg.params(),
		Info:        n.info,
		Logger:      log,
	})
	go func() { n.served <- n.server.Serve(ln) }()
	log.Info("node started", "client", ln.Addr().String(), "data_dir", cfg.Node.DataDir,
		"actor", store.Actor(), "fsync", cfg.Storage.Fsync)
	return n, nil
}

// stop drains the front end and closes the store: every write that was
// acknowledged is on disk when it returns.
func (n *node) stop(ctx context.Context) error {
	err := n.server.Shutdown(ctx)
	if serveErr := <-n.served; serveErr != nil {
		err = errors.Join(err, serveErr)
	}
	if cerr := n.store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	return err
}

// info supplies INFO's Replication and Cluster sections.
func (n *node) info() []resp.Section {
	c := n.cfg
	itoa := strconv.Itoa
	return []resp.Section{
		{Name: "replication", Fields: []resp.Field{
			{Name: "role", Value: "master"},
			{Name: "connected_slaves", Value: "0"},
			{Name: "hints_pending", Value: "0"},
			{Name: "hints_delivered", Value: "0"},
			{Name: "read_repairs", Value: "0"},
			{Name: "ae_exchanges", Value: "0"},
			{Name: "ae_keys_repaired", Value: "0"},
			{Name: "handoff_partitions_pending", Value: "0"},
		}},
		{Name: "cluster", Fields: []resp.Field{
			{Name: "node_id", Value: c.Node.ID},
			{Name: "members_alive", Value: "1"},
			{Name: "members_total", Value: "1"},
			{Name: "partitions", Value: itoa(c.Cluster.Partitions)},
			{Name: "ring_epoch", Value: "0"},
			{Name: "replication_n", Value: itoa(c.Replication.N)},
			{Name: "replication_r", Value: itoa(c.Replication.R)},
			{Name: "replication_w", Value: itoa(c.Replication.W)},
		}},
	}
}

// params are what CONFIG GET answers: Redis's names for what dynakv has,
// so that tools asking for them get true values.
func (c Config) params() []resp.Param {
	host, port, _ := net.SplitHostPort(c.Listen.Client)
	appendfsync := c.Storage.Fsync
	return []resp.Param{
		{Name: "bind", Value: host},
		{Name: "port", Value: port},
		{Name: "dir", Value: c.Node.DataDir},
		{Name: "databases", Value: "1"},
		{Name: "save", Value: ""},
		{Name: "appendonly", Value: "yes"},
		{Name: "appendfsync", Value: appendfsync},
		{Name: "maxclients", Value: strconv.Itoa(c.Limits.MaxClients)},
		{Name: "maxmemory", Value: "0"},
		{Name: "proto-max-bulk-len", Value: strconv.FormatInt(int64(c.Limits.ProtoMaxBulkLen), 10)},
		{Name: "timeout", Value: "0"},
	}
}

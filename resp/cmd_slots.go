package resp

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/dynakv/dynakv/replica"
)

// Redis Cluster's view of the ring, for cluster-aware clients (go-redis
// ClusterClient, ioredis Cluster, redis-py RedisCluster, redis-cli -c,
// redis-benchmark --cluster). Slots are Redis Cluster's, and a partition
// is a run of them, so CLUSTER SLOTS describes the ring exactly: each run
// of slots with its preference list, the first node this node sees up as
// "master" and the rest as replicas, so that a client that refreshes its
// slot map routes around a dead node. CLUSTER NODES and SHARDS allow one
// role per node: they list each node as master of the runs it heads. No
// node answers -MOVED: every node serves every key.

// SlotMap is the ring as Redis Cluster describes it.
type SlotMap struct {
	// Epoch is the ring epoch (CLUSTER INFO's current epoch).
	Epoch uint64
	// Self is this node's id.
	Self string
	// Nodes are every ring member; Runs the runs of slots, in slot order,
	// each with its replicas, the master first (see above).
	Nodes []SlotNode
	Runs  []SlotRun
}

// SlotRun is a run of slots [First, Last] and its replicas.
type SlotRun struct {
	First, Last int
	Nodes       []SlotNode
}

// SlotNode is one node: its id, the client address it serves on, and
// whether this node sees it up.
type SlotNode struct {
	ID   string
	Addr string
	Up   bool
}

// clusterID is the 40 hex digits Redis Cluster names a node with, made
// from dynakv's node id.
func clusterID(id string) string {
	sum := sha1.Sum([]byte("dynakv node " + id))
	return hex.EncodeToString(sum[:])
}

// hostPort splits a client address for the cluster replies.
func hostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func cmdClusterSlots(s *Server, c *client, args [][]byte, r *reply) {
	m := s.opts.Cluster.Slots()
	r.array(len(m.Runs))
	for _, run := range m.Runs {
		r.array(2 + len(run.Nodes))
		r.int(int64(run.First))
		r.int(int64(run.Last))
		for _, n := range run.Nodes {
			host, port := hostPort(n.Addr)
			r.array(3)
			r.bulkString(host)
			r.int(int64(port))
			r.bulkString(clusterID(n.ID))
		}
	}
}

// headed returns, for each node, the runs it is master of.
func (m SlotMap) headed() map[string][]SlotRun {
	out := map[string][]SlotRun{}
	for _, run := range m.Runs {
		if len(run.Nodes) > 0 {
			out[run.Nodes[0].ID] = append(out[run.Nodes[0].ID], run)
		}
	}
	return out
}

func cmdClusterShards(s *Server, c *client, args [][]byte, r *reply) {
	m := s.opts.Cluster.Slots()
	heads := m.headed()
	r.array(len(m.Nodes))
	for _, n := range m.Nodes {
		runs := heads[n.ID]
		host, port := hostPort(n.Addr)
		health := "online"
		if !n.Up {
			health = "failed"
		}
		r.mapLen(2)
		r.bulkString("slots")
		r.array(2 * len(runs))
		for _, run := range runs {
			r.int(int64(run.First))
			r.int(int64(run.Last))
		}
		r.bulkString("nodes")
		r.array(1)
		r.mapLen(7)
		r.bulkString("id")
		r.bulkString(clusterID(n.ID))
		r.bulkString("port")
		r.int(int64(port))
		r.bulkString("ip")
		r.bulkString(host)
		r.bulkString("endpoint")
		r.bulkString(host)
		r.bulkString("role")
		r.bulkString("master")
		r.bulkString("replication-offset")
		r.int(0)
		r.bulkString("health")
		r.bulkString(health)
	}
}

func cmdClusterNodes(s *Server, c *client, args [][]byte, r *reply) {
	r.verbatim(clusterNodes(s.opts.Cluster.Slots()))
}

// clusterNodes renders CLUSTER NODES: one line per node, its slot ranges
// those of the runs it heads.
func clusterNodes(m SlotMap) string {
	heads := m.headed()
	var b strings.Builder
	for _, n := range m.Nodes {
		host, port := hostPort(n.Addr)
		flags, link := "master", "connected"
		if n.ID == m.Self {
			flags = "myself,master"
		}
		if !n.Up {
			flags, link = flags+",fail", "disconnected"
		}
		fmt.Fprintf(&b, "%s %s:%d@0 %s - 0 0 %d %s", clusterID(n.ID), host, port, flags, m.Epoch, link)
		for _, run := range heads[n.ID] {
			if run.First == run.Last {
				fmt.Fprintf(&b, " %d", run.First)
			} else {
				fmt.Fprintf(&b, " %d-%d", run.First, run.Last)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func cmdClusterMyID(s *Server, c *client, args [][]byte, r *reply) {
	r.bulkString(clusterID(s.opts.Cluster.Slots().Self))
}

func cmdClusterInfo(s *Server, c *client, args [][]byte, r *reply) {
	m := s.opts.Cluster.Slots()
	assigned, size, known := 0, len(m.headed()), len(m.Nodes)
	failed := 0
	for _, run := range m.Runs {
		assigned += run.Last - run.First + 1
		if len(run.Nodes) == 0 || !run.Nodes[0].Up {
			failed += run.Last - run.First + 1
		}
	}
	state := "ok"
	if assigned < replica.Slots {
		state = "fail"
	}
	var b strings.Builder
	for _, f := range []struct {
		name string
		v    any
	}{
		{"cluster_state", state}, {"cluster_slots_assigned", assigned}, {"cluster_slots_ok", assigned - failed},
		{"cluster_slots_pfail", 0}, {"cluster_slots_fail", failed}, {"cluster_known_nodes", known},
		{"cluster_size", size}, {"cluster_current_epoch", m.Epoch}, {"cluster_my_epoch", m.Epoch},
		{"cluster_stats_messages_sent", 0}, {"cluster_stats_messages_received", 0},
		{"total_cluster_links_buffer_limit_exceeded", 0},
	} {
		fmt.Fprintf(&b, "%s:%v\r\n", f.name, f.v)
	}
	r.verbatim(b.String())
}

func cmdClusterKeySlot(s *Server, c *client, args [][]byte, r *reply) {
	r.int(int64(replica.Slot(args[2])))
}

// slotArg parses a slot argument with Redis's error.
func slotArg(b []byte) (int, string) {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 || n >= replica.Slots {
		return 0, "ERR Invalid slot"
	}
	return n, ""
}

func cmdClusterCountKeysInSlot(s *Server, c *client, args [][]byte, r *reply) {
	slot, msg := slotArg(args[2])
	if msg != "" {
		r.err(msg)
		return
	}
	n, err := s.coord.CountKeysInSlot(r.ctx, slot)
	if err != nil {
		fail(r, err)
		return
	}
	r.int(n)
}

func cmdClusterGetKeysInSlot(s *Server, c *client, args [][]byte, r *reply) {
	slot, msg := slotArg(args[2])
	if msg != "" {
		r.err(msg)
		return
	}
	count, err := strconv.Atoi(string(args[3]))
	if err != nil || count < 0 {
		r.err("ERR Invalid number of keys")
		return
	}
	keys, err := s.coord.KeysInSlot(r.ctx, slot, count)
	if err != nil {
		fail(r, err)
		return
	}
	r.array(len(keys))
	for _, k := range keys {
		r.bulk(k)
	}
}

func cmdClusterHelp(s *Server, c *client, args [][]byte, r *reply) {
	lines := []string{
		"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"SLOTS", "    Return the runs of slots, each with its replicas, the first the master.",
		"SHARDS", "    Return each node's shard: the runs of slots it heads.",
		"NODES", "    Return each node and the runs of slots it heads, in Redis's format.",
		"MYID", "    Return this node's id.", "MYSHARDID", "    Return this node's shard id.",
		"INFO", "    Return information about the cluster.",
		"KEYSLOT <key>", "    Return the hash slot of <key>.",
		"COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot>.",
		"GETKEYSINSLOT <slot> <count>", "    Return up to <count> keys of <slot>.",
		"HELP", "    Print this help.",
	}
	r.array(len(lines))
	for _, l := range lines {
		r.status(l)
	}
}

// cmdOK answers +OK: READONLY, READWRITE and ASKING, which cluster clients
// send and which change nothing here (any node serves any key, reads and
// writes alike).
func cmdOK(s *Server, c *client, args [][]byte, r *reply) { r.ok() }

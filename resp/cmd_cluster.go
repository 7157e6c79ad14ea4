package resp

import (
	"context"
	"time"
)

// Cluster is what the front end shows of membership and the ring.
type Cluster interface {
	// Members lists every known node.
	Members() []Member
	// PrefList returns the replicas that own key, in preference order.
	PrefList(key []byte) []Replica
	// RingSummary returns the ring epoch and each node's partition count.
	RingSummary() RingSummary
	// Leave hands this node's partitions to the others, then leaves.
	Leave(ctx context.Context) error
	// Forget gives a dead node's partitions new owners.
	Forget(ctx context.Context, node string) error
	// Slots describes the ring as Redis Cluster slots (CLUSTER ...).
	Slots() SlotMap
	// Transfers returns the transfers of the ring change in progress
	// (DYN.TRANSFERS); none while the ring is stable.
	Transfers() []Transfer
	// Hints returns the hints this node holds, per target (DYN.HINTS).
	Hints() []HintTarget
}

// Transfer is one row of DYN.TRANSFERS: a node that copies in partitions
// for the ring change in progress, and how far it is as it last
// advertised.
type Transfer struct {
	ID string
	// State is "receiving", "ready" or "error: ...", as in DYN.RING.
	State            string
	Partitions, Done int
	Copied, Expected int64 // objects; Expected 0: unknown
	ElapsedMs        int64
}

// HintTarget is one row of DYN.HINTS: the hints this node keeps for a
// node that was unreachable.
type HintTarget struct {
	Target        string
	Count, Bytes  int64
	OldestSeconds int64 // how long ago the oldest was stored
}

// Member is one row of DYN.MEMBERS.
type Member struct {
	ID, Client, Peer, Gossip, State, Zone string
}

// Replica is one entry of DYN.PREFLIST.
type Replica struct {
	ID string
	Up bool
}

// RingSummary is DYN.RING's reply.
type RingSummary struct {
	Epoch uint64
	// Changing is set while an ownership change is in progress.
	Changing bool
	Nodes    []NodeShare
}

// NodeShare is one node's partition count, and while the ring changes its
// count after the change and the state of its transfer ("ready",
// "receiving", "error: ...").
type NodeShare struct {
	ID         string
	Partitions int
	Next       int
	Transfer   string
}

func cmdDynMembers(s *Server, c *client, args [][]byte, r *reply) {
	ms := s.opts.Cluster.Members()
	r.array(len(ms))
	for _, m := range ms {
		r.strings(m.ID, m.Client, m.Peer, m.Gossip, m.State, m.Zone)
	}
}

func cmdDynPreflist(s *Server, c *client, args [][]byte, r *reply) {
	reps := s.opts.Cluster.PrefList(args[1])
	r.array(len(reps))
	for _, rep := range reps {
		state := "down"
		if rep.Up {
			state = "up"
		}
		r.strings(rep.ID, state)
	}
}

func cmdDynRing(s *Server, c *client, args [][]byte, r *reply) {
	sum := s.opts.Cluster.RingSummary()
	r.array(1 + len(sum.Nodes))
	r.int(int64(sum.Epoch))
	for _, n := range sum.Nodes {
		if !sum.Changing {
			r.array(2)
			r.bulkString(n.ID)
			r.int(int64(n.Partitions))
			continue
		}
		r.array(4)
		r.bulkString(n.ID)
		r.int(int64(n.Partitions))
		r.int(int64(n.Next))
		r.bulkString(n.Transfer)
	}
}

func cmdDynTransfers(s *Server, c *client, args [][]byte, r *reply) {
	ts := s.opts.Cluster.Transfers()
	r.array(len(ts))
	for _, t := range ts {
		r.array(7)
		r.bulkString(t.ID)
		r.bulkString(t.State)
		r.int(int64(t.Partitions))
		r.int(int64(t.Done))
		r.int(t.Copied)
		r.int(t.Expected)
		r.int(t.ElapsedMs)
	}
}

func cmdDynHints(s *Server, c *client, args [][]byte, r *reply) {
	hs := s.opts.Cluster.Hints()
	r.array(len(hs))
	for _, h := range hs {
		r.array(4)
		r.bulkString(h.Target)
		r.int(h.Count)
		r.int(h.Bytes)
		r.int(h.OldestSeconds)
	}
}

func cmdDynLeave(s *Server, c *client, args [][]byte, r *reply) {
	if err := s.opts.Cluster.Leave(s.ctx()); err != nil {
		fail(r, err)
		return
	}
	r.ok()
}

func cmdDynForget(s *Server, c *client, args [][]byte, r *reply) {
	if err := s.opts.Cluster.Forget(s.ctx(), string(args[1])); err != nil {
		fail(r, err)
		return
	}
	r.ok()
}

func cmdDynCheckpoint(s *Server, c *client, args [][]byte, r *reply) {
	dir, err := s.opts.Checkpoint(s.ctx())
	if err != nil {
		fail(r, err)
		return
	}
	s.lastCheckpoint.Store(time.Now().Unix())
	r.bulkString(dir)
}

func cmdDynRepair(s *Server, c *client, args [][]byte, r *reply) {
	s.opts.Repair()
	r.ok()
}

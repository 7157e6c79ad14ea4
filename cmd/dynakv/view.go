package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
	"github.com/dynakv/dynakv/resp"
)

// clusterView shows gossip's membership and ring to the front end.
type clusterView struct {
	c    *gossip.Cluster
	n    int    // replication factor
	self string // this node's id
	// store holds this node's hints; progress is its own transfer's.
	store    *replica.Store
	progress func() (gossip.Transfer, bool)
}

func (v clusterView) Members() []resp.Member {
	ms := v.c.Members()
	out := make([]resp.Member, len(ms))
	for i, m := range ms {
		out[i] = resp.Member{ID: m.ID, Client: m.Client, Peer: m.Peer, Gossip: m.Gossip, State: string(m.State), Zone: m.Zone}
	}
	return out
}

func (v clusterView) PrefList(key []byte) []resp.Replica {
	primaries, _, _ := v.c.Preference(replica.Position(key))
	out := make([]resp.Replica, len(primaries))
	for i, id := range primaries {
		out[i] = resp.Replica{ID: id, Up: v.c.Up(id)}
	}
	return out
}

func (v clusterView) RingSummary() resp.RingSummary {
	r, _ := v.c.Ring()
	counts := gossip.Counts(r.Owners)
	sum := resp.RingSummary{Epoch: r.Epoch, Changing: !r.Stable()}
	next := gossip.Counts(r.Next)
	gainers := gossip.Gainers(r, v.n)
	members := map[string]gossip.Member{}
	for _, m := range v.c.Members() {
		members[m.ID] = m
	}
	for _, id := range r.Members() {
		share := resp.NodeShare{ID: id, Partitions: counts[id], Next: next[id], Transfer: "none"}
		if slices.Contains(gainers, id) {
			m := members[id]
			switch {
			case m.Ready >= r.Epoch:
				share.Transfer = "ready"
			case m.HandoffError != "":
				share.Transfer = "error: " + m.HandoffError
			default:
				share.Transfer = "receiving"
			}
		}
		sum.Nodes = append(sum.Nodes, share)
	}
	return sum
}

// Transfers lists the nodes that copy in partitions for the ring change in
// progress, with the progress each last advertised (this node's own as it
// is now).
func (v clusterView) Transfers() []resp.Transfer {
	sum := v.RingSummary()
	if !sum.Changing {
		return nil
	}
	members := map[string]gossip.Member{}
	for _, m := range v.c.Members() {
		members[m.ID] = m
	}
	var out []resp.Transfer
	for _, share := range sum.Nodes {
		if share.Transfer == "none" {
			continue
		}
		t := resp.Transfer{ID: share.ID, State: share.Transfer}
		p, ok := gossip.Transfer{}, false
		if share.ID == v.self {
			p, ok = v.progress()
		} else if m := members[share.ID]; m.Transfer != nil {
			p, ok = *m.Transfer, true
		}
		if ok && p.Epoch == sum.Epoch {
			t.Partitions, t.Done, t.Copied, t.Expected, t.ElapsedMs = p.Partitions, p.Done, p.Copied, p.Expected, p.Elapsed
		}
		out = append(out, t)
	}
	return out
}

// Hints lists the hints this node keeps, per target.
func (v clusterView) Hints() []resp.HintTarget {
	targets := v.store.HintTargets()
	out := make([]resp.HintTarget, 0, len(targets))
	for id, st := range targets {
		out = append(out, resp.HintTarget{Target: id, Count: st.Count, Bytes: st.Bytes, OldestSeconds: int64(time.Since(st.Since).Seconds())})
	}
	slices.SortFunc(out, func(a, b resp.HintTarget) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// Slots describes the ring as Redis Cluster does (resp.SlotMap): each
// partition's run of slots with its primaries, those this node sees up
// first, adjacent runs with the same nodes merged.
func (v clusterView) Slots() resp.SlotMap {
	r, ok := v.c.Ring()
	m := resp.SlotMap{Epoch: r.Epoch, Self: v.self}
	if !ok || r.Q() == 0 {
		return m
	}
	addrs := map[string]string{}
	for _, mem := range v.c.Members() {
		addrs[mem.ID] = mem.Client
	}
	node := func(id string) resp.SlotNode { return resp.SlotNode{ID: id, Addr: addrs[id], Up: v.c.Up(id)} }
	for _, id := range r.Members() {
		m.Nodes = append(m.Nodes, node(id))
	}
	n := min(v.n, len(r.Members()))
	for p := range r.Q() {
		var up, down []resp.SlotNode
		for _, id := range r.Primaries(p, n) {
			if sn := node(id); sn.Up || id == v.self {
				sn.Up = true
				up = append(up, sn)
			} else {
				down = append(down, sn)
			}
		}
		nodes := append(up, down...)
		first, last := replica.SlotRange(p, r.Q())
		if k := len(m.Runs) - 1; k >= 0 && slices.Equal(m.Runs[k].Nodes, nodes) {
			m.Runs[k].Last = last
			continue
		}
		m.Runs = append(m.Runs, resp.SlotRun{First: first, Last: last, Nodes: nodes})
	}
	return m
}

func (v clusterView) Leave(ctx context.Context) error { return v.c.Leave(ctx) }

func (v clusterView) Forget(ctx context.Context, node string) error { return v.c.Forget(ctx, node) }

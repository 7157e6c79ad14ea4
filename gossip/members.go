package gossip

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/dynakv/dynakv/replica"
	"github.com/hashicorp/memberlist"
)

// State is a member's liveness as this node sees it.
type State string

// The member states DYN.MEMBERS shows.
const (
	Alive   State = "alive"
	Suspect State = "suspect"
	Dead    State = "dead"
	Leaving State = "leaving"
)

// Member is one node as membership knows it.
type Member struct {
	ID     string
	Client string
	Peer   string
	Gossip string
	State  State
	// Epoch is the ring epoch the member has adopted; Ready the epoch of
	// the ownership change whose data it has finished taking in; Migrated
	// the epoch of the legacy ring whose keys it has finished pushing to
	// their replicas.
	Epoch, Ready, Migrated uint64
	// Departing is set when the node has asked to leave.
	Departing bool
	// HandoffError is the last error of a transfer it cannot complete.
	HandoffError string
	// Zone is the node's zone (node.zone), as it advertises it.
	Zone string
	// Transfer is its progress in copying in the partitions of the ring
	// change in progress (nil: none advertised).
	Transfer *Transfer
}

// meta is what a node advertises in memberlist's node metadata (at most
// 512 bytes).
type meta struct {
	Client string `json:"c"`
	Peer   string `json:"p"`
	Epoch  uint64 `json:"e"`
	Ready  uint64 `json:"r"`
	Flush  int64  `json:"f,omitempty"`
	// Migrated is the epoch of the legacy ring whose keys this node has
	// pushed to their replicas (see Ring.Legacy).
	Migrated uint64 `json:"mg,omitempty"`
	// Leaving is set once the node has asked to leave: it must not be
	// taken back in as a joiner before it stops.
	Leaving bool `json:"l,omitempty"`
	// HandoffError is the last error of a transfer this node cannot
	// complete, so that it is seen rather than waited on.
	HandoffError string `json:"he,omitempty"`
	// Zone is the node's node.zone.
	Zone string `json:"z,omitempty"`
	// Transfer is the node's progress in the ring change in progress.
	Transfer *Transfer `json:"tr,omitempty"`
}

// joinLoop joins the seeds and the members known from a previous run, and
// keeps trying until one answers or the cluster stops.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	for attempt := 0; ; attempt++ {
		addrs := slices.Clone(c.opts.Seeds)
		for _, m := range c.Members() {
			if m.ID != c.opts.NodeID && m.Gossip != "" && !slices.Contains(addrs, m.Gossip) {
				addrs = append(addrs, m.Gossip)
			}
		}
		if len(addrs) == 0 {
			return
		}
		n, err := c.ml.Join(addrs)
		if n > 0 {
			c.log.Info("joined the cluster", "contacted", n)
			c.reconnect()
			return
		}
		if attempt%10 == 0 {
			c.log.Warn("cannot reach any seed or known member yet", "addrs", addrs, "err", err)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

// reconnectInterval is how often a node tries to reach the members gossip
// has declared dead.
const reconnectInterval = 3 * time.Second

// reconnect keeps trying the gossip address of every member declared dead.
// memberlist never contacts a dead member again by itself, so after a
// network partition longer than failure detection both sides would go on
// believing the other dead; a join through the healed link makes each side
// learn the other is alive (the dead one refutes), as Serf's reconnect
// does.
func (c *Cluster) reconnect() {
	t := time.NewTicker(reconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		var dead []string
		for _, m := range c.Members() {
			if m.ID != c.opts.NodeID && m.State == Dead && m.Gossip != "" {
				dead = append(dead, m.Gossip)
			}
		}
		if len(dead) == 0 {
			continue
		}
		if n, _ := c.ml.Join(dead); n > 0 {
			c.log.Info("reconnected to members declared dead", "contacted", n, "of", len(dead))
		}
	}
}

// advertise has this node's metadata (epoch, ready) pushed to the
// others. Requests made while one is pending coalesce: the metadata is
// read when it is sent.
func (c *Cluster) advertise() { c.wake(c.adv) }

// wake signals a worker's channel without blocking; one pending signal is
// enough, as the worker reads the latest state when it runs.
func (c *Cluster) wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// work runs fn each time ch is signalled (see wake), one run at a time,
// until the cluster stops.
func (c *Cluster) work(ch <-chan struct{}, fn func()) {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-ch:
			fn()
		}
	}
}

// persistMembers stores the members known now, for the next start to
// rejoin through.
func (c *Cluster) persistMembers() {
	c.mu.Lock()
	known := make([]Member, 0, len(c.mu.members))
	for _, m := range c.mu.members {
		known = append(known, *m)
	}
	c.mu.Unlock()
	b, err := json.Marshal(known)
	if err != nil {
		c.log.Warn("encoding members", "err", err)
		return
	}
	if err := c.opts.Store.PutMeta(replica.MetaMembers, b); err != nil {
		c.log.Warn("persisting members", "err", err)
	}
}

// advertiser sends the metadata advertise asked for; it runs under work,
// one update at a time: memberlist's UpdateNode must not run concurrently
// with itself.
func (c *Cluster) advertiser() {
	if err := c.ml.UpdateNode(time.Second); err != nil {
		c.log.Debug("advertising metadata", "err", err)
	}
}

// Up reports whether node is alive as far as gossip knows.
func (c *Cluster) Up(node string) bool {
	m, ok := c.member(node)
	return ok && m.State == Alive
}

// PeerAddr returns node's peer address.
func (c *Cluster) PeerAddr(node string) (string, bool) {
	m, ok := c.member(node)
	return m.Peer, ok && m.Peer != ""
}

func (c *Cluster) member(id string) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.mu.members[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

func (c *Cluster) setMember(m Member) {
	c.mu.Lock()
	c.mu.members[m.ID] = &m
	c.mu.Unlock()
}

// Members returns every node known, sorted by id: the ring's members and
// the nodes gossip knows, with their state.
func (c *Cluster) Members() []Member {
	suspect := map[string]bool{}
	if c.ml != nil {
		for _, n := range c.ml.Members() {
			if n.State == memberlist.StateSuspect {
				suspect[n.Name] = true
			}
		}
	}
	var ringMembers, leaving []string
	if v := c.view.Load(); v != nil {
		ringMembers = v.ring.Members()
		if v.ring.Next != nil {
			for id := range Counts(v.ring.Owners) {
				if Counts(v.ring.Next)[id] == 0 {
					leaving = append(leaving, id)
				}
			}
		}
	}
	c.mu.Lock()
	out := make([]Member, 0, len(c.mu.members))
	for _, m := range c.mu.members {
		mm := *m
		switch {
		case mm.State == Dead && ringMembers != nil && !slices.Contains(ringMembers, mm.ID):
			continue // gone from the ring and from gossip: forgotten, or left
		case mm.State == Alive && slices.Contains(leaving, mm.ID):
			mm.State = Leaving
		case mm.State == Alive && suspect[mm.ID]:
			mm.State = Suspect
		}
		out = append(out, mm)
	}
	c.mu.Unlock()
	for _, id := range ringMembers {
		if !slices.ContainsFunc(out, func(m Member) bool { return m.ID == id }) {
			out = append(out, Member{ID: id, State: Dead})
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// observe records what gossip says of a node and persists the members.
func (c *Cluster) observe(n *memberlist.Node, state State) {
	var md meta
	if len(n.Meta) > 0 {
		if err := json.Unmarshal(n.Meta, &md); err != nil {
			c.log.Warn("ignoring member with bad metadata", "member", n.Name, "err", err)
			return
		}
	}
	m := Member{ID: n.Name, Client: md.Client, Peer: md.Peer, Gossip: n.Address(), State: state, Epoch: md.Epoch, Ready: md.Ready,
		Migrated: md.Migrated, Departing: md.Leaving, HandoffError: md.HandoffError, Zone: md.Zone, Transfer: md.Transfer}
	c.mu.Lock()
	old, had := c.mu.members[n.Name]
	if had && old.Departing && state == Alive {
		m.Departing = true // the claimant accepted its leave
	}
	c.mu.members[n.Name] = &m
	c.mu.Unlock()
	if n.Name == c.opts.NodeID {
		return
	}
	if !had || old.State != state {
		c.log.Info("member "+map[State]string{Alive: "up", Dead: "down"}[state], "member", n.Name, "gossip", n.Address())
		c.wake(c.keep)
		if had && state == Alive && c.opts.Returned != nil {
			c.opts.Returned(n.Name)
		}
	}
	if f := c.opts.Flushes; f != nil && md.Flush > f.FlushedBefore() {
		for {
			want := c.flushWanted.Load()
			if md.Flush <= want || c.flushWanted.CompareAndSwap(want, md.Flush) {
				break
			}
		}
		c.wake(c.keep)
	}
	if v := c.view.Load(); state == Alive && md.Peer != "" && (v == nil || md.Epoch > v.epoch) {
		select {
		case c.fetch <- md.Peer:
		default:
		}
	}
	c.wake(c.poke)
}

// delegate is memberlist's view of the cluster: node metadata and the
// ring carried by push/pull.
type delegate struct{ c *Cluster }

func (d delegate) NodeMeta(limit int) []byte {
	var epoch uint64
	if v := d.c.view.Load(); v != nil {
		epoch = v.epoch
	}
	var flush int64
	if d.c.opts.Flushes != nil {
		flush = d.c.opts.Flushes.FlushedBefore()
	}
	herr, _ := d.c.handoffErr.Load().(string)
	if len(herr) > 120 {
		herr = herr[:120]
	}
	b, _ := json.Marshal(meta{Client: d.c.opts.Client, Peer: d.c.opts.Peer, Epoch: epoch, Ready: d.c.ready.Load(), Flush: flush,
		Migrated: d.c.migrated.Load(), Leaving: d.c.leaving.Load(), HandoffError: herr, Zone: d.c.opts.Zone,
		Transfer: d.c.transfer.Load()})
	if len(b) > limit {
		d.c.log.Error("node metadata too large", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

func (d delegate) NotifyMsg([]byte) {}

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

func (d delegate) LocalState(join bool) []byte {
	if v := d.c.view.Load(); v != nil {
		return v.ring.Encode()
	}
	return nil
}

func (d delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	select {
	case d.c.events <- buf:
	case <-d.c.stop:
	}
}

// events turns memberlist's membership events into member states.
type events struct{ c *Cluster }

func (e events) NotifyJoin(n *memberlist.Node) { e.c.observe(n, Alive) }

func (e events) NotifyUpdate(n *memberlist.Node) { e.c.observe(n, Alive) }

func (e events) NotifyLeave(n *memberlist.Node) { e.c.observe(n, Dead) }

package gossip

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// the ownership change whose data it has finished taking in.
	Epoch, Ready uint64
	// Departing is set when the node has asked to leave.
	Departing bool
	// HandoffError is the last error of a transfer it cannot complete.
	HandoffError string
}

// Flushes is the FLUSHALL state gossip spreads.
type Flushes interface {
	FlushedBefore() int64
	Flush(t int64) error
}

// MetaStore keeps the ring and the known members across restarts.
type MetaStore interface {
	GetMeta(name string) ([]byte, error)
	PutMeta(name string, value []byte) error
}

// Options configure a Cluster.
type Options struct {
	NodeID string
	// Secret, when set, encrypts and authenticates all gossip with an
	// AES-256 key derived from it: a node without it can neither read
	// the cluster's gossip nor join it.
	Secret string
	// Gossip is the memberlist bind address (TCP and UDP); Client and Peer
	// are advertised to the other nodes.
	Gossip, Client, Peer string
	// Seeds are gossip addresses of running nodes; none founds a cluster.
	Seeds []string
	// Partitions is Q for a cluster founded here.
	Partitions int
	// N is the replication factor: preference lists list N nodes.
	N int
	// Label names the cluster; memberlist drops packets of other labels, so
	// clusters sharing a network never merge.
	Label string
	// Store persists the ring and the members.
	Store MetaStore
	// FetchRing reads the encoded ring from a node's peer address.
	FetchRing func(ctx context.Context, peerAddr string) ([]byte, error)
	// Call sends a peer command to a node's peer address: ring change
	// requests are forwarded to the claimant with it.
	Call func(ctx context.Context, peerAddr string, args ...any) (any, error)
	// Left is called once this node has left the ring (after DYN.LEAVE):
	// its data is with the other nodes and it may stop.
	Left func()
	// Flushes is the store's FLUSHALL state: advertised to the others, and
	// applied here when another node advertises a later one (a node that
	// was down when the cluster was flushed).
	Flushes Flushes
	// ProbeInterval, ProbeTimeout and SuspicionMult tune failure
	// detection (zero: memberlist's local-network defaults). A killed node
	// is suspected within about ProbeInterval+ProbeTimeout, and declared
	// dead SuspicionMult*max(1, log10(nodes))*ProbeInterval later.
	ProbeInterval, ProbeTimeout time.Duration
	SuspicionMult               int
	Logger                      *slog.Logger
}

// Cluster is this node's membership and ring. One goroutine (loop) owns
// the ring: it adopts newer rings, and when this node is the claimant it
// makes the ring changes. Everyone else reads immutable snapshots.
type Cluster struct {
	opts Options
	log  *slog.Logger
	ml   *memberlist.Memberlist
	// contextKey is derived from the cluster secret, when there is one.
	contextKey []byte

	view       atomic.Pointer[view]
	ready      atomic.Uint64
	leaving    atomic.Bool
	handoffErr atomic.Value // string
	events     chan []byte  // encoded rings from push/pull and fetches
	fetch      chan string  // peer addresses that hold a newer ring
	changes    chan changeRequest
	poke       chan struct{}
	adv        chan struct{} // metadata to advertise (advertiser)
	keep       chan struct{} // members to persist, a FLUSHALL to apply (keeper)
	// flushWanted is the latest FLUSHALL time another node advertised.
	flushWanted atomic.Int64
	stop        chan struct{}
	wg          sync.WaitGroup
	// stopping quiets memberlist's complaints about its own sockets
	// closing during Close.
	stopping atomic.Bool
	// flushAdvertised is the last FLUSHALL time advertised; loop only.
	flushAdvertised int64

	mu struct {
		sync.Mutex
		members map[string]*Member
		changed chan struct{} // closed and replaced on every ring change
	}
}

// view is an immutable snapshot of the ring with its preference lists.
type view struct {
	ring  Ring
	bits  uint
	n     int        // primaries per partition: N, or every node if fewer
	cur   [][]string // extended preference list per partition under Owners
	next  [][]string // primaries per partition under Next, or nil
	epoch uint64
	sole  string // the only owner, with no change under way; "" otherwise
}

func newView(r Ring, n int) *view {
	v := &view{ring: r, epoch: r.Epoch}
	for 1<<v.bits < r.Q() {
		v.bits++
	}
	owners := len(Counts(r.Owners))
	v.n = min(n, owners)
	// The primaries and as many fallbacks: enough to replace every
	// primary that is down.
	v.cur = preferences(r.Owners, min(2*n, owners))
	if r.Next != nil {
		v.next = preferences(r.Next, n)
	} else if owners == 1 {
		v.sole = r.Owners[0]
	}
	return v
}

func preferences(owners []string, n int) [][]string {
	out := make([][]string, len(owners))
	for p := range owners {
		out[p] = Preference(owners, p, n)
	}
	return out
}

func (v *view) partition(pos uint64) int {
	if v.bits == 0 {
		return 0
	}
	return int(pos >> (64 - v.bits))
}

// meta is what a node advertises in memberlist's node metadata (at most
// 512 bytes).
type meta struct {
	Client string `json:"c"`
	Peer   string `json:"p"`
	Epoch  uint64 `json:"e"`
	Ready  uint64 `json:"r"`
	Flush  int64  `json:"f,omitempty"`
	// Leaving is set once the node has asked to leave: it must not be
	// taken back in as a joiner before it stops.
	Leaving bool `json:"l,omitempty"`
	// HandoffError is the last error of a transfer this node cannot
	// complete, so that it is seen rather than waited on.
	HandoffError string `json:"he,omitempty"`
}

// Start joins (or founds) the cluster and starts the ring loop.
func Start(opts Options) (*Cluster, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Cluster{
		opts: opts, log: opts.Logger,
		events: make(chan []byte, 64), fetch: make(chan string, 64), changes: make(chan changeRequest),
		poke: make(chan struct{}, 1), stop: make(chan struct{}), adv: make(chan struct{}, 1),
		keep: make(chan struct{}, 1),
	}
	c.mu.members = map[string]*Member{}
	c.mu.changed = make(chan struct{})
	if opts.Secret != "" {
		k := sha256.Sum256([]byte("dynakv context key\x00" + opts.Secret))
		c.contextKey = k[:]
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	host, portStr, err := net.SplitHostPort(opts.Gossip)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", opts.Gossip, err)
	}
	port, _ := strconv.Atoi(portStr)
	cfg := memberlist.DefaultLocalConfig()
	if opts.ProbeInterval > 0 {
		cfg.ProbeInterval = opts.ProbeInterval
	}
	if opts.ProbeTimeout > 0 {
		cfg.ProbeTimeout = opts.ProbeTimeout
	}
	if opts.SuspicionMult > 0 {
		cfg.SuspicionMult = opts.SuspicionMult
	}
	cfg.Name = opts.NodeID
	cfg.BindAddr, cfg.BindPort = host, port
	cfg.AdvertiseAddr, cfg.AdvertisePort = host, port
	cfg.Label = opts.Label
	if opts.Secret != "" {
		key := gossipKey(opts.Secret)
		if cfg.Keyring, err = memberlist.NewKeyring(nil, key); err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		cfg.SecretKey = key
	}
	cfg.Delegate = delegate{c}
	cfg.Events = events{c}
	cfg.Logger = log.New(slogWriter{c.log, &c.stopping}, "", 0)
	cfg.LogOutput = nil
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		// memberlist's own transport dials TCP from whatever address the
		// system picks; this one leaves from the address gossip is bound
		// to, as its UDP does, so peers and firewalls see one address.
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{host}, BindPort: port, Logger: cfg.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("start gossip on %s: %w", opts.Gossip, err)
		}
		cfg.Transport = boundTransport{nt, &net.TCPAddr{IP: ip}}
	}
	if cfg.PushPullInterval > 5*time.Second {
		cfg.PushPullInterval = 5 * time.Second
	}
	ml, err := memberlist.Create(cfg)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", opts.Gossip, err)
	}
	c.ml = ml
	c.setMember(Member{ID: opts.NodeID, Client: opts.Client, Peer: opts.Peer, Gossip: opts.Gossip, State: Alive})
	if c.view.Load() == nil && len(opts.Seeds) == 0 {
		r := Founding(opts.Partitions, opts.NodeID)
		if err := c.adopt(r); err != nil {
			ml.Shutdown()
			return nil, err
		}
		c.log.Info("founded a new cluster", "partitions", opts.Partitions)
	}
	c.wg.Add(4)
	go c.loop()
	go c.joinLoop()
	go c.work(c.adv, c.advertiser)
	go c.work(c.keep, c.keeper)
	return c, nil
}

// boundTransport is memberlist's network transport with its TCP
// connections leaving from a given local address.
type boundTransport struct {
	*memberlist.NetTransport
	local *net.TCPAddr
}

func (t boundTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t boundTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: t.local}
	return d.Dial("tcp", a.Addr)
}

// gossipKey derives memberlist's AES-256 key from the cluster secret.
func gossipKey(secret string) []byte {
	k := sha256.Sum256([]byte("dynakv gossip key\x00" + secret))
	return k[:]
}

// load reads the persisted ring and members.
func (c *Cluster) load() error {
	b, err := c.opts.Store.GetMeta("ring")
	if err != nil {
		return err
	}
	if b != nil {
		r, err := DecodeRing(b)
		if err != nil {
			return fmt.Errorf("stored ring: %w", err)
		}
		c.view.Store(newView(r, c.opts.N))
		c.log.Info("loaded ring", "ring", r.String())
	}
	if b, err = c.opts.Store.GetMeta("members"); err != nil || b == nil {
		return err
	}
	var known []Member
	if err := json.Unmarshal(b, &known); err != nil {
		return fmt.Errorf("stored members: %w", err)
	}
	for _, m := range known {
		if m.ID != c.opts.NodeID {
			m.State = Dead
			m.Epoch, m.Ready = 0, 0
			c.mu.members[m.ID] = &m
		}
	}
	return nil
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

// claimInterval is how often the loop looks for ring work.
const claimInterval = 200 * time.Millisecond

// loop owns the ring: it adopts newer rings and, on the claimant, makes
// ring changes.
func (c *Cluster) loop() {
	defer c.wg.Done()
	t := time.NewTicker(claimInterval)
	defer t.Stop()
	fetching := map[string]bool{}
	fetched := make(chan string, 16)
	for {
		select {
		case <-c.stop:
			return
		case b := <-c.events:
			c.consider(b)
		case addr := <-c.fetch:
			if fetching[addr] || c.opts.FetchRing == nil {
				continue
			}
			fetching[addr] = true
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				b, err := c.opts.FetchRing(ctx, addr)
				if err == nil {
					select {
					case c.events <- b:
					case <-c.stop:
					}
				}
				select {
				case fetched <- addr:
				case <-c.stop:
				}
			}()
		case addr := <-fetched:
			delete(fetching, addr)
		case req := <-c.changes:
			req.reply <- c.change(req.kind, req.node)
		case <-c.poke:
			c.claim()
		case <-t.C:
			c.claim()
		}
	}
}

// consider adopts an encoded ring if it is newer than ours.
func (c *Cluster) consider(b []byte) {
	r, err := DecodeRing(b)
	if err != nil {
		c.log.Warn("ignoring a ring that does not decode", "err", err)
		return
	}
	if v := c.view.Load(); v != nil && !r.Newer(v.ring) {
		return
	}
	if err := c.adopt(r); err != nil {
		c.log.Error("cannot adopt ring", "err", err)
	}
}

// adopt makes r this node's ring: persisted, published, advertised.
func (c *Cluster) adopt(r Ring) error {
	if err := c.opts.Store.PutMeta("ring", r.Encode()); err != nil {
		return fmt.Errorf("persist ring: %w", err)
	}
	old := c.view.Load()
	c.view.Store(newView(r, c.opts.N))
	c.log.Info("ring changed", "ring", r.String())
	self := c.opts.NodeID
	if old != nil && slices.Contains(old.ring.Members(), self) && r.Stable() && !slices.Contains(r.Members(), self) {
		c.log.Info("this node has left the ring: its partitions are with the others")
		if c.opts.Left != nil {
			go c.opts.Left()
		}
	}
	c.mu.Lock()
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
	c.mu.Unlock()
	c.advertise()
	return nil
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

// keeper, run under work, does the disk work gossip's news calls for: it persists the
// members after one changes state, and applies a FLUSHALL another node
// advertises. memberlist calls observe with its state lock held, so a
// write there that waits on a slow disk (an fsync under load can take
// seconds) stopped the node's gossip: it answered no probe, and the others
// declared it failed.
func (c *Cluster) keeper() {
	c.persistMembers()
	if f := c.opts.Flushes; f != nil {
		if t := c.flushWanted.Load(); t > f.FlushedBefore() {
			c.log.Info("applying a FLUSHALL another node advertises", "at", t)
			if err := f.Flush(t); err != nil {
				c.log.Error("flush", "err", err)
			}
			c.advertise()
		}
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
	if err := c.opts.Store.PutMeta("members", b); err != nil {
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

// claim is the claimant's work: finish an ownership change whose data has
// moved, or start one for nodes that joined. Every node also advertises a
// FLUSHALL it applied since its metadata was last sent.
func (c *Cluster) claim() {
	if f := c.opts.Flushes; f != nil {
		if t := f.FlushedBefore(); t > c.flushAdvertised {
			c.flushAdvertised = t
			c.advertise()
		}
	}
	v := c.view.Load()
	if v == nil {
		return
	}
	ring := v.ring
	members := ring.Members()
	self := c.opts.NodeID
	if claimant := c.claimant(members); claimant != self {
		return
	}
	if !ring.Stable() {
		for _, id := range Gainers(ring, c.opts.N) {
			m, ok := c.member(id)
			if !ok || m.State != Alive || m.Ready < ring.Epoch {
				return
			}
		}
		next := Ring{Epoch: ring.Epoch + 1, Claimant: self, Owners: ring.Next, Key: ring.Key}
		if err := c.adopt(next); err != nil {
			c.log.Error("cannot commit ring", "err", err)
		}
		return
	}
	if len(ring.Key) == 0 {
		// A ring from before contexts were sealed: the claimant gives the
		// cluster its context key, in a ring that changes nothing else.
		next := Ring{Epoch: ring.Epoch + 1, Claimant: self, Owners: ring.Owners, Key: NewContextKey()}
		c.log.Info("giving the ring a context key")
		if err := c.adopt(next); err != nil {
			c.log.Error("cannot add a context key to the ring", "err", err)
		}
		return
	}
	var joiners []string
	for _, m := range c.Members() {
		if m.State == Alive && m.Peer != "" && !m.Departing && !slices.Contains(members, m.ID) {
			joiners = append(joiners, m.ID)
		}
	}
	if len(joiners) == 0 {
		return
	}
	nodes := append(slices.Clone(members), joiners...)
	next := Ring{
		Epoch: ring.Epoch + 1, Claimant: self, Owners: ring.Owners,
		Next: Assign(ring.Owners, nodes, ring.Q(), c.opts.N), Key: ring.Key,
	}
	c.log.Info("nodes joining the ring", "nodes", joiners)
	if err := c.adopt(next); err != nil {
		c.log.Error("cannot start ring change", "err", err)
	}
}

// claimant returns the alive ring member with the lowest id: the one node
// that makes ring changes.
func (c *Cluster) claimant(members []string) string {
	for _, id := range members {
		if m, ok := c.member(id); ok && m.State == Alive {
			return id
		}
	}
	return ""
}

// Gainers returns the nodes that become replicas of some partition when
// ring's change in progress completes: they must take in its data first.
func Gainers(r Ring, n int) []string {
	if r.Next == nil {
		return nil
	}
	var out []string
	for p := range r.Owners {
		cur := Preference(r.Owners, p, n)
		for _, id := range Preference(r.Next, p, n) {
			if !slices.Contains(cur, id) && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Gained returns the partitions node becomes a replica of when r's change
// completes, with the nodes that replicate each now.
func Gained(r Ring, n int, node string) map[int][]string {
	out := map[int][]string{}
	if r.Next == nil {
		return out
	}
	for p := range r.Owners {
		cur := Preference(r.Owners, p, n)
		if !slices.Contains(cur, node) && slices.Contains(Preference(r.Next, p, n), node) {
			out[p] = cur
		}
	}
	return out
}

// Ring returns the current ring and whether there is one.
func (c *Cluster) Ring() (Ring, bool) {
	v := c.view.Load()
	if v == nil {
		return Ring{}, false
	}
	return v.ring, true
}

// EncodedRing serves the ring to peers that fetch it.
func (c *Cluster) EncodedRing(ctx context.Context, args [][]byte) ([]byte, error) {
	v := c.view.Load()
	if v == nil {
		return nil, errors.New("gossip: no ring yet")
	}
	return v.ring.Encode(), nil
}

// Changed returns a channel closed at the next ring change.
func (c *Cluster) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.changed
}

// SetReady records that this node has taken in the data of the ownership
// change at epoch, and tells the claimant.
func (c *Cluster) SetReady(epoch uint64) {
	if c.ready.Load() >= epoch {
		return
	}
	c.ready.Store(epoch)
	c.advertise()
	c.wake(c.poke)
}

// Preference implements coord's Placement: the primaries of pos under the
// current owners, the fallbacks that stand in for primaries that are down,
// and the nodes that join its replicas in the change in progress.
func (c *Cluster) Preference(pos uint64) (primaries, fallbacks, joining []string) {
	v := c.view.Load()
	if v == nil {
		return nil, nil, nil
	}
	p := v.partition(pos)
	primaries, fallbacks = v.cur[p][:v.n], v.cur[p][v.n:]
	if v.next != nil {
		for _, id := range v.next[p] {
			if !slices.Contains(primaries, id) {
				joining = append(joining, id)
			}
		}
	}
	return primaries, fallbacks, joining
}

// ContextKey implements coord's Placement: the key clients' contexts are
// sealed with, derived from the cluster secret when there is one, else the
// ring's; nil before this node has a ring with a key.
func (c *Cluster) ContextKey() []byte {
	if c.contextKey != nil {
		return c.contextKey
	}
	if v := c.view.Load(); v != nil && len(v.ring.Key) > 0 {
		return v.ring.Key
	}
	return nil
}

// Sole implements coord's Placement: the ring's only member while it has
// one and no ownership change is under way, else "".
func (c *Cluster) Sole() string {
	if v := c.view.Load(); v != nil {
		return v.sole
	}
	return ""
}

// Partitions is the ring's Q, or 0 before this node has a ring.
func (c *Cluster) Partitions() int {
	if v := c.view.Load(); v != nil {
		return v.ring.Q()
	}
	return 0
}

// Nodes lists the ring's members.
func (c *Cluster) Nodes() []string {
	if v := c.view.Load(); v != nil {
		return v.ring.Members()
	}
	return nil
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
		Departing: md.Leaving, HandoffError: md.HandoffError}
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

// Close leaves the gossip and stops the ring loop. The node stays in the
// ring: only an explicit leave changes ownership.
func (c *Cluster) Close() error {
	c.stopping.Store(true)
	close(c.stop)
	// Leaving is a courtesy: the others learn at once that this node is
	// gone rather than after failure detection. When they are stopping
	// too, nobody acknowledges it, and that is no failure of this node.
	if err := c.ml.Leave(time.Second); err != nil {
		c.log.Info("gossip leave not acknowledged; the others will detect the stop", "err", err)
	}
	c.wg.Wait()
	return c.ml.Shutdown()
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
		Leaving: d.c.leaving.Load(), HandoffError: herr})
	if len(b) > limit {
		d.c.log.Error("node metadata too large", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

func (d delegate) NotifyMsg([]byte)                           {}
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

func (e events) NotifyJoin(n *memberlist.Node)   { e.c.observe(n, Alive) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.c.observe(n, Alive) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.c.observe(n, Dead) }

// slogWriter routes memberlist's log lines ("[LEVEL] memberlist: ...")
// through slog at their level; while stopping, at debug level.
type slogWriter struct {
	log      *slog.Logger
	stopping *atomic.Bool
}

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if strings.HasPrefix(line, prefix) {
			level, line = l, strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	if w.stopping.Load() {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}

// Errors of ring change requests; each says why the change was refused.
var (
	ErrChangeInProgress = errors.New("gossip: a ring change is in progress")
	ErrNotMember        = errors.New("gossip: not a member of the ring")
	ErrTooFewNodes      = errors.New("gossip: too few nodes would remain")
	ErrAlive            = errors.New("gossip: the node is alive")
	ErrNotAlive         = errors.New("gossip: the node is not alive")
	ErrNoClaimant       = errors.New("gossip: no claimant reachable")
)

// CmdChange is the peer command that asks the claimant for a ring change:
// G.CHANGE leave|forget node.
const CmdChange = "G.CHANGE"

type changeRequest struct {
	kind, node string
	reply      chan error
}

// Leave asks the claimant to hand this node's partitions to the others;
// once they have them the node leaves the ring (and Options.Left runs).
func (c *Cluster) Leave(ctx context.Context) error {
	c.leaving.Store(true)
	if err := c.requestChange(ctx, "leave", c.opts.NodeID); err != nil {
		c.leaving.Store(false)
		return err
	}
	c.advertise()
	return nil
}

// SetHandoffError records (or, with "", clears) the error that keeps this
// node from completing a transfer, and advertises it.
func (c *Cluster) SetHandoffError(msg string) {
	if old, _ := c.handoffErr.Load().(string); old == msg {
		return
	}
	c.handoffErr.Store(msg)
	c.advertise()
}

// Forget asks the claimant to give a dead node's partitions new owners,
// rebuilt from the surviving replicas.
func (c *Cluster) Forget(ctx context.Context, node string) error {
	return c.requestChange(ctx, "forget", node)
}

// requestChange hands a change to the claimant: this node's loop when it
// is the claimant, else the claimant's peer port.
func (c *Cluster) requestChange(ctx context.Context, kind, node string) error {
	v := c.view.Load()
	if v == nil {
		return ErrNotMember
	}
	claimant := c.claimant(v.ring.Members())
	if claimant == "" {
		return ErrNoClaimant
	}
	if claimant == c.opts.NodeID {
		return c.localChange(ctx, kind, node)
	}
	addr, ok := c.PeerAddr(claimant)
	if !ok || c.opts.Call == nil {
		return fmt.Errorf("%w: no address for %s", ErrNoClaimant, claimant)
	}
	if _, err := c.opts.Call(ctx, addr, CmdChange, kind, node); err != nil {
		return fmt.Errorf("claimant %s: %w", claimant, err)
	}
	return nil
}

func (c *Cluster) localChange(ctx context.Context, kind, node string) error {
	req := changeRequest{kind, node, make(chan error, 1)}
	select {
	case c.changes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return ErrNoClaimant
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeChange is the peer handler of CmdChange, on the claimant.
func (c *Cluster) ServeChange(ctx context.Context, args [][]byte) ([]byte, error) {
	if len(args) != 3 {
		return nil, errors.New("gossip: want G.CHANGE leave|forget node")
	}
	v := c.view.Load()
	if v == nil || c.claimant(v.ring.Members()) != c.opts.NodeID {
		return nil, fmt.Errorf("%w: this node is not the claimant", ErrNoClaimant)
	}
	if err := c.localChange(ctx, string(args[1]), string(args[2])); err != nil {
		return nil, err
	}
	return []byte("OK"), nil
}

// change validates and starts a leave or forget; it runs on the loop.
func (c *Cluster) change(kind, node string) error {
	v := c.view.Load()
	if v == nil {
		return ErrNotMember
	}
	ring := v.ring
	if !ring.Stable() {
		return fmt.Errorf("%w (epoch %d): try again when it completes", ErrChangeInProgress, ring.Epoch)
	}
	members := ring.Members()
	if !slices.Contains(members, node) {
		return fmt.Errorf("%w: %s", ErrNotMember, node)
	}
	remaining := slices.DeleteFunc(slices.Clone(members), func(id string) bool { return id == node })
	if len(remaining) < c.opts.N {
		return fmt.Errorf("%w: without %s the ring would have %d nodes, fewer than N=%d", ErrTooFewNodes, node, len(remaining), c.opts.N)
	}
	up := c.Up(node)
	switch {
	case kind == "forget" && up:
		return fmt.Errorf("%w: %s is alive; stop it for good first, or make it leave with DYN.LEAVE", ErrAlive, node)
	case kind == "leave" && !up:
		return fmt.Errorf("%w: %s cannot hand its data over; use DYN.FORGET %s", ErrNotAlive, node, node)
	case kind != "leave" && kind != "forget":
		return fmt.Errorf("gossip: unknown ring change %q", kind)
	}
	next := Ring{
		Epoch: ring.Epoch + 1, Claimant: c.opts.NodeID, Owners: ring.Owners,
		Next: Assign(ring.Owners, remaining, ring.Q(), c.opts.N), Key: ring.Key,
	}
	c.log.Info("ring change requested", "change", kind, "node", node)
	if kind == "leave" {
		// Not a joiner once it is out, even before its own metadata says so.
		c.mu.Lock()
		if m := c.mu.members[node]; m != nil {
			m.Departing = true
		}
		c.mu.Unlock()
	}
	return c.adopt(next)
}

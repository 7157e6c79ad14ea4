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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/replica"
	"github.com/hashicorp/memberlist"
)

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
	// Advertise, when set, is the host the others reach gossip at (an IP
	// address or a name resolved once at start), with Gossip's port: for
	// a node bound to every interface. Empty: Gossip's host.
	Advertise string
	// Zone is this node's zone (node.zone): a rack, room or data center.
	Zone string
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
	// Change sends a ring change to the claimant's peer address (the
	// peer protocol's G.CHANGE), when another node is the claimant.
	Change func(ctx context.Context, peerAddr, kind, node string) error
	// Left is called once this node has left the ring (after DYN.LEAVE):
	// its data is with the other nodes and it may stop.
	Left func()
	// Returned, when set, is called with a node's id when gossip sees it
	// alive after it was dead: a restart or a healed partition. The caller
	// drops what it remembers of the node's failure. It runs on gossip's
	// goroutine and must not block.
	Returned func(node string)
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
	migrated   atomic.Uint64
	leaving    atomic.Bool
	handoffErr atomic.Value // string
	transfer   atomic.Pointer[Transfer]
	events     chan []byte // encoded rings from push/pull and fetches
	fetch      chan string // peer addresses that hold a newer ring
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
	advertise := host
	if opts.Advertise != "" {
		if advertise, err = resolveHost(opts.Advertise); err != nil {
			return nil, err
		}
	}
	cfg.AdvertiseAddr, cfg.AdvertisePort = advertise, port
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
	c.setMember(Member{ID: opts.NodeID, Client: opts.Client, Peer: opts.Peer, Gossip: net.JoinHostPort(advertise, portStr), State: Alive, Zone: opts.Zone})
	if c.view.Load() == nil && len(opts.Seeds) == 0 {
		r := Founding(opts.Partitions, opts.NodeID)
		if opts.Zone != "" {
			r.Zones = map[string]string{opts.NodeID: opts.Zone}
		}
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
	b, err := c.opts.Store.GetMeta(replica.MetaRing)
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
	if b, err = c.opts.Store.GetMeta(replica.MetaMembers); err != nil || b == nil {
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

// Errors of ring change requests; each says why the change was refused.
var (
	ErrChangeInProgress = errors.New("gossip: a ring change is in progress")
	ErrNotMember        = errors.New("gossip: not a member of the ring")
	ErrTooFewNodes      = errors.New("gossip: too few nodes would remain")
	ErrAlive            = errors.New("gossip: the node is alive")
	ErrNotAlive         = errors.New("gossip: the node is not alive")
	ErrNoClaimant       = errors.New("gossip: no claimant reachable")
)

// resolveHost returns host as an IP address, resolving a name: memberlist
// advertises addresses, not names.
func resolveHost(host string) (string, error) {
	if net.ParseIP(host) != nil {
		return host, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", fmt.Errorf("advertised host %q: %w", host, err)
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("advertised host %q: no address", host)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	return ips[0].String(), nil
}

package resp

import (
	"net"
	"sort"
	"strings"
	"sync"
)

// Pub/sub. A node keeps its own subscribers only; PUBLISH delivers to
// them and hands the message to every other live node, which delivers to
// its own (Options.Broadcast): at most once, nothing stored, as Redis
// Cluster does. SPUBLISH is delivered the same way, so a client need not
// be cluster-aware to receive it.
//
// A subscribed connection's writes all go through its pusher, one
// goroutine that owns the socket's writes from then on: publishers append
// to its queue and never wait on a slow subscriber. A subscriber whose
// queue passes Options.PubSubLimit is disconnected, as Redis's
// client-output-buffer-limit for pubsub clients.

// The three kinds of subscription, each a namespace of its own.
const (
	kindChannel = iota
	kindPattern
	kindShard
	kinds
)

// hub is the node's subscriptions: for each kind, each name's clients.
type hub struct {
	mu   sync.RWMutex
	subs [kinds]map[string]map[*client]struct{}
}

func newHub() *hub {
	h := &hub{}
	for k := range h.subs {
		h.subs[k] = map[string]map[*client]struct{}{}
	}
	return h
}

func (h *hub) add(kind int, name string, c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.subs[kind][name]
	if m == nil {
		m = map[*client]struct{}{}
		h.subs[kind][name] = m
	}
	m[c] = struct{}{}
}

func (h *hub) remove(kind int, name string, c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.subs[kind][name]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.subs[kind], name)
		}
	}
}

// names returns the names of kind with a subscriber that match pattern
// (nil: all), sorted.
func (h *hub) names(kind int, pattern []byte) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []string
	for name := range h.subs[kind] {
		if pattern == nil || globMatch(pattern, []byte(name), false) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// count returns how many clients subscribe to name.
func (h *hub) count(kind int, name string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[kind][name])
}

// Deliver sends a published message to this node's subscribers and
// returns how many deliveries it made: one per subscribed channel and one
// per matching pattern, as Redis counts. A shard message reaches shard
// subscribers only. The peer server calls it for messages published on
// other nodes.
func (s *Server) Deliver(channel, message []byte, sharded bool) int64 {
	h := s.hub
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := int64(0)
	// send encodes the message once per protocol in use.
	send := func(m map[*client]struct{}, kind string, pattern []byte) {
		var frames [2][]byte
		for c := range m {
			p := 0
			if c.resp3.Load() {
				p = 1
			}
			if frames[p] == nil {
				frames[p] = pushFrame(nil, p == 1, kind, pattern, channel, message)
			}
			c.push.send(frames[p])
			n++
		}
	}
	if sharded {
		send(h.subs[kindShard][string(channel)], "smessage", nil)
		return n
	}
	send(h.subs[kindChannel][string(channel)], "message", nil)
	for pattern, m := range h.subs[kindPattern] {
		if globMatch([]byte(pattern), channel, false) {
			send(m, "pmessage", []byte(pattern))
		}
	}
	return n
}

// pushFrame encodes a message as Redis sends it to a subscriber: [kind,
// pattern?, channel, message], an array in RESP2 and a push in RESP3.
func pushFrame(b []byte, resp3 bool, kind string, pattern, channel, message []byte) []byte {
	r := reply{b: b, resp3: resp3}
	if pattern != nil {
		r.pushLen(4)
		r.bulkString(kind)
		r.bulk(pattern)
	} else {
		r.pushLen(3)
		r.bulkString(kind)
	}
	r.bulk(channel)
	r.bulk(message)
	return r.b
}

// subscriptions are one client's: the names of each kind, and those added
// by the running batch, which join the hub only once the batch's replies
// are queued, so that no message overtakes its subscription's
// confirmation.
type subscriptions struct {
	names [kinds]map[string]bool
	added []subscription
}

type subscription struct {
	kind int
	name string
}

// count is what (UN)SUBSCRIBE and P(UN)SUBSCRIBE answer: channels and
// patterns together; SSUBSCRIBE's count is of shard channels alone.
func (ss *subscriptions) count(kind int) int64 {
	if kind == kindShard {
		return int64(len(ss.names[kindShard]))
	}
	return int64(len(ss.names[kindChannel]) + len(ss.names[kindPattern]))
}

// pusher owns a subscribed connection's writes: the replies of its
// commands and the messages published to it, in the order they were
// queued.
type pusher struct {
	conn  net.Conn
	limit int
	wake  chan struct{}
	done  chan struct{}

	mu struct {
		sync.Mutex
		queue   []byte
		spare   []byte
		closing bool
		dropped bool
		// held keeps the queue unwritten while a batch's subscriptions
		// join the hub: a client that has read a confirmation gets every
		// message published after it.
		held bool
	}
}

func newPusher(conn net.Conn, limit int) *pusher {
	p := &pusher{conn: conn, limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go p.loop()
	return p
}

// send queues b (copied). A subscriber whose queue would pass the limit
// is cut off: its connection is closed and it gets nothing more.
func (p *pusher) send(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closing || p.mu.dropped {
		return
	}
	if len(p.mu.queue)+len(b) > p.limit {
		p.mu.dropped = true
		p.mu.queue = nil
		_ = p.conn.Close()
		return
	}
	p.mu.queue = append(p.mu.queue, b...)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// loop writes what is queued until stop, then what is left.
func (p *pusher) loop() {
	defer close(p.done)
	for {
		<-p.wake
		p.mu.Lock()
		if p.mu.held && !p.mu.closing {
			p.mu.Unlock()
			continue
		}
		out, closing := p.mu.queue, p.mu.closing
		p.mu.queue, p.mu.spare = p.mu.spare[:0], nil
		p.mu.Unlock()
		if len(out) > 0 {
			if _, err := p.conn.Write(out); err != nil {
				p.mu.Lock()
				p.mu.dropped = true
				p.mu.Unlock()
				return
			}
		}
		p.mu.Lock()
		if cap(out) <= 64<<10 {
			p.mu.spare = out[:0]
		}
		if len(p.mu.queue) > 0 {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
		p.mu.Unlock()
		if closing {
			return
		}
	}
}

// hold queues b and keeps the queue unwritten until release.
func (p *pusher) hold(b []byte) {
	p.mu.Lock()
	p.mu.held = true
	p.mu.Unlock()
	p.send(b)
}

// release lets the queue be written again.
func (p *pusher) release() {
	p.mu.Lock()
	p.mu.held = false
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop writes what is queued and ends the pusher's goroutine.
func (p *pusher) stop() {
	p.mu.Lock()
	p.mu.closing = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	<-p.done
}

// queue sends a batch's replies through the client's pusher, then adds
// the batch's new subscriptions to the hub. It reports false for a client
// that has no pusher: its replies are written as usual.
func (s *Server) queue(c *client, out []byte) bool {
	if c.push == nil {
		return false
	}
	joining := c.monitoring && !c.monitorJoined
	if len(c.subs.added) == 0 && !joining {
		c.push.send(out)
		return true
	}
	c.push.hold(out)
	if joining {
		s.monitors.add(c)
		c.monitorJoined = true
	}
	for _, a := range c.subs.added {
		if c.subs.names[a.kind][a.name] {
			s.hub.add(a.kind, a.name, c)
		}
	}
	c.subs.added = c.subs.added[:0]
	c.push.release()
	return true
}

// unsubscribeAll drops every subscription of the client (RESET, and the
// connection's end).
func (s *Server) unsubscribeAll(c *client) {
	for kind := range c.subs.names {
		for name := range c.subs.names[kind] {
			s.hub.remove(kind, name, c)
		}
		c.subs.names[kind] = nil
		c.subCounts[kind].Store(0)
	}
	c.subs.added = c.subs.added[:0]
	if c.monitorJoined {
		s.monitors.remove(c)
	}
	c.monitoring, c.monitorJoined = false, false
}

// subscribe serves SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE: one confirmation
// per name, [kind, name, count].
func (s *Server) subscribe(c *client, kind int, verb string, names [][]byte, r *reply) {
	if c.push == nil {
		c.push = newPusher(c.conn, s.opts.PubSubLimit)
		c.guard.idle = 0 // Redis does not time out subscribers
	}
	for _, name := range names {
		n := string(name)
		if c.subs.names[kind] == nil {
			c.subs.names[kind] = map[string]bool{}
		}
		if !c.subs.names[kind][n] {
			c.subs.names[kind][n] = true
			c.subs.added = append(c.subs.added, subscription{kind, n})
			c.subCounts[kind].Store(int32(len(c.subs.names[kind])))
		}
		r.pushLen(3)
		r.bulkString(verb)
		r.bulk(name)
		r.int(c.subs.count(kind))
	}
}

// unsubscribe serves UNSUBSCRIBE, PUNSUBSCRIBE and SUNSUBSCRIBE: with no
// names, from every name of the kind; with none to leave, one
// confirmation with a null name.
func (s *Server) unsubscribe(c *client, kind int, verb string, names [][]byte, r *reply) {
	if len(names) == 0 {
		for n := range c.subs.names[kind] {
			names = append(names, []byte(n))
		}
		sort.Slice(names, func(i, j int) bool { return string(names[i]) < string(names[j]) })
		if len(names) == 0 {
			r.pushLen(3)
			r.bulkString(verb)
			r.null()
			r.int(c.subs.count(kind))
			return
		}
	}
	for _, name := range names {
		n := string(name)
		delete(c.subs.names[kind], n)
		c.subCounts[kind].Store(int32(len(c.subs.names[kind])))
		s.hub.remove(kind, n, c)
		r.pushLen(3)
		r.bulkString(verb)
		r.bulk(name)
		r.int(c.subs.count(kind))
	}
}

// cmdSubscribe returns the handler of SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE
// (verb) for its kind of subscription.
func cmdSubscribe(kind int, verb string) handler {
	return func(s *Server, c *client, args [][]byte, r *reply) { s.subscribe(c, kind, verb, args[1:], r) }
}

// cmdUnsubscribe returns the handler of UNSUBSCRIBE, PUNSUBSCRIBE or
// SUNSUBSCRIBE.
func cmdUnsubscribe(kind int, verb string) handler {
	return func(s *Server, c *client, args [][]byte, r *reply) { s.unsubscribe(c, kind, verb, args[1:], r) }
}

// cmdPublish serves PUBLISH and SPUBLISH: delivered here and on every
// other live node; the reply counts the deliveries of every node that
// answered in time.
func cmdPublish(s *Server, c *client, args [][]byte, r *reply) {
	sharded := strings.EqualFold(string(args[0]), "spublish")
	n := s.Deliver(args[1], args[2], sharded)
	if s.opts.Broadcast != nil {
		n += s.opts.Broadcast(r.ctx, args[1], args[2], sharded)
	}
	r.int(n)
}

// cmdPubSubChannels serves PUBSUB CHANNELS and SHARDCHANNELS [pattern]:
// this node's channels with a subscriber, as Redis Cluster answers for
// its node.
func cmdPubSubChannels(s *Server, c *client, args [][]byte, r *reply) {
	kind := kindChannel
	if strings.EqualFold(string(args[1]), "shardchannels") {
		kind = kindShard
	}
	var pattern []byte
	switch len(args) {
	case 2:
	case 3:
		pattern = args[2]
	default:
		r.err("ERR unknown subcommand or wrong number of arguments for '" + string(args[1]) + "'. Try PUBSUB HELP.")
		return
	}
	r.strings(s.hub.names(kind, pattern)...)
}

// cmdPubSubNumSub serves PUBSUB NUMSUB and SHARDNUMSUB: [channel, count,
// ...] for this node's subscribers.
func cmdPubSubNumSub(s *Server, c *client, args [][]byte, r *reply) {
	kind := kindChannel
	if strings.EqualFold(string(args[1]), "shardnumsub") {
		kind = kindShard
	}
	r.array(2 * len(args[2:])) // an array in RESP3 too, as Redis 7.0 answers
	for _, ch := range args[2:] {
		r.bulk(ch)
		r.int(int64(s.hub.count(kind, string(ch))))
	}
}

// cmdPubSubNumPat serves PUBSUB NUMPAT: the patterns this node's clients
// subscribe to.
func cmdPubSubNumPat(s *Server, c *client, args [][]byte, r *reply) {
	r.int(int64(len(s.hub.names(kindPattern, nil))))
}

func cmdPubSubHelp(s *Server, c *client, args [][]byte, r *reply) {
	r.strings("PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
		"NUMPAT", "    Return number of subscriptions to patterns.",
		"NUMSUB [<channel> ...]", "    Return the number of subscribers for the specified channels, excluding",
		"    pattern subscriptions(default: no channels).",
		"SHARDCHANNELS [<pattern>]", "    Return the currently active shard level channels matching a <pattern> (default: '*').",
		"SHARDNUMSUB [<shardchannel> ...]", "    Return the number of subscribers for the specified shard level channel(s)",
		"HELP", "    Print this help.")
}

// allowedSubscribed are the commands a RESP2 client may send while
// subscribed.
var allowedSubscribed = map[string]bool{
	"subscribe": true, "psubscribe": true, "ssubscribe": true, "unsubscribe": true,
	"punsubscribe": true, "sunsubscribe": true, "ping": true, "quit": true, "reset": true,
}

// pingSubscribed answers PING in the subscribed state as Redis does:
// [pong, message or ""].
func pingSubscribed(args [][]byte, r *reply) {
	r.array(2)
	r.bulkString("pong")
	if len(args) > 1 {
		r.bulk(args[1])
	} else {
		r.bulkString("")
	}
}

package resp

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// params are what CONFIG GET answers: the node's fixed ones and those
// CONFIG SET can change.
func (s *Server) params() []Param {
	return append(s.opts.Params[:len(s.opts.Params):len(s.opts.Params)],
		Param{"slowlog-log-slower-than", strconv.FormatInt(s.slow.slowerThan.Load(), 10)},
		Param{"slowlog-max-len", strconv.FormatInt(s.slow.maxLen.Load(), 10)},
		Param{"latency-monitor-threshold", "0"})
}

// cmdConfigSet serves CONFIG SET for what can change while a node runs:
// the slow log's threshold and length. The rest lives in config.toml.
func cmdConfigSet(s *Server, c *client, args [][]byte, r *reply) {
	if len(args)%2 != 0 {
		r.err(wrongArity("config|set"))
		return
	}
	type change struct {
		set func(int64)
		v   int64
	}
	var changes []change
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		v, err := strconv.ParseInt(string(args[i+1]), 10, 64)
		var set func(int64)
		switch name {
		case "slowlog-log-slower-than":
			set = s.slow.slowerThan.Store
		case "slowlog-max-len":
			set = s.slow.maxLen.Store
			if v < 0 {
				err = strconv.ErrRange
			}
		default:
			known := false
			for _, p := range s.params() {
				known = known || p.Name == name
			}
			if known {
				r.err(sanitize("ERR CONFIG SET failed (possibly related to argument '" + name + "') - can't set immutable config"))
			} else {
				r.err(sanitize("ERR Unknown option or number of arguments for CONFIG SET - '" + name + "'"))
			}
			return
		}
		if err != nil {
			r.err(sanitize("ERR CONFIG SET failed (possibly related to argument '" + name + "') - argument couldn't be parsed into an integer"))
			return
		}
		changes = append(changes, change{set, v})
	}
	for _, ch := range changes { // all or nothing, as Redis
		ch.set(ch.v)
	}
	r.ok()
}

func cmdConfigResetStat(s *Server, c *client, args [][]byte, r *reply) {
	s.resetStats()
	s.slow.mu.Lock()
	s.slow.entries = nil
	s.slow.mu.Unlock()
	r.ok()
}

// cmdCommandGetKeys serves COMMAND GETKEYS: the keys of a command line,
// from the table's key positions.
func cmdCommandGetKeys(s *Server, c *client, args [][]byte, r *reply) {
	cmd := args[2:]
	spec := s.lookup(cmd[0])
	if spec != nil && spec.sub != nil && len(cmd) > 1 {
		if sub := lookupIn(spec.sub, cmd[1]); sub != nil {
			spec = sub
		}
	}
	switch {
	case spec == nil:
		r.err("ERR Invalid command specified")
	case !spec.arityOK(len(cmd)):
		r.err("ERR Invalid number of arguments specified for command")
	default:
		keys := spec.keys(cmd)
		if len(keys) == 0 {
			r.err("ERR The command has no key arguments")
			return
		}
		r.array(len(keys))
		for _, k := range keys {
			r.bulk(k)
		}
	}
}

// cmdObject serves OBJECT ENCODING, FREQ, IDLETIME, REFCOUNT and HELP on
// a key's resolved value.
func cmdObject(s *Server, c *client, args [][]byte, r *reply) {
	sub := strings.ToLower(string(args[1]))
	if sub == "help" {
		r.strings("OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"ENCODING <key>", "    Return the kind of internal representation used in order to store the value",
			"    associated with a <key>.",
			"FREQ <key>", "    Return the access frequency index of the <key>. The returned integer is",
			"    proportional to the logarithm of the recent access frequency of the key.",
			"IDLETIME <key>", "    Return the idle time of the <key>, that is the approximated number of",
			"    seconds elapsed since the last write of the key (dynakv tracks writes, not reads).",
			"REFCOUNT <key>", "    Return the number of references of the value associated with the specified",
			"    <key>.",
			"HELP", "    Print this help.")
		return
	}
	if len(args) != 3 || (sub != "encoding" && sub != "freq" && sub != "idletime" && sub != "refcount") {
		r.err(unknownSubcommand("object", args[1]))
		return
	}
	v, ok, err := s.value(r, args[2])
	switch {
	case err != nil:
		fail(r, err)
	case !ok:
		r.null()
	case sub == "encoding":
		r.bulkString(encoding(v))
	case sub == "freq":
		r.err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	case sub == "idletime":
		r.int(max(0, (s.coord.Now()-v.Time)/1000))
	default:
		r.int(refcount(v))
	}
}

// refcount answers OBJECT REFCOUNT as Redis does: the integers 0-9999 are
// shared objects with a count pinned at INT_MAX, everything else has one
// reference.
func refcount(v replica.Value) int64 {
	if encoding(v) != "int" {
		return 1
	}
	if n, err := strconv.ParseInt(string(v.Bytes), 10, 64); err == nil && n >= 0 && n < 10000 {
		return math.MaxInt32
	}
	return 1
}

// encoding names a value's representation as Redis would: int for a
// counter or a string that is a canonical 64-bit integer, embstr up to 44
// bytes, raw beyond.
func encoding(v replica.Value) string {
	if v.Kind.Container() {
		return "hashtable" // one object per element, as a hash table keeps them
	}
	if v.Counter != nil {
		return "int"
	}
	if n, err := strconv.ParseInt(string(v.Bytes), 10, 64); err == nil && strconv.FormatInt(n, 10) == string(v.Bytes) {
		return "int"
	}
	if len(v.Bytes) <= 44 {
		return "embstr"
	}
	return "raw"
}

// cmdMemoryUsage serves MEMORY USAGE key [SAMPLES n]: the bytes the key
// takes in one replica's store, its name and its encoded object (value,
// clock, siblings) together, before Pebble's own overhead.
func cmdMemoryUsage(s *Server, c *client, args [][]byte, r *reply) {
	if len(args) == 5 && strings.EqualFold(string(args[3]), "samples") {
		if _, err := strconv.ParseInt(string(args[4]), 10, 64); err != nil {
			r.err(errNotInteger)
			return
		}
	} else if len(args) != 3 {
		r.err(errSyntax)
		return
	}
	o, err := s.coord.GetIn(r.ctx, r.pl, args[2], 0)
	if err != nil {
		fail(r, err)
		return
	}
	if _, ok := o.Resolve(s.coord.Now()); !ok {
		r.null()
		return
	}
	r.int(int64(len(args[2]) + len(replica.AppendObject(nil, o))))
}

func cmdMemoryHelp(s *Server, c *client, args [][]byte, r *reply) {
	r.strings("MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"USAGE <key> [SAMPLES <count>]",
		"    Return memory in bytes used by <key> and its value in one replica's store.",
		"HELP", "    Print this help.")
}

// cmdRandomKey serves RANDOMKEY: the first live key from a random ring
// position on, wrapping around once; nil when the cluster holds none.
func cmdRandomKey(s *Server, c *client, args [][]byte, r *reply) {
	all := func([]byte, replica.Kind) bool { return true }
	start := rand.Uint64()
	cursor, wrapped := start, false
	for {
		keys, next, err := s.coord.Scan(s.ctx(), cursor, 1, all)
		if err != nil {
			fail(r, err)
			return
		}
		if len(keys) > 0 {
			r.bulk(keys[0])
			return
		}
		if next == 0 {
			if wrapped {
				r.null()
				return
			}
			wrapped = true
		} else if wrapped && next >= start {
			r.null()
			return
		}
		cursor = next
	}
}

// cmdLastSave serves LASTSAVE: every write is in the node's log as it is
// acknowledged, so the last save is the start of the node or its last
// checkpoint, whichever is later.
func cmdLastSave(s *Server, c *client, args [][]byte, r *reply) {
	r.int(max(s.started.Unix(), s.lastCheckpoint.Load()))
}

// cmdRole serves ROLE: every node is a master of the keys it replicates,
// with no Redis-style replicas.
func cmdRole(s *Server, c *client, args [][]byte, r *reply) {
	r.array(3)
	r.bulkString("master")
	r.int(0)
	r.array(0)
}

// cmdWait serves WAIT numreplicas timeout: how many replicas besides the
// first hold the connection's last write (of a multi-key command, its
// last key's), asking them until numreplicas do or timeout ms pass (0:
// until they do, as Redis). A write is acknowledged once W replicas hold
// it, so the answer is at least W-1 while they keep it.
func cmdWait(s *Server, c *client, args [][]byte, r *reply) {
	want, err1 := strconv.ParseInt(string(args[1]), 10, 64)
	ms, err2 := strconv.ParseInt(string(args[2]), 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		r.err(errNotInteger)
		return
	case ms < 0:
		r.err("ERR timeout is negative")
		return
	}
	key, dot := c.lastWrite()
	if dot.Counter == 0 {
		r.int(int64(max(s.opts.Copies-1, 0))) // no write to wait for: every replica has all of them
		return
	}
	deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
	for {
		// Each round asks every replica, with a round's own time limit:
		// one that does not answer counts as not holding the write.
		ctx, cancel := context.WithTimeout(r.ctx, s.opts.ForwardTimeout)
		n, err := s.coord.Holders(ctx, key, dot)
		cancel()
		if err != nil {
			fail(r, err)
			return
		}
		got := int64(max(n-1, 0))
		if got >= want || (ms > 0 && time.Now().After(deadline)) || r.ctx.Err() != nil {
			r.int(got)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cmdLatency serves LATENCY with the latency monitor off, as Redis's
// default latency-monitor-threshold 0 has it: no events are recorded.
func cmdLatency(s *Server, c *client, args [][]byte, r *reply) {
	switch sub := strings.ToLower(string(args[1])); sub {
	case "latest":
		r.array(0)
	case "history":
		if len(args) != 3 {
			r.err(wrongArity("latency|history"))
			return
		}
		r.array(0)
	case "reset":
		r.int(0)
	case "doctor":
		r.bulkString("Dave, no latency spike was observed during the lifetime of this instance, nice job! The latency monitor is off (latency-monitor-threshold 0): SLOWLOG and the dynakv_command_duration_seconds metric show where time goes.\n")
	case "help":
		r.strings("LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"DOCTOR", "    Return a human readable latency analysis report.",
			"HISTORY <event>", "    Return time-latency samples for the <event> class.",
			"LATEST", "    Return the latest latency samples for all events.",
			"RESET [<event> ...]", "    Reset latency data of one or more <event> classes.",
			"HELP", "    Print this help.")
	default:
		r.err(unknownSubcommand("latency", args[1]))
	}
}

// cmdReset serves RESET: the connection goes back to its state at
// connect: no name, authenticated only when no password is set.
func cmdReset(s *Server, c *client, args [][]byte, r *reply) {
	c.setName("")
	c.authed = s.opts.RequirePass == ""
	s.unsubscribeAll(c)
	c.resp3.Store(false)
	c.tx, c.watches = nil, nil
	c.replyOff, c.skipNext = false, false
	r.silent = false
	r.status("RESET")
}

// cmdClientNoEvict serves CLIENT NO-EVICT and NO-TOUCH: dynakv neither
// evicts clients nor keys, nor tracks access, so ON and OFF change nothing.
func cmdClientNoEvict(s *Server, c *client, args [][]byte, r *reply) {
	switch strings.ToLower(string(args[2])) {
	case "on", "off":
		r.ok()
	default:
		r.err(errSyntax)
	}
}

// cmdClientKill serves CLIENT KILL addr and CLIENT KILL [ID id] [ADDR
// addr] [LADDR addr] [USER name] [SKIPME yes|no] [MAXAGE s]: the matching
// connections are closed.
func cmdClientKill(s *Server, c *client, args [][]byte, r *reply) {
	if len(args) == 3 { // the old form: one address, OK or an error
		n := s.killClients(c, func(o *client) bool { return o.addr == string(args[2]) }, false)
		if n == 0 {
			r.err("ERR No such client")
			return
		}
		r.ok()
		return
	}
	if len(args)%2 != 0 {
		r.err(errSyntax)
		return
	}
	var tests []func(*client) bool
	skipMe := true
	for i := 2; i < len(args); i += 2 {
		v := string(args[i+1])
		switch strings.ToLower(string(args[i])) {
		case "id":
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				r.err("ERR client-id should be greater than 0")
				return
			}
			tests = append(tests, func(o *client) bool { return o.id == id })
		case "addr":
			tests = append(tests, func(o *client) bool { return o.addr == v })
		case "laddr":
			tests = append(tests, func(o *client) bool { return o.laddr == v })
		case "user":
			tests = append(tests, func(*client) bool { return v == "default" })
		case "type":
			t := strings.ToLower(v)
			if t != "normal" && t != "master" && t != "replica" && t != "slave" && t != "pubsub" {
				r.err(sanitize("ERR Unknown client type '" + v + "'"))
				return
			}
			tests = append(tests, func(*client) bool { return t == "normal" })
		case "skipme":
			switch strings.ToLower(v) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				r.err(errSyntax)
				return
			}
		case "maxage":
			age, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				r.err(errNotInteger)
				return
			}
			tests = append(tests, func(o *client) bool { return time.Since(o.created) >= time.Duration(age)*time.Second })
		default:
			r.err(errSyntax)
			return
		}
	}
	match := func(o *client) bool {
		for _, t := range tests {
			if !t(o) {
				return false
			}
		}
		return true
	}
	r.int(int64(s.killClients(c, match, skipMe)))
}

// killClients closes the connections that match, this one too unless
// skipMe, and returns how many.
func (s *Server) killClients(self *client, match func(*client) bool, skipMe bool) int {
	n := 0
	for _, o := range s.clientList() {
		if (skipMe && o == self) || !match(o) {
			continue
		}
		if o == self {
			o.quit = true // its reply goes out first, then it closes
		} else {
			_ = o.conn.Close()
		}
		n++
	}
	return n
}

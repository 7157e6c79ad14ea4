package resp

import (
	"crypto/subtle"
	"strconv"
	"strings"
	"time"
)

// redisVersion is the Redis version dynakv answers as, for clients that
// decide what to send by it.
const redisVersion = "7.2.0"

func cmdPing(s *Server, c *client, args [][]byte, r *reply) {
	switch {
	case len(args) > 2:
		r.err(wrongArity("ping"))
	case c.subscribed() && !r.resp3:
		pingSubscribed(args, r)
		return
	}
	switch len(args) {
	case 1:
		r.status("PONG")
	case 2:
		r.bulk(args[1])
	default:
		r.err(wrongArity("ping"))
	}
}

func cmdEcho(s *Server, c *client, args [][]byte, r *reply) { r.bulk(args[1]) }

func cmdQuit(s *Server, c *client, args [][]byte, r *reply) {
	r.ok()
	c.quit = true
}

func cmdSelect(s *Server, c *client, args [][]byte, r *reply) {
	db, err := strconv.ParseInt(string(args[1]), 10, 64)
	switch {
	case err != nil:
		r.err(errNotInteger)
	case db != 0:
		r.err(errDBIndex)
	default:
		r.ok()
	}
}

func cmdTime(s *Server, c *client, args [][]byte, r *reply) {
	now := time.Now()
	r.array(2)
	r.bulkInt(now.Unix())
	r.bulkInt(int64(now.Nanosecond() / 1000))
}

// checkPassword reports whether user and pass authenticate against
// requirepass: the only user is "default", as in Redis without ACLs.
func (s *Server) checkPassword(user, pass []byte) bool {
	if user != nil && string(user) != "default" {
		return false
	}
	want := s.opts.RequirePass
	return want == "" || subtle.ConstantTimeCompare(pass, []byte(want)) == 1
}

func cmdAuth(s *Server, c *client, args [][]byte, r *reply) {
	var user, pass []byte
	switch len(args) {
	case 2:
		pass = args[1]
		if s.opts.RequirePass == "" {
			r.err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
	case 3:
		user, pass = args[1], args[2]
	default:
		r.err(errSyntax)
		return
	}
	if !s.checkPassword(user, pass) {
		r.err(errWrongPass)
		return
	}
	c.authed = true
	r.ok()
}

func cmdHello(s *Server, c *client, args [][]byte, r *reply) {
	i, proto := 1, 2
	if c.resp3.Load() {
		proto = 3
	}
	if len(args) > 1 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			r.err("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 && v != 3 {
			r.err(errNoProto)
			return
		}
		proto, i = int(v), 2
	}
	var user, pass, name []byte
	var auth, setName bool
	for ; i < len(args); i++ {
		switch opt := strings.ToLower(string(args[i])); {
		case opt == "auth" && i+2 < len(args):
			user, pass, auth = args[i+1], args[i+2], true
			i += 2
		case opt == "setname" && i+1 < len(args):
			name, setName = args[i+1], true
			i++
		default:
			r.err(sanitize("ERR Syntax error in HELLO option '" + string(args[i]) + "'"))
			return
		}
	}
	if auth {
		if !s.checkPassword(user, pass) {
			r.err(errWrongPass)
			return
		}
		c.authed = true
	}
	if !c.authed {
		r.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		if !validName(string(name)) {
			r.err("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.setName(string(name))
	}
	c.resp3.Store(proto == 3)
	r.resp3 = proto == 3
	r.mapLen(7)
	r.bulkString("server")
	r.bulkString("redis")
	r.bulkString("version")
	r.bulkString(redisVersion)
	r.bulkString("proto")
	r.int(int64(proto))
	r.bulkString("id")
	r.int(c.id)
	r.bulkString("mode")
	r.bulkString("standalone")
	r.bulkString("role")
	r.bulkString("master")
	r.bulkString("modules")
	r.array(0)
}

func cmdClientSetName(s *Server, c *client, args [][]byte, r *reply) {
	if !validName(string(args[2])) {
		r.err("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	c.setName(string(args[2]))
	r.ok()
}

func cmdClientGetName(s *Server, c *client, args [][]byte, r *reply) {
	if n := c.name(); n != "" {
		r.bulkString(n)
		return
	}
	r.null()
}

func cmdClientID(s *Server, c *client, args [][]byte, r *reply) { r.int(c.id) }

func cmdClientSetInfo(s *Server, c *client, args [][]byte, r *reply) {
	attr, val := strings.ToLower(string(args[2])), string(args[3])
	if attr != "lib-name" && attr != "lib-ver" {
		r.err(sanitize("ERR Unrecognized option '" + string(args[2]) + "'"))
		return
	}
	if !validName(val) {
		r.err("ERR " + attr + " cannot contain spaces, newlines or special characters.")
		return
	}
	c.mu.Lock()
	if attr == "lib-name" {
		c.mu.libName = val
	} else {
		c.mu.libVer = val
	}
	c.mu.Unlock()
	r.ok()
}

func cmdClientInfo(s *Server, c *client, args [][]byte, r *reply) {
	r.verbatim(c.info(time.Now()))
}

func cmdClientList(s *Server, c *client, args [][]byte, r *reply) {
	var ids map[int64]bool
	kind := "" // every client; "normal" or "pubsub" those in that state; "none" none
	for i := 2; i < len(args); i++ {
		switch opt := strings.ToLower(string(args[i])); {
		case opt == "type" && i+1 < len(args):
			switch t := strings.ToLower(string(args[i+1])); t {
			case "normal", "pubsub":
				kind = t
			case "master", "replica", "slave":
				kind = "none"
			default:
				r.err(sanitize("ERR Unknown client type '" + t + "'"))
				return
			}
			i++
		case opt == "id" && i+1 < len(args):
			ids = map[int64]bool{}
			for i++; i < len(args); i++ {
				id, err := strconv.ParseInt(string(args[i]), 10, 64)
				if err != nil || id <= 0 {
					r.err("ERR Invalid client ID")
					return
				}
				ids[id] = true
			}
		default:
			r.err(errSyntax)
			return
		}
	}
	var b strings.Builder
	now := time.Now()
	for _, cl := range s.clientList() {
		pubsub := cl.subscribed()
		if (kind == "" || (kind == "normal" && !pubsub) || (kind == "pubsub" && pubsub)) && (ids == nil || ids[cl.id]) {
			b.WriteString(cl.info(now))
		}
	}
	r.verbatim(b.String())
}

func cmdClientHelp(s *Server, c *client, args [][]byte, r *reply) {
	r.helpLines("CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"GETNAME", "    Return the name of the current connection.",
		"ID", "    Return the ID of the current connection.",
		"INFO", "    Return information about the current client connection.",
		"LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]", "    Return information about client connections.",
		"SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
		"SETNAME <name>", "    Assign the name <name> to the current connection.",
		"HELP", "    Print this help.")
}

// helpLines writes a HELP reply: an array of status lines.
func (r *reply) helpLines(lines ...string) {
	r.array(len(lines))
	for _, l := range lines {
		r.status(l)
	}
}

// Command bare is the ceiling bench/compare.sh measures dynakv against: a
// redcon server over a map behind one mutex, which answers SET, GET and
// PING and nothing else, keeps nothing on disk and replicates nothing. It
// is the least a Go server with a goroutine per connection can do per
// request, so its ratio to redis-server on the same machine is as close
// as dynakv's front end can come; what dynakv falls short of it is the
// cost of the store, the clocks and the replication.
//
//	go run ./bench/bare -addr 127.0.0.1:7600
package main

import (
	"flag"
	"log"
	"strings"
	"sync"

	"github.com/tidwall/redcon"
)

// store is the map the commands work on.
type store struct {
	mu sync.Mutex
	m  map[string][]byte
}

// serve answers one command. Unknown commands (redis-benchmark's CONFIG
// GET, for one) get an error, as from a server that lacks them.
func (s *store) serve(conn redcon.Conn, cmd redcon.Command) {
	name := strings.ToLower(string(cmd.Args[0]))
	switch {
	case name == "set" && len(cmd.Args) == 3:
		v := append([]byte(nil), cmd.Args[2]...)
		s.mu.Lock()
		s.m[string(cmd.Args[1])] = v
		s.mu.Unlock()
		conn.WriteString("OK")
	case name == "get" && len(cmd.Args) == 2:
		s.mu.Lock()
		v, ok := s.m[string(cmd.Args[1])]
		s.mu.Unlock()
		if !ok {
			conn.WriteNull()
			return
		}
		conn.WriteBulk(v)
	case name == "ping":
		conn.WriteString("PONG")
	default:
		conn.WriteError("ERR unknown command '" + name + "'")
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7600", "address to serve on")
	flag.Parse()
	s := &store{m: map[string][]byte{}}
	log.Fatal(redcon.ListenAndServe(*addr, s.serve, nil, nil))
}

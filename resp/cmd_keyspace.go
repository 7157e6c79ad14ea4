package resp

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/dynakv/dynakv/replica"
)

// scanArgs parses SCAN's MATCH, COUNT and TYPE options into a filter.
func scanArgs(opts [][]byte) (match func([]byte, replica.Kind) bool, count int, msg string) {
	var pattern []byte
	count = 10
	var typ string // any type
	for i := 0; i < len(opts); i++ {
		if i+1 == len(opts) {
			return nil, 0, errSyntax
		}
		switch string(bytes.ToUpper(opts[i])) {
		case "MATCH":
			pattern = opts[i+1]
		case "COUNT":
			n, err := strconv.Atoi(string(opts[i+1]))
			if err != nil {
				return nil, 0, errNotInteger
			}
			if n < 1 {
				return nil, 0, errSyntax
			}
			count = n
		case "TYPE":
			typ = strings.ToLower(string(opts[i+1]))
		default:
			return nil, 0, errSyntax
		}
		i++
	}
	match = func(key []byte, kind replica.Kind) bool {
		return (typ == "" || typ == typeName(kind)) && (pattern == nil || globMatch(pattern, key, false))
	}
	return match, count, ""
}

func cmdScan(s *Server, c *client, args [][]byte, r *reply) {
	cursor, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		r.err("ERR invalid cursor")
		return
	}
	match, count, msg := scanArgs(args[2:])
	if msg != "" {
		r.err(msg)
		return
	}
	keys, next, err := s.coord.Scan(s.ctx(), cursor, count, match)
	if err != nil {
		fail(r, err)
		return
	}
	r.array(2)
	r.bulkString(strconv.FormatUint(next, 10))
	r.array(len(keys))
	for _, k := range keys {
		r.bulk(k)
	}
}

func cmdKeys(s *Server, c *client, args [][]byte, r *reply) {
	pattern := args[1]
	var all [][]byte
	cursor := uint64(0)
	for {
		keys, next, err := s.coord.Scan(s.ctx(), cursor, 1000, func(k []byte, _ replica.Kind) bool { return globMatch(pattern, k, false) })
		if err != nil {
			fail(r, err)
			return
		}
		all = append(all, keys...)
		if next == 0 {
			break
		}
		cursor = next
	}
	r.array(len(all))
	for _, k := range all {
		r.bulk(k)
	}
}

// cmdFlushAll serves FLUSHALL and FLUSHDB; ASYNC and SYNC both wait.
func cmdFlushAll(s *Server, c *client, args [][]byte, r *reply) {
	if len(args) == 2 && !bytes.EqualFold(args[1], []byte("async")) && !bytes.EqualFold(args[1], []byte("sync")) {
		r.err(errSyntax)
		return
	}
	if len(args) > 2 {
		r.err(errSyntax)
		return
	}
	if err := s.coord.Flush(s.ctx()); err != nil {
		fail(r, err)
		return
	}
	r.ok()
}

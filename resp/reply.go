package resp

import (
	"context"
	"strconv"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
	"github.com/tidwall/redcon"
)

// reply accumulates one command's RESP reply. Handlers write into it; the
// server copies finished replies to the connection in command order, which
// lets a pipeline's commands run concurrently.
type reply struct {
	b []byte
	// ctx is what the command's requests run under: the server's.
	ctx context.Context
	// pl, when set, is what the pipeline lends a command it runs in line:
	// the deferred waits of its writes, a read started ahead.
	pl *coord.Pipelined
	// deferred is set when the command left a write to be synced.
	deferred bool
	// lastKey and lastDot are the key and dot of the command's last
	// write, for WAIT.
	lastKey []byte
	lastDot replica.Dot
	// silent is set for a command whose reply CLIENT REPLY OFF or SKIP
	// withholds.
	silent bool
	// resp3 is set for a client that asked for RESP3 (HELLO 3): nulls,
	// maps, sets, verbatim strings and pushes take their RESP3 types.
	resp3 bool
}

func (r *reply) status(s string)     { r.b = redcon.AppendString(r.b, s) }
func (r *reply) ok()                 { r.b = append(r.b, "+OK\r\n"...) }
func (r *reply) err(s string)        { r.b = redcon.AppendError(r.b, s) }
func (r *reply) bulk(v []byte)       { r.b = redcon.AppendBulk(r.b, v) }
func (r *reply) bulkString(s string) { r.b = redcon.AppendBulkString(r.b, s) }
func (r *reply) array(n int)         { r.b = redcon.AppendArray(r.b, n) }
func (r *reply) int(n int64)         { r.b = redcon.AppendInt(r.b, n) }

// null writes a missing value: RESP2's null bulk string.
func (r *reply) null() {
	if r.resp3 {
		r.b = append(r.b, "_\r\n"...)
		return
	}
	r.b = append(r.b, "$-1\r\n"...)
}

// nullArray writes RESP2's null array (an aborted EXEC, an unknown
// command's COMMAND INFO); RESP3 has one null.
func (r *reply) nullArray() {
	if r.resp3 {
		r.b = append(r.b, "_\r\n"...)
		return
	}
	r.b = append(r.b, "*-1\r\n"...)
}

// mapLen starts a map of n pairs: a flat array of 2n in RESP2.
func (r *reply) mapLen(n int) { r.aggregate('%', n, 2*n) }

// setLen starts a set of n members: an array in RESP2.
func (r *reply) setLen(n int) { r.aggregate('~', n, n) }

// pushLen starts an out-of-band message (pub/sub): an array in RESP2.
func (r *reply) pushLen(n int) { r.aggregate('>', n, n) }

func (r *reply) aggregate(kind byte, n, resp2 int) {
	if !r.resp3 {
		r.array(resp2)
		return
	}
	r.b = append(r.b, kind)
	r.b = strconv.AppendInt(r.b, int64(n), 10)
	r.b = append(r.b, '\r', '\n')
}

// verbatim writes text meant for people (INFO, CLIENT LIST): RESP3's
// verbatim string of format txt, a bulk string in RESP2.
func (r *reply) verbatim(s string) {
	if !r.resp3 {
		r.bulkString(s)
		return
	}
	r.b = append(r.b, '=')
	r.b = strconv.AppendInt(r.b, int64(len(s)+4), 10)
	r.b = append(r.b, "\r\ntxt:"...)
	r.b = append(r.b, s...)
	r.b = append(r.b, '\r', '\n')
}

// bulkInt writes n as a bulk string, as Redis does for numbers in TIME.
func (r *reply) bulkInt(n int64) { r.bulkString(strconv.FormatInt(n, 10)) }

// strings writes an array of bulk strings.
func (r *reply) strings(ss ...string) {
	r.array(len(ss))
	for _, s := range ss {
		r.bulkString(s)
	}
}

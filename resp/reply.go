package resp

import (
	"context"
	"strconv"

	"github.com/dynakv/dynakv/coord"
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
}

func (r *reply) status(s string)     { r.b = redcon.AppendString(r.b, s) }
func (r *reply) ok()                 { r.b = append(r.b, "+OK\r\n"...) }
func (r *reply) err(s string)        { r.b = redcon.AppendError(r.b, s) }
func (r *reply) bulk(v []byte)       { r.b = redcon.AppendBulk(r.b, v) }
func (r *reply) bulkString(s string) { r.b = redcon.AppendBulkString(r.b, s) }
func (r *reply) null()               { r.b = append(r.b, "$-1\r\n"...) }
func (r *reply) nullArray()          { r.b = append(r.b, "*-1\r\n"...) }
func (r *reply) array(n int)         { r.b = redcon.AppendArray(r.b, n) }
func (r *reply) int(n int64)         { r.b = redcon.AppendInt(r.b, n) }

// bulkInt writes n as a bulk string, as Redis does for numbers in TIME.
func (r *reply) bulkInt(n int64) { r.bulkString(strconv.FormatInt(n, 10)) }

// strings writes an array of bulk strings.
func (r *reply) strings(ss ...string) {
	r.array(len(ss))
	for _, s := range ss {
		r.bulkString(s)
	}
}

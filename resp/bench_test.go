package resp

import (
	"context"
	"testing"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// mapCoord is a coordinator over a map: the benchmarks measure the front
// end's own work, not storage.
type mapCoord map[string]replica.Object

func (m mapCoord) GetIn(ctx context.Context, pl *coord.Pipelined, key []byte, r int) (replica.Object, error) {
	return m[string(key)], nil
}
func (m mapCoord) WriteIn(ctx context.Context, pl *coord.Pipelined, key []byte, op coord.Op) (coord.Result, error) {
	return coord.Result{Written: true}, nil
}
func (m mapCoord) DBSize(ctx context.Context) (int64, int64, error) { return int64(len(m)), 0, nil }
func (m mapCoord) Scan(ctx context.Context, cursor uint64, count int, match func([]byte, replica.Kind) bool) ([][]byte, uint64, error) {
	return nil, 0, nil
}
func (m mapCoord) Flush(ctx context.Context) error                           { return nil }
func (m mapCoord) Leader([]byte) (string, error)                             { return "", nil }
func (m mapCoord) Unresponsive(string)                                       {}
func (m mapCoord) Holders(context.Context, []byte, replica.Dot) (int, error) { return 1, nil }
func (m mapCoord) Now() int64                                                { return 0 }
func (m mapCoord) Local(key []byte) bool                                     { return true }
func (m mapCoord) Prefetch(context.Context, []byte) *coord.Read              { return nil }
func (m mapCoord) CountKeysInSlot(context.Context, int) (int64, error)       { return 0, nil }
func (m mapCoord) KeysInSlot(context.Context, int, int) ([][]byte, error)    { return nil, nil }
func (m mapCoord) Seal([]byte, replica.Clock) (string, error)                { return "", nil }
func (m mapCoord) Open([]byte, string) (replica.Clock, error)                { return nil, nil }
func (m mapCoord) Container(context.Context, *coord.Pipelined, []byte, replica.Kind) error {
	return nil
}
func (m mapCoord) Observe(ctx context.Context, key []byte) (replica.Object, error) {
	return m.GetIn(ctx, nil, key, 0)
}
func (m mapCoord) NewGroup([]byte) (*coord.Group, error)          { return nil, nil }
func (m mapCoord) Commit(context.Context, *coord.Group) error     { return nil }
func (m mapCoord) HasContainer(key []byte, typ replica.Kind) bool { return true }
func (m mapCoord) Elements(context.Context, []byte, byte, []byte, int) ([]replica.KeyObject, bool, error) {
	return nil, false, nil
}
func (m mapCoord) Count(context.Context, []byte, byte) (replica.Tally, bool, error) {
	return replica.Tally{}, true, nil
}

// BenchmarkDispatch is a GET and a SET through the command table: lookup,
// arity, parsing, the call and the reply.
func BenchmarkDispatch(b *testing.B) {
	o := replica.Update(replica.Object{}, nil, replica.Sibling{Value: make([]byte, 100), Time: 1}, replica.Dot{Actor: "a", Counter: 1})
	s := NewServer(mapCoord{"key": o}, Options{})
	c := &client{authed: true, guard: &guard{}}
	get := [][]byte{[]byte("GET"), []byte("key")}
	set := [][]byte{[]byte("SET"), []byte("key"), make([]byte, 100)}
	var r reply
	b.ReportAllocs()
	for b.Loop() {
		for _, args := range [][][]byte{get, set} {
			r.b = r.b[:0]
			if spec := s.prepare(c, args, &r); spec != nil {
				s.run(spec, c, args, &r)
			}
		}
	}
}

// BenchmarkEval is an EVAL that calls GET once: the script's interpreter
// state, its redis.call and the conversions, on a coordinator over a map.
func BenchmarkEval(b *testing.B) {
	o := replica.Update(replica.Object{}, nil, replica.Sibling{Value: []byte("v"), Time: 1}, replica.Dot{Actor: "a", Counter: 1})
	s := NewServer(mapCoord{"key": o}, Options{})
	c := &client{authed: true, guard: &guard{}}
	eval := [][]byte{[]byte("EVAL"), []byte("return redis.call('get', KEYS[1])"), []byte("1"), []byte("key")}
	var r reply
	b.ReportAllocs()
	for b.Loop() {
		r.b = r.b[:0]
		if spec := s.prepare(c, eval, &r); spec != nil {
			s.run(spec, c, eval, &r)
		}
	}
	if string(r.b) != "$1\r\nv\r\n" {
		b.Fatalf("EVAL answered %q", r.b)
	}
}

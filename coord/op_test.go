package coord

import (
	"testing"

	"github.com/dynakv/dynakv/replica"
)

func TestOpApply(t *testing.T) {
	empty := replica.Object{}
	full := replica.Update(empty, nil, replica.Sibling{Value: []byte("old"), Time: 1, Expiry: 500}, replica.Dot{Actor: "a", Counter: 1})
	cases := []struct {
		name    string
		cur     replica.Object
		op      Op
		written bool
		value   string // what GET answers afterwards ("" for absent)
		expiry  int64
	}{
		{"put", empty, Op{Kind: Put, Value: []byte("v")}, true, "v", 0},
		{"nx on absent", empty, Op{Kind: Put, Value: []byte("v"), Cond: IfAbsent}, true, "v", 0},
		{"nx on present", full, Op{Kind: Put, Value: []byte("v"), Cond: IfAbsent}, false, "old", 500},
		{"xx on absent", empty, Op{Kind: Put, Value: []byte("v"), Cond: IfPresent}, false, "", 0},
		{"xx on present", full, Op{Kind: Put, Value: []byte("v"), Cond: IfPresent}, true, "v", 0},
		{"keepttl", full, Op{Kind: Put, Value: []byte("v"), KeepTTL: true}, true, "v", 500},
		{"delete present", full, Op{Kind: Delete}, true, "", 0},
		{"delete absent writes nothing", empty, Op{Kind: Delete}, false, "", 0},
		{"ddel with context", empty, Op{Kind: Delete, HasContext: true}, true, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, res, ok, err := c.op.apply(c.cur, replica.Dot{Actor: "a", Counter: 2}, 10)
			if err != nil || ok != c.written || res.Written != c.written {
				t.Fatalf("ok=%v written=%v err=%v, want %v", ok, res.Written, err, c.written)
			}
			s, live := next.Resolve(10)
			if got := string(s.Bytes); live != (c.value != "") || got != c.value || s.Expiry != c.expiry {
				t.Fatalf("afterwards GET = %q (live %v, expiry %d), want %q expiry %d", got, live, s.Expiry, c.value, c.expiry)
			}
		})
	}
}

func TestOpSiblingCap(t *testing.T) {
	var o replica.Object
	op := Op{Kind: Put, Value: []byte("v"), HasContext: true} // empty context: always a new sibling
	for i := range replica.MaxSiblings {
		next, _, ok, err := op.apply(o, replica.Dot{Actor: "a", Counter: uint64(i + 1)}, int64(i))
		if err != nil || !ok {
			t.Fatalf("write %d refused: %v", i, err)
		}
		o = next
	}
	if _, _, _, err := op.apply(o, replica.Dot{Actor: "a", Counter: 999}, 999); err != ErrTooManySiblings {
		t.Fatalf("write past the cap: %v, want ErrTooManySiblings", err)
	}
}

func TestReadModifyWriteOps(t *testing.T) {
	now := int64(1000)
	val := func(v string, expiry int64) replica.Object {
		o := replica.Update(replica.Object{}, nil, replica.Sibling{Value: []byte(v), Time: 1, Expiry: expiry}, replica.Dot{Actor: "a", Counter: 1})
		return o
	}
	cases := []struct {
		name    string
		cur     replica.Object
		op      Op
		err     error
		written bool
		after   string
		expiry  int64
		resInt  int64
	}{
		{"incr absent", replica.Object{}, Op{Kind: Incr, Delta: 5}, nil, true, "5", 0, 5},
		{"incr string keeps ttl", val("10", 5000), Op{Kind: Incr, Delta: -3}, nil, true, "7", 5000, 7},
		{"incr text", val("abc", 0), Op{Kind: Incr, Delta: 1}, ErrNotInteger, false, "abc", 0, 0},
		{"incr overflow", val("9223372036854775807", 0), Op{Kind: Incr, Delta: 1}, ErrOverflow, false, "9223372036854775807", 0, 0},
		{"append", val("ab", 0), Op{Kind: Append, Value: []byte("cd")}, nil, true, "abcd", 0, 4},
		{"incrbyfloat", val("1.5", 0), Op{Kind: IncrFloat, FloatDelta: 0.25}, nil, true, "1.75", 0, 0},
		{"incrbyfloat text", val("x", 0), Op{Kind: IncrFloat, FloatDelta: 1}, ErrNotFloat, false, "x", 0, 0},
		{"expire", val("v", 0), Op{Kind: Expire, Expiry: 9000}, nil, true, "v", 9000, 0},
		{"expire nx with ttl", val("v", 5000), Op{Kind: Expire, Expiry: 9000, ExpireCond: ExpireNX}, nil, false, "v", 5000, 0},
		{"expire gt no ttl", val("v", 0), Op{Kind: Expire, Expiry: 9000, ExpireCond: ExpireGT}, nil, false, "v", 0, 0},
		{"expire lt no ttl", val("v", 0), Op{Kind: Expire, Expiry: 9000, ExpireCond: ExpireLT}, nil, true, "v", 9000, 0},
		{"expire in the past", val("v", 0), Op{Kind: Expire, Expiry: 500}, nil, true, "", 0, 0},
		{"persist", val("v", 5000), Op{Kind: Expire, Persist: true, ExpireCond: ExpireXX}, nil, true, "v", 0, 0},
		{"expire absent", replica.Object{}, Op{Kind: Expire, Expiry: 9000}, nil, false, "", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, res, ok, err := c.op.apply(c.cur, replica.Dot{Actor: "b", Counter: 5}, now)
			if err != c.err || ok != c.written {
				t.Fatalf("ok=%v err=%v, want %v %v", ok, err, c.written, c.err)
			}
			v, _ := next.Resolve(now)
			if string(v.Bytes) != c.after || v.Expiry != c.expiry || res.Int != c.resInt {
				t.Fatalf("afterwards %q expiry %d (result %d), want %q expiry %d (%d)", v.Bytes, v.Expiry, res.Int, c.after, c.expiry, c.resInt)
			}
		})
	}
}

func TestWireRoundTrip(t *testing.T) {
	op := Op{Kind: Expire, Value: []byte("v"), Context: replica.Clock{{Actor: "a#1", Counter: 3}}, HasContext: true,
		Cond: IfPresent, Expiry: 12345, KeepTTL: true, Persist: true, WantOld: true, ExpireCond: ExpireLT, Delta: -7, FloatDelta: 2.5, W: 2}
	got, err := decodeOp(encodeOp(op))
	if err != nil || got.Kind != op.Kind || string(got.Value) != "v" || !got.Context.Equal(op.Context) || !got.HasContext ||
		got.Cond != op.Cond || got.Expiry != op.Expiry || !got.KeepTTL || !got.Persist || got.ExpireCond != op.ExpireCond ||
		got.Delta != op.Delta || got.FloatDelta != op.FloatDelta || got.W != op.W || !got.WantOld {
		t.Fatalf("op round trip: %+v, %v", got, err)
	}
	res := Result{Written: true, Old: []byte("o"), HadOld: true, Int: 42, New: []byte("1.5"), Context: op.Context}
	back, err := decodeResult(encodeResult(res, nil))
	if err != nil || !back.Written || string(back.Old) != "o" || !back.HadOld || back.Int != 42 || string(back.New) != "1.5" || !back.Context.Equal(res.Context) {
		t.Fatalf("result round trip: %+v, %v", back, err)
	}
	if _, err := decodeResult(encodeResult(Result{}, ErrNotInteger)); err == nil || err.Error() != "value is not an integer or out of range" {
		t.Fatalf("error round trip: %v", err)
	}
	for i := range encodeOp(op) {
		if _, err := decodeOp(encodeOp(op)[:i]); err == nil {
			t.Fatalf("truncated op of %d bytes decoded", i)
		}
	}
}

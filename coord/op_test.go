package coord

import (
	"testing"

	"github.com/dynakv/dynakv/replica"
)

func TestOpApply(t *testing.T) {
	empty := replica.Object{}
	full, _ := replica.Update(empty, nil, replica.Sibling{Value: []byte("old"), Time: 1, Expiry: 500}, "a")
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
			next, res, ok, err := c.op.apply(c.cur, "a", 10)
			if err != nil || ok != c.written || res.Written != c.written {
				t.Fatalf("ok=%v written=%v err=%v, want %v", ok, res.Written, err, c.written)
			}
			s, live := next.Pick(10)
			if got := string(s.Value); live != (c.value != "") || got != c.value || s.Expiry != c.expiry {
				t.Fatalf("afterwards GET = %q (live %v, expiry %d), want %q expiry %d", got, live, s.Expiry, c.value, c.expiry)
			}
		})
	}
}

func TestOpSiblingCap(t *testing.T) {
	var o replica.Object
	op := Op{Kind: Put, Value: []byte("v"), HasContext: true} // empty context: always a new sibling
	for i := range replica.MaxSiblings {
		next, _, ok, err := op.apply(o, "a", int64(i))
		if err != nil || !ok {
			t.Fatalf("write %d refused: %v", i, err)
		}
		o = next
	}
	if _, _, _, err := op.apply(o, "a", 999); err != ErrTooManySiblings {
		t.Fatalf("write past the cap: %v, want ErrTooManySiblings", err)
	}
}

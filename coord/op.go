package coord

import (
	"errors"
	"math"
	"math/big"
	"strconv"

	"github.com/dynakv/dynakv/replica"
)

// Kind is what a write does to a key.
type Kind uint8

// The write kinds.
const (
	// Put stores Value.
	Put Kind = iota
	// Delete leaves a tombstone.
	Delete
	// Incr adds Delta to the key as a convergent counter.
	Incr
	// IncrFloat adds the number in Value (long double arithmetic, as
	// Redis: longdouble.go) to the key's number; FloatDelta is what a
	// sender of the previous build sends instead.
	IncrFloat
	// Append appends Value to the key's string.
	Append
	// Expire sets the key's expiry to Expiry (absolute ms), or removes it
	// when Persist is set, under ExpireCond.
	Expire
	// SetRange overwrites the key's string from byte Delta with Value,
	// padding with zero bytes (SETRANGE).
	SetRange
	// Container makes the key a container of Op.Type (HSET's and SADD's
	// header write) unless it is one already; a key of another type
	// answers ErrWrongType.
	Container
	kindEnd
)

// Cond makes a write conditional on the key's presence.
type Cond uint8

// The conditions of SET.
const (
	Always Cond = iota
	IfAbsent
	IfPresent
)

// ExpireCond is EXPIRE's NX, XX, GT or LT.
type ExpireCond uint8

// The conditions of EXPIRE.
const (
	ExpireAlways ExpireCond = iota
	ExpireNX                // only if the key has no expiry
	ExpireXX                // only if it has one
	ExpireGT                // only if the new one is later (no expiry counts as infinite)
	ExpireLT                // only if the new one is sooner
	expireCondEnd
)

// Errors of the read-modify-write kinds, with Redis's wording.
var (
	ErrNotInteger = errors.New("coord: value is not an integer or out of range")
	ErrNotFloat   = errors.New("coord: value is not a valid float")
	ErrOverflow   = errors.New("coord: increment or decrement would overflow")
	ErrNaN        = errors.New("coord: increment would produce NaN or Infinity")
	// ErrTooLong is a SETRANGE past MaxString. The front end checks its
	// own, smaller bound first; this one holds for forwarded writes.
	ErrTooLong = errors.New("coord: string exceeds maximum allowed size (proto-max-bulk-len)")
)

// MaxString bounds the string a SETRANGE can make, as Redis's default
// proto-max-bulk-len does.
const MaxString = 512 << 20

// Op is one write to one key. It is plain data, so that a node outside the
// key's replicas can hand it to one that will coordinate it.
type Op struct {
	Kind Kind
	// Type is the container kind a Container op makes the key.
	Type replica.Kind
	// Removed is joined into the header's removal clock: set by the
	// coordinator when the write removes a container (DEL, SET or an
	// expiry over a hash or set, a new container over an expired one),
	// from the element clocks a read quorum of replicas holds.
	Removed replica.Clock
	Value   []byte
	// Context is the causal context the client read, when HasContext is
	// set (DPUT, DDEL). Without it the write supersedes everything the
	// coordinating replica has seen, as SET and DEL do.
	Context    replica.Clock
	HasContext bool
	Cond       Cond
	// Expiry is the absolute expiry in ms, 0 for none; KeepTTL keeps the
	// expiry of the value being replaced instead.
	Expiry  int64
	KeepTTL bool
	// Persist makes an Expire remove the expiry.
	Persist bool
	// WantOld asks for the value the key held (SET ... GET, GETSET,
	// GETDEL): the coordinator reads it at quorum first.
	WantOld    bool
	ExpireCond ExpireCond
	Delta      int64
	FloatDelta float64
	// W overrides the configured write quorum when > 0.
	W int
	// ReturnObject asks a node the op is forwarded to for the object the
	// write stored (Result.Object): a forwarder that replicates the key
	// merges it, so that its own next writes of the key supersede it.
	ReturnObject bool
	// Deadline, when set, is the time (Unix ms) after which a node that
	// receives the op forwarded must not run it: its sender has given up
	// and answered the client, and running it late would surprise nobody
	// but could run it twice.
	Deadline int64
}

// Result is what a write did.
type Result struct {
	// Written is false when the condition kept the write from happening.
	Written bool
	// Old is the value the key held before, as GET would have answered.
	Old    []byte
	HadOld bool
	// Int is INCR's new value, APPEND's new length.
	Int int64
	// New is INCRBYFLOAT's new value.
	New []byte
	// Context is the context to hand back to the writer (DPUT's and
	// DDEL's reply); it is set only for an op with HasContext.
	Context replica.Clock
	// Dot is the dot minted for the write, and Seen the context it
	// superseded: what its coordinator had seen of the key. A write
	// removes exactly the versions Seen covers.
	Dot  replica.Dot
	Seen replica.Clock
	// Object is the object the write stored at its coordinator.
	Object replica.Object
}

// needsRead reports whether the op decides on the key's current value,
// which the coordinator then reads at quorum first. A DEL without a context
// does, to count what it deleted and to write no tombstone for a key that
// is not there.
func (op *Op) needsRead() bool {
	switch op.Kind {
	case Put:
		return op.Cond != Always || op.KeepTTL || op.WantOld
	case Delete:
		return !op.HasContext
	}
	return true
}

// readRequired reports whether the op must not proceed without its quorum
// read. A counter increment builds correctly on whatever this replica has
// (the counter converges when replicas meet), so it reads at quorum when it
// can, for a fresh reply, and goes on without when it cannot: counters stay
// writable on either side of a partition.
func (op *Op) readRequired() bool {
	return op.needsRead() && op.Kind != Incr
}

// decides reports whether the op decides on the key's current value in a
// way two coordinators could decide differently at the same moment (SET NX
// and XX, SET GET and GETSET, GETDEL, APPEND, INCRBYFLOAT): such writes go
// to the key's first healthy primary, so that with every node up two of
// them never race. Blind writes, DEL and convergent counters stay with
// whichever primary receives them.
func (op *Op) decides() bool {
	switch op.Kind {
	case Put, Delete:
		return op.Cond != Always || op.WantOld
	case Append, IncrFloat, SetRange:
		return true
	}
	return false
}

// apply computes op against cur, the coordinator's merged view of the key,
// at now, with dot the dot minted for it. It returns the object to store
// (ok=false when nothing is written) and the result for the client.
func (op *Op) apply(cur replica.Object, dot replica.Dot, now int64) (next replica.Object, res Result, ok bool, err error) {
	old, had := cur.Resolve(now)
	res.Old, res.HadOld = old.Bytes, had
	if had && old.Kind.Container() && op.stringOnly() {
		return cur, res, false, ErrWrongType
	}
	s := replica.Sibling{Time: now}
	switch op.Kind {
	case Container:
		switch {
		case had && old.Kind == op.Type:
			return cur, res, false, nil
		case had:
			return cur, res, false, ErrWrongType
		}
		s.Kind = op.Type
	case Put:
		if (op.Cond == IfAbsent && had) || (op.Cond == IfPresent && !had) {
			return cur, res, false, nil
		}
		s.Value, s.Expiry = op.Value, op.Expiry
		if op.KeepTTL && had {
			s.Expiry = old.Expiry
		}
	case Delete:
		if op.Type.Container() && (!had || old.Kind != op.Type) {
			return cur, res, false, nil // the container was replaced meanwhile
		}
		if !op.HasContext && !had && len(op.Removed) == 0 {
			return cur, res, false, nil
		}
		s.Tombstone = true
	case Incr:
		c, err := counterOf(old, had)
		if err != nil {
			return cur, res, false, err
		}
		if c, err = c.Add(dot.Actor, op.Delta); err != nil { // shares are the minting actor's
			return cur, res, false, ErrOverflow
		}
		res.Int, _ = c.Value()
		s.Kind, s.Value, s.Expiry = replica.KindCounter, replica.AppendCounter(nil, c), old.Expiry
	case IncrFloat:
		v := new(big.Float)
		if had {
			var ok bool
			if v, ok = ParseLongDouble(old.Bytes); !ok {
				return cur, res, false, ErrNotFloat
			}
		}
		incr, ok := ParseLongDouble(op.Value)
		if len(op.Value) == 0 { // a sender of the previous build
			incr, ok = new(big.Float).SetFloat64(op.FloatDelta), !math.IsNaN(op.FloatDelta) && !math.IsInf(op.FloatDelta, 0)
		}
		if !ok {
			return cur, res, false, ErrNotFloat
		}
		sum, ok := addLongDouble(v, incr)
		if !ok {
			return cur, res, false, ErrNaN
		}
		res.New = formatLongDouble(sum)
		s.Value, s.Expiry = res.New, old.Expiry
	case Append:
		s.Value = append(append([]byte(nil), old.Bytes...), op.Value...)
		s.Expiry = old.Expiry
		res.Int = int64(len(s.Value))
	case SetRange:
		if len(op.Value) == 0 { // Redis writes nothing, and creates no key
			res.Int = int64(len(old.Bytes))
			return cur, res, false, nil
		}
		if op.Delta < 0 || op.Delta > int64(MaxString-len(op.Value)) {
			return cur, res, false, ErrTooLong
		}
		s.Value = overwrite(old.Bytes, int(op.Delta), op.Value)
		s.Expiry = old.Expiry
		res.Int = int64(len(s.Value))
	case Expire:
		if !had || !op.expireAllowed(old.Expiry) {
			return cur, res, false, nil
		}
		s.Value, s.Kind, s.Expiry = old.Bytes, replica.KindBytes, op.Expiry
		if old.Counter != nil {
			s.Kind, s.Value = replica.KindCounter, replica.AppendCounter(nil, *old.Counter)
		} else if old.Kind.Container() {
			s.Kind = old.Kind
		}
		if op.Persist {
			s.Expiry = 0
		} else if op.Expiry <= now {
			s = replica.Sibling{Time: now, Tombstone: true} // Redis deletes the key
		}
	}
	ctx := cur.Context()
	if op.HasContext {
		ctx = op.Context
	}
	next = replica.Update(cur, ctx, s, dot)
	if len(op.Removed) > 0 {
		next.Removed = next.Removed.Join(op.Removed)
	}
	if len(next.Siblings) > replica.MaxSiblings {
		return cur, res, false, ErrTooManySiblings
	}
	res.Written, res.Dot, res.Seen, res.Object = true, dot, ctx, next
	if op.HasContext {
		// Only DPUT and DDEL reply with a context; SET and the rest
		// would make it for nothing, an allocation per write.
		res.Context = replica.ReplyContext(next, ctx, dot)
	}
	return next, res, true, nil
}

// overwrite returns a copy of b with v written at offset, b padded with
// zero bytes to reach it.
// stringOnly reports whether op reads or changes a string value, so that a
// container answers it ErrWrongType; SET (which replaces whatever the key
// holds), DEL and the expiry commands apply to every type.
func (op *Op) stringOnly() bool {
	switch op.Kind {
	case Incr, IncrFloat, Append, SetRange:
		return true
	case Put, Delete:
		return op.WantOld && !op.HasContext
	}
	return false
}

// removes reports whether op, applied to what base holds at now, removes a
// container that base holds (live or expired): the write must then carry
// the container's removal clock. before bounds what it removes: 0, every
// element the replicas hold, for a live container; for an expired one,
// the elements written before it expired (later ones belong to whoever
// re-created it).
func (op *Op) removes(base replica.Object, now int64) (removes bool, before int64) {
	switch op.Kind {
	case Put, Delete, Container:
	case Expire:
		if op.Persist || op.Expiry > now {
			return false, 0
		}
	default:
		return false, 0
	}
	live := false
	for _, s := range base.Siblings {
		switch {
		case s.Tombstone || !s.Kind.Container():
		case s.Live(now):
			live = true
		default:
			removes, before = true, max(before, s.Expiry)
		}
	}
	if live && op.Kind != Container {
		return true, 0
	}
	return removes, before
}

func overwrite(b []byte, offset int, v []byte) []byte {
	out := make([]byte, max(len(b), offset+len(v)))
	copy(out, b)
	copy(out[offset:], v)
	return out
}

// counterOf returns the counter an INCR builds on: the key's counter, a
// new one based on its integer string, or zero.
func counterOf(v replica.Value, had bool) (replica.Counter, error) {
	switch {
	case !had:
		return replica.Counter{}, nil
	case v.Counter != nil:
		return *v.Counter, nil
	}
	base, ok := ParseInteger(v.Bytes)
	if !ok {
		return replica.Counter{}, ErrNotInteger
	}
	return replica.Counter{Base: base, Origin: v.Dot}, nil
}

// ParseInteger parses b as Redis's string2ll does: a 64-bit integer in
// canonical decimal, with no sign but '-', no leading zeros and no "-0",
// so that "+1", "010" and " 1" are not numbers to INCR and HINCRBY.
func ParseInteger(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(b) {
		return 0, false
	}
	return n, true
}

// expireAllowed applies EXPIRE's condition to the key's current expiry.
func (op *Op) expireAllowed(current int64) bool {
	switch op.ExpireCond {
	case ExpireNX:
		return current == 0
	case ExpireXX:
		return current != 0
	case ExpireGT:
		return current != 0 && op.Expiry > current
	case ExpireLT:
		return current == 0 || op.Expiry < current
	}
	return true
}

package coord

import (
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
)

// Cond makes a write conditional on the key's presence.
type Cond uint8

// The conditions of SET.
const (
	Always Cond = iota
	IfAbsent
	IfPresent
)

// Op is one write to one key. It is plain data, so that a node outside the
// key's replicas can hand it to one that will coordinate it.
type Op struct {
	Kind  Kind
	Value []byte
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
	// W overrides the configured write quorum when > 0.
	W int
}

// Result is what a write did.
type Result struct {
	// Written is false when the condition kept the write from happening.
	Written bool
	// Old is the value the key held before, as GET would have answered.
	Old    []byte
	HadOld bool
	// Context is the context to hand back to the writer (DPUT's reply).
	Context replica.Clock
}

// needsRead reports whether the op decides on the key's current value,
// which the coordinator then reads at quorum first. A DEL without a context
// does, to count what it deleted and to write no tombstone for a key that
// is not there.
func (op *Op) needsRead() bool {
	return op.Cond != Always || op.KeepTTL || (op.Kind == Delete && !op.HasContext)
}

// apply computes op against cur, the coordinator's merged view of the key,
// at now. It returns the object to store (ok=false when nothing is
// written) and the result for the client.
func (op *Op) apply(cur replica.Object, actor string, now int64) (next replica.Object, res Result, ok bool, err error) {
	old, had := cur.Pick(now)
	res.Old, res.HadOld = old.Value, had
	switch {
	case op.Cond == IfAbsent && had, op.Cond == IfPresent && !had,
		op.Kind == Delete && !op.HasContext && !had:
		return cur, res, false, nil
	}
	ctx := cur.Context()
	if op.HasContext {
		ctx = op.Context
	}
	s := replica.Sibling{Time: now, Value: op.Value, Expiry: op.Expiry, Tombstone: op.Kind == Delete}
	if op.Kind == Delete {
		s.Value, s.Expiry = nil, 0
	}
	if op.KeepTTL && had {
		s.Expiry = old.Expiry
	}
	next, dot := replica.Update(cur, ctx, s, actor)
	if len(next.Siblings) > replica.MaxSiblings {
		return cur, res, false, ErrTooManySiblings
	}
	res.Written = true
	res.Context = replica.ReplyContext(next, ctx, dot)
	return next, res, true, nil
}

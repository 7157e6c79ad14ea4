package coord

// A quorum is counted the same way for a read (R answers) and a write (W
// acknowledgements): a tally of what has come in and of what still could,
// from which a pure function says whether the request has won, lost or is
// still pending. The read's gather and the write's fanout keep the tally
// up to date as answers arrive and report when it is decided; the rule
// itself lives here alone, table-tested (etcd-raft's quorum package is the
// model).

// vote is where a quorum stands.
type vote uint8

const (
	votePending vote = iota // not decided yet
	voteWon                 // need acknowledgements are in
	voteLost                // too few voters are left to reach need
)

func (v vote) String() string {
	return [...]string{votePending: "pending", voteWon: "won", voteLost: "lost"}[v]
}

// tally counts a quorum: need acknowledgements to win; acks are in, and
// open voters may still acknowledge (each at most once).
type tally struct {
	need int
	acks int
	open int
}

// result says whether the quorum is won, lost, or pending.
func (t tally) result() vote {
	switch {
	case t.acks >= t.need:
		return voteWon
	case t.acks+t.open < t.need:
		return voteLost
	}
	return votePending
}

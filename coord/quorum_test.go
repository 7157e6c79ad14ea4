package coord

import "testing"

func TestTally(t *testing.T) {
	for _, c := range []struct {
		need, acks, open int
		want             vote
	}{
		{need: 2, acks: 0, open: 3, want: votePending},
		{need: 2, acks: 1, open: 1, want: votePending},
		{need: 2, acks: 2, open: 1, want: voteWon},
		{need: 2, acks: 3, open: 0, want: voteWon},
		{need: 2, acks: 1, open: 0, want: voteLost},
		{need: 3, acks: 1, open: 1, want: voteLost},
		{need: 1, acks: 0, open: 0, want: voteLost},
		{need: 1, acks: 1, open: 0, want: voteWon},
		{need: 0, acks: 0, open: 0, want: voteWon}, // nothing to wait for
	} {
		if got := (tally{need: c.need, acks: c.acks, open: c.open}).result(); got != c.want {
			t.Errorf("need %d, %d acks, %d open: %v, want %v", c.need, c.acks, c.open, got, c.want)
		}
	}
}

package coord

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

// A send's context keeps the write's values, drops its cancellation, and
// ends at the deadline: Err before and after, and Done when asked for.
func TestSendCtx(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	cancel()
	deadline := time.Now().Add(50 * time.Millisecond)
	c := &sendCtx{values: parent, deadline: deadline}
	if c.Err() != nil {
		t.Fatalf("Err = %v before the deadline, with the caller's context cancelled", c.Err())
	}
	if d, ok := c.Deadline(); !ok || !d.Equal(deadline) {
		t.Fatalf("Deadline = %v %v", d, ok)
	}
	if v := c.Value(ctxKey{}); v != "v" {
		t.Fatalf("Value = %v", v)
	}
	select {
	case <-c.Done():
		t.Fatal("Done closed before the deadline")
	default:
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the deadline")
	}
	if !time.Now().After(deadline) && !time.Now().Equal(deadline) {
		t.Fatal("Done closed before the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v after Done", c.Err())
	}
	c.stop()

	// Without a Done channel asked for, no timer is made; stop is a no-op.
	idle := &sendCtx{values: parent, deadline: time.Now().Add(time.Hour)}
	idle.stop()
	if idle.timer != nil || idle.Err() != nil {
		t.Fatal("an unused send context made a timer or ended")
	}
}

package resp

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cmdStats are one command's counters, for INFO commandstats: calls that
// ran, their total time, calls refused before running (arity, auth) and
// calls that answered an error.
type cmdStats struct {
	calls, usec, rejected, failed atomic.Int64
}

// errorStats count error replies by prefix (ERR, UNAVAILABLE, WRONGTYPE),
// for INFO errorstats.
type errorStats struct{ m sync.Map } // prefix -> *atomic.Int64

func (e *errorStats) add(prefix string) {
	if prefix == "" {
		return
	}
	v, ok := e.m.Load(prefix)
	if !ok {
		v, _ = e.m.LoadOrStore(prefix, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (e *errorStats) reset() {
	e.m.Range(func(k, _ any) bool { e.m.Delete(k); return true })
}

// observer returns what runs after every call of c: its counters, the
// error counters, and the metrics hook when there is one.
func (s *Server) observer(c *command, metric func(time.Duration, string)) func(time.Duration, string) {
	return func(took time.Duration, errPrefix string) {
		c.stats.calls.Add(1)
		c.stats.usec.Add(took.Microseconds())
		if errPrefix != "" {
			c.stats.failed.Add(1)
			s.errs.add(errPrefix)
		}
		if metric != nil {
			metric(took, errPrefix)
		}
	}
}

// refused counts a call refused before it ran, with the error it got.
func (s *Server) refused(c *command, reply string) {
	if c != nil {
		c.stats.rejected.Add(1)
	}
	prefix, _, _ := strings.Cut(reply, " ")
	s.errs.add(prefix)
}

// eachCommand calls fn for every command and subcommand.
func (s *Server) eachCommand(fn func(c *command)) {
	for _, c := range s.commands {
		fn(c)
		for _, sub := range c.sub {
			fn(sub)
		}
	}
}

// commandStats is INFO's commandstats section: every command called or
// refused at least once, in name order.
func (s *Server) commandStats() []Field {
	var out []Field
	s.eachCommand(func(c *command) {
		calls, usec := c.stats.calls.Load(), c.stats.usec.Load()
		rejected, failed := c.stats.rejected.Load(), c.stats.failed.Load()
		if calls == 0 && rejected == 0 {
			return
		}
		per := 0.0
		if calls > 0 {
			per = float64(usec) / float64(calls)
		}
		out = append(out, Field{"cmdstat_" + c.fullName(),
			fmt.Sprintf("calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d", calls, usec, per, rejected, failed)})
	})
	slices.SortFunc(out, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// errorStatsFields is INFO's errorstats section.
func (s *Server) errorStatsFields() []Field {
	var out []Field
	s.errs.m.Range(func(k, v any) bool {
		out = append(out, Field{"errorstat_" + k.(string), fmt.Sprintf("count=%d", v.(*atomic.Int64).Load())})
		return true
	})
	slices.SortFunc(out, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// resetStats is CONFIG RESETSTAT: the counters INFO shows go back to 0.
func (s *Server) resetStats() {
	s.eachCommand(func(c *command) {
		c.stats.calls.Store(0)
		c.stats.usec.Store(0)
		c.stats.rejected.Store(0)
		c.stats.failed.Store(0)
	})
	s.errs.reset()
	for _, v := range []*atomic.Int64{&s.stats.conns, &s.stats.commands, &s.stats.rejected, &s.stats.hits,
		&s.stats.misses, &s.stats.bytesIn, &s.stats.bytesOut, &s.stats.unknown, &s.stats.protocol} {
		v.Store(0)
	}
}

// opsRate samples the commands processed every 100 ms, as Redis does for
// instantaneous_ops_per_sec, over the last 16 samples.
type opsRate struct {
	mu      sync.Mutex
	samples [16]float64
	n       int
}

const opsSampleEvery = 100 * time.Millisecond

// sampleOps records the command rate until ctx ends.
func (s *Server) sampleOps(ctx context.Context) {
	t := time.NewTicker(opsSampleEvery)
	defer t.Stop()
	last, at := s.stats.commands.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cur := s.stats.commands.Load()
			rate := float64(cur-last) / now.Sub(at).Seconds()
			if cur < last { // CONFIG RESETSTAT
				rate = 0
			}
			last, at = cur, now
			s.ops.mu.Lock()
			s.ops.samples[s.ops.n%len(s.ops.samples)] = rate
			s.ops.n++
			s.ops.mu.Unlock()
		}
	}
}

// opsPerSec is the mean of the samples: instantaneous_ops_per_sec.
func (s *Server) opsPerSec() int64 {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	n := min(s.ops.n, len(s.ops.samples))
	if n == 0 {
		return 0
	}
	sum := 0.0
	for _, v := range s.ops.samples[:n] {
		sum += v
	}
	return int64(sum / float64(n))
}

package antientropy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// BenchmarkExchange repairs two replicas of DYNAKV_AE_KEYS keys (default
// 100 000; the figure uses 1 000 000) of 100 bytes of which 1%
// diverged, and reports the bytes the exchange moved against a full copy
// and against the diverged bytes. Run with -benchtime=1x.
func BenchmarkExchange(b *testing.B) {
	keys := 100000
	if s := os.Getenv("DYNAKV_AE_KEYS"); s != "" {
		keys, _ = strconv.Atoi(s)
	}
	const q = 256
	a, r := newNode(b, q, "a"), newNode(b, q, "b")
	value := make([]byte, 100)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range keys {
		for j := range value {
			value[j] = byte('a' + rng.IntN(26))
		}
		a.write(b, fmt.Sprintf("key:%08d", i), string(value), false)
		copyKey(b, a, r, fmt.Sprintf("key:%08d", i))
	}
	// 1% diverge: updated on one side, or on both (concurrently).
	diverged := map[string]bool{}
	for len(diverged) < keys/100 {
		k := fmt.Sprintf("key:%08d", rng.IntN(keys))
		if diverged[k] {
			continue
		}
		diverged[k] = true
		switch rng.IntN(3) {
		case 0:
			a.write(b, k, string(value), false)
		case 1:
			r.write(b, k, string(value), false)
		case 2:
			a.write(b, k, string(value), false)
			r.write(b, k, string(value), false)
		}
	}
	var full, diff int64
	for i := range keys {
		k := fmt.Sprintf("key:%08d", i)
		size := int64(len(k) + len(replica.AppendObject(nil, a.get(b, k))))
		full += size
		if diverged[k] {
			diff += size
		}
	}
	b.ResetTimer()
	for range b.N {
		remote := &MemRemote{Trees: r.trees, Store: r.store}
		start := time.Now()
		var res ExchangeResult
		for p := range q {
			x, err := Exchange(context.Background(), a.trees, a.store, remote, p, ExchangeOptions{})
			if err != nil {
				b.Fatal(err)
			}
			res.Pulled += x.Pulled
			res.Pushed += x.Pushed
			res.Leaves += x.Leaves
		}
		took := time.Since(start)
		sent := remote.Bytes.Load()
		b.ReportMetric(float64(sent), "bytes-sent")
		b.ReportMetric(float64(full), "bytes-full-copy")
		b.ReportMetric(float64(sent)/float64(diff), "sent/diverged")
		b.Logf("%d keys, %d diverged (%d bytes): exchange sent %d bytes in %v (%.4f of a full copy of %d bytes, %.2fx the diverged bytes); %d leaves differed, pulled %d, pushed %d; trees %d bytes (%d per partition)",
			keys, len(diverged), diff, sent, took.Round(time.Millisecond), float64(sent)/float64(full), full,
			float64(sent)/float64(diff), res.Leaves, res.Pulled, res.Pushed, a.trees.MemoryBytes(), a.trees.MemoryBytes()/q)
	}
}

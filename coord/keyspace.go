package coord

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/dynakv/dynakv/replica"
)

// The requests on the keyspace as a whole: SCAN, DBSIZE, FLUSHALL. Each
// partition is asked of one replica (this node when it is one, else the
// first healthy primary), since replicas agree when nothing changes.

// partitionReplicas returns the primaries of partition p, this node first
// if it is one, then the healthy ones, keeping the ring's order otherwise.
func (c *Coordinator) partitionReplicas(p, q int) []string {
	primaries, _, _ := c.place.Preference(replica.PartitionStart(p, q))
	out := c.orderByHealth(primaries)
	if i := slices.Index(out, c.opts.Self); i > 0 {
		out = append([]string{c.opts.Self}, slices.Delete(out, i, i+1)...)
	}
	return out
}

// rangeOf reads up to limit objects of [from, to) from the replicas of
// partition p, the first that answers.
func (c *Coordinator) rangeOf(ctx context.Context, p, q int, from, to uint64, limit int) ([]replica.KeyObject, error) {
	var lastErr error
	for _, node := range c.partitionReplicas(p, q) {
		var kos []replica.KeyObject
		var err error
		if node == c.opts.Self {
			kos, err = c.local.Range(from, to, nil, limit)
		} else {
			rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
			kos, err = c.net.Range(rctx, node, from, to, limit)
			cancel()
		}
		if err == nil {
			return kos, nil
		}
		c.noteFailure(node, err)
		lastErr = err
	}
	return nil, fmt.Errorf("%w: no replica of partition %d answered (%v)", ErrUnavailable, p, lastErr)
}

// Scan returns about count live keys for which match holds, in ring order
// from the ring position cursor (0: the start), and the cursor to resume
// from (0: the scan is done). A scan that runs while nothing changes
// returns every live key exactly once.
func (c *Coordinator) Scan(ctx context.Context, cursor uint64, count int, match func(key []byte, kind replica.Kind) bool) (keys [][]byte, next uint64, err error) {
	q := c.place.Partitions()
	if q == 0 {
		return nil, 0, ErrNoRing
	}
	count = max(count, 1)
	budget := 10 * max(count, 10) // objects examined in one call at most
	now := c.Now()
	pos := cursor
	for {
		p := replica.Partition(pos, q)
		_, end := replica.PartitionRange(p, q)
		limit := min(budget, 1000)
		kos, err := c.rangeOf(ctx, p, q, pos, end, limit)
		if err != nil {
			return nil, 0, err
		}
		for _, ko := range kos {
			if v, live := ko.Object.Resolve(now); live && !replica.IsElement(ko.Key) && match(ko.Key, v.Kind) {
				keys = append(keys, ko.Key)
			}
			last := replica.Position(ko.Key)
			if last == math.MaxUint64 {
				return keys, 0, nil
			}
			pos = last + 1
		}
		budget -= len(kos)
		if len(kos) < limit {
			if end == 0 {
				return keys, 0, nil
			}
			pos = end
		}
		if len(keys) >= count || budget <= 0 {
			return keys, pos, nil
		}
	}
}

// DBSize counts the live keys of the whole cluster, and those of them with
// an expiry: each partition's count from one of its replicas.
func (c *Coordinator) DBSize(ctx context.Context) (keys, expiring int64, err error) {
	q := c.place.Partitions()
	if q == 0 {
		return 0, 0, ErrNoRing
	}
	// Partitions by the replica asked, then retried on the next replica of
	// each partition whose replica failed.
	todo := make([]int, q)
	for p := range todo {
		todo[p] = p
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		groups := map[string][]int{}
		for _, p := range todo {
			reps := c.partitionReplicas(p, q)
			if attempt >= len(reps) {
				return 0, 0, fmt.Errorf("%w: no replica of partition %d could count its keys", ErrUnavailable, p)
			}
			groups[reps[attempt]] = append(groups[reps[attempt]], p)
		}
		var mu sync.Mutex
		var failed []int
		var wg sync.WaitGroup
		for node, parts := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var k, e []int64
				var err error
				if node == c.opts.Self {
					k, e = c.local.PartitionCounts(q, parts)
				} else {
					cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
					k, e, err = c.net.Count(cctx, node, q, parts)
					cancel()
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil || len(k) != len(parts) {
					c.noteFailure(node, err)
					failed = append(failed, parts...)
					return
				}
				for i := range parts {
					keys += k[i]
					expiring += e[i]
				}
			}()
		}
		wg.Wait()
		todo = failed
	}
	return keys, expiring, nil
}

// Flush deletes every key of the cluster (FLUSHALL): each reachable node
// drops what was written before now, and drops it from then on wherever
// it arrives from. Nodes that are down apply it when they are back.
func (c *Coordinator) Flush(ctx context.Context) error {
	t := c.Now()
	if err := c.local.Flush(t); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, node := range c.place.Nodes() {
		if node == c.opts.Self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
			defer cancel()
			if err := c.net.Flush(fctx, node, t); err != nil && !errors.Is(err, context.Canceled) {
				c.log.Warn("flush did not reach a node; it will apply it when it is back", "node", node, "err", err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// CountKeysInSlot counts the live keys of a Redis Cluster hash slot
// (CLUSTER COUNTKEYSINSLOT), from one replica of its partition, counted
// as DBSIZE counts.
func (c *Coordinator) CountKeysInSlot(ctx context.Context, slot int) (int64, error) {
	q := c.place.Partitions()
	if q == 0 {
		return 0, ErrNoRing
	}
	p := replica.Partition(replica.PartitionStart(slot, replica.Slots), q)
	var lastErr error
	for _, node := range c.partitionReplicas(p, q) {
		var k []int64
		var err error
		if node == c.opts.Self {
			k, _ = c.local.PartitionCounts(replica.Slots, []int{slot})
		} else {
			cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
			k, _, err = c.net.Count(cctx, node, replica.Slots, []int{slot})
			cancel()
		}
		if err == nil && len(k) == 1 {
			return k[0], nil
		}
		c.noteFailure(node, err)
		lastErr = err
	}
	return 0, fmt.Errorf("%w: no replica of slot %d could count its keys (%v)", ErrUnavailable, slot, lastErr)
}

// KeysInSlot returns up to count live keys of a Redis Cluster hash slot
// (CLUSTER GETKEYSINSLOT), in ring order, from one replica of its
// partition.
func (c *Coordinator) KeysInSlot(ctx context.Context, slot, count int) ([][]byte, error) {
	q := c.place.Partitions()
	if q == 0 {
		return nil, ErrNoRing
	}
	from, to := replica.PartitionRange(slot, replica.Slots)
	p := replica.Partition(from, q)
	now := c.Now()
	var keys [][]byte
	for pos := from; len(keys) < count; {
		limit := min(max(count-len(keys), 16), 1000)
		kos, err := c.rangeOf(ctx, p, q, pos, to, limit)
		if err != nil {
			return nil, err
		}
		for _, ko := range kos {
			if _, live := ko.Object.Resolve(now); live && !replica.IsElement(ko.Key) && len(keys) < count {
				keys = append(keys, ko.Key)
			}
		}
		if len(kos) < limit {
			break
		}
		last := replica.Position(kos[len(kos)-1].Key)
		if last == math.MaxUint64 {
			break
		}
		pos = last + 1
	}
	return keys, nil
}

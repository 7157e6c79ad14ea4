package replica

// countLive initializes the live-key counters and the key filter with one
// scan of the objects.
func (s *Store) countLive() error {
	now := s.now()
	return s.scan(0, 0, func(pos uint64, name []byte, o Object) bool {
		s.filter.add(pos)
		s.countChange(pos, name, Object{}, o, now)
		s.tallyChange(pos, name, Object{}, o)
		return true
	})
}

// countChange moves the key counters from what old counted to what next
// counts.
func (s *Store) countChange(pos uint64, name []byte, old, next Object, now int64) {
	if IsElement(name) {
		return // a key is counted by its header
	}
	wasLive, wasExp := keyState(old, now)
	isLive, isExp := keyState(next, now)
	// Most writes replace a live value with another: nothing to count,
	// and an atomic add of zero would still pull the counter's cache line.
	if d := b2i(isLive) - b2i(wasLive); d != 0 {
		s.live[pos>>48].Add(d)
	}
	if d := b2i(isExp) - b2i(wasExp); d != 0 {
		s.expiring[pos>>48].Add(d)
	}
}

// keyState says whether o reads as a key at now, and whether that key's
// value has an expiry.
func keyState(o Object, now int64) (live, expiring bool) {
	v, live := o.Resolve(now)
	return live, live && v.Expiry != 0
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// KeyCount returns how many keys hold a live sibling, and how many of them
// have an expiry, as of their last write: a key that expired since is
// counted until it is next touched, as Redis counts expired keys it has not
// reclaimed yet.
func (s *Store) KeyCount() (keys, expiring int64) {
	for i := range s.live {
		keys += s.live[i].Load()
		expiring += s.expiring[i].Load()
	}
	return keys, expiring
}

// PartitionCounts returns, for each partition in parts of a ring of q
// partitions, the keys this node holds with a live sibling and how many of
// them have an expiry (counted as KeyCount counts).
func (s *Store) PartitionCounts(q int, parts []int) (keys, expiring []int64) {
	keys, expiring = make([]int64, len(parts)), make([]int64, len(parts))
	for i, p := range parts {
		if p < 0 || p >= q {
			continue
		}
		from, to := PartitionStart(p, q)>>48, uint64(countBuckets)
		if p+1 < q {
			to = PartitionStart(p+1, q) >> 48
		}
		if q > countBuckets { // a partition finer than a bucket: count it whole
			to = from + 1
		}
		for b := from; b < to; b++ {
			keys[i] += s.live[b].Load()
			expiring[i] += s.expiring[b].Load()
		}
	}
	return keys, expiring
}

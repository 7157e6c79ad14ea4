package antientropy

import (
	"context"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// Reaping: a deleted key leaves a tombstone, so that repair cannot bring
// the value back; it is purged once every primary replica is known to
// hold it (each exchanged with this node after it appeared) and it is
// older than the grace period, so that tombstones do not pile up forever.
// Expired values are turned into tombstones first. The store does the
// purge itself (replica.Store.Purge, which checks the object is still the
// tombstone it was); the trees count each partition's tombstones
// (Trees.tombstoneInfo), so that a partition without any is not scanned.

// reap turns partition p's expired values into tombstones, and purges the
// tombstones that every primary is known to hold and that are older than
// the grace period. Every other primary must
// have agreed with this node in an exchange that began after the last
// tombstone appeared here; a replica that missed the delete got it in that
// exchange, so no replica can bring the value back.
func (a *AntiEntropy) reap(ctx context.Context, trees *Trees, r gossip.Ring, p int, primaries []string) {
	a.expire(ctx, trees, r, p)
	if r.Legacy {
		return // an older version may still sit on a legacy replica
	}
	count, last := trees.tombstoneInfo(p)
	if count == 0 {
		return
	}
	for _, peer := range primaries {
		if peer != a.opts.Self && !a.agreed[p][peer].After(last) {
			return
		}
	}
	purged := 0
	err := a.eachInPartition(ctx, r.Q(), p, func(ko replica.KeyObject) {
		if !reapable(ko.Object, a.opts.Grace) {
			return
		}
		if ok, err := a.opts.Store.Purge(ko.Key, ko.Object.Clock); err == nil && ok {
			purged++
		}
	})
	if err != nil {
		a.log.Warn("reaping tombstones", "partition", p, "err", err)
	}
	if purged > 0 {
		a.reaped.Add(int64(purged))
		a.log.Info("reaped tombstones", "partition", p, "count", purged)
	}
}

// reapable reports whether o is a deletion older than the tombstone grace
// period (0: never reapable): every sibling a tombstone, all written
// before the grace began. An exchange does not copy such an object to a
// replica that reaped it; reap purges it once every replica holds it.
func reapable(o replica.Object, grace time.Duration) bool {
	return grace > 0 && replica.TombstoneOnly(o) && olderThan(o, time.Now().Add(-grace).UnixMilli())
}

// olderThan reports whether every sibling of o was written before cutoff
// (ms).
func olderThan(o replica.Object, cutoff int64) bool {
	for _, s := range o.Siblings {
		if s.Time >= cutoff {
			return false
		}
	}
	return true
}

// expire turns every object of partition p whose siblings have all expired
// into a tombstone written here, so that its space is reclaimed by reaping.
// A tombstone rather than a purge: it supersedes, on every replica it
// reaches, any older version the expired one had replaced, which could
// otherwise come back.
func (a *AntiEntropy) expire(ctx context.Context, trees *Trees, r gossip.Ring, p int) {
	if trees.expiringCount(p) == 0 {
		return
	}
	now := time.Now().UnixMilli()
	converted := 0
	err := a.eachInPartition(ctx, r.Q(), p, func(ko replica.KeyObject) {
		if !expiredOnly(ko.Object, now) {
			return
		}
		// An expired hash or set takes with it the elements written before
		// it expired, as DEL would: its tombstone carries their removal
		// clock, so they do not read as elements that survived it.
		var removed replica.Clock
		if at := containerExpiry(ko.Object); at > 0 {
			var err error
			if removed, err = a.opts.Store.ContainerClock(ko.Key, at); err != nil {
				a.log.Warn("expiring a container", "key", string(ko.Key), "err", err)
				return
			}
		}
		_, err := a.opts.Store.Update(ctx, ko.Key, func(cur replica.Object) (replica.Object, bool, error) {
			if !expiredOnly(cur, now) {
				return cur, false, nil
			}
			dot, err := a.opts.Store.Mint()
			if err != nil {
				return cur, false, err
			}
			next := replica.Update(cur, cur.Context(), replica.Sibling{Tombstone: true, Time: now}, dot)
			if len(removed) > 0 {
				next.Removed = next.Removed.Join(removed)
			}
			return next, true, nil
		})
		if err == nil {
			converted++
		}
	})
	if err != nil {
		a.log.Warn("expiring values", "partition", p, "err", err)
	}
	if converted > 0 {
		a.expired.Add(int64(converted))
		a.log.Info("expired values reclaimed", "partition", p, "count", converted)
	}
}

// expiredOnly reports whether o has siblings and every one of them is
// dead: expired, or a tombstone, with at least one expired.
func expiredOnly(o replica.Object, now int64) bool {
	expired := false
	for _, s := range o.Siblings {
		switch {
		case s.Tombstone:
		case s.Expiry != 0 && s.Expiry <= now:
			expired = true
		default:
			return false
		}
	}
	return expired
}

// containerExpiry returns the latest expiry of o's hash or set siblings,
// 0 when it has none.
func containerExpiry(o replica.Object) int64 {
	var at int64
	for _, s := range o.Siblings {
		if !s.Tombstone && s.Kind.Container() {
			at = max(at, s.Expiry)
		}
	}
	return at
}

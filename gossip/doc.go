// Package gossip is membership and the ring. Membership and liveness come
// from memberlist, with the node id as member name and the node's client
// and peer addresses in its metadata. The ring assigns Q partitions of the
// ring (replica's positions) to nodes; it changes only on an explicit
// join, leave or forget, never on a failure.
//
// cluster.go starts and stops it; members.go is membership (memberlist's
// events, metadata, rejoining, persistence); ring.go and claim.go are the
// pure ring (encoding, preference lists, the claim); view.go the placement
// snapshot requests read; ringloop.go the goroutine that owns the ring;
// change.go the claimant and the changes it makes (joins, leave, forget);
// flush.go spreads FLUSHALL; log.go routes memberlist's log.
//
// Ring changes are made by one node, the claimant: the alive ring member
// with the lowest id. It computes the new assignment with Assign (pure and
// deterministic), bumps the epoch and publishes it; nodes adopt a ring only
// if it is newer (a higher epoch; at equal epochs, the lower claimant).
// Rings travel whole in memberlist's push/pull, and a node that sees a
// member advertise a higher epoch fetches it at once over the peer port.
// A change first records the new owners in Next; the nodes that gain
// replicas copy the data, report ready in their metadata, and the claimant
// then makes Next the owners.
//
// One goroutine owns the ring; everything else reads immutable snapshots.
package gossip

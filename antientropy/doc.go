// Package antientropy makes replicas converge in the background, without
// a client asking. It holds:
//
//   - the Merkle trees (tree.go, trees.go): per partition, a fixed-shape
//     tree whose leaves are ring-position ranges holding the XOR of
//     hash(key, clock), kept up to date by observing every store write;
//   - exchanges (exchange.go): two replicas compare a partition's trees
//     root first and swap only the objects of differing leaves, both ways,
//     over the peer protocol's AE.* commands;
//   - the scheduler (scheduler.go): every interval, each partition this
//     node replicates is exchanged with its other replicas that are up;
//   - reaping (reap.go): tombstones every replica holds are purged after
//     the grace period, and expired values turned into tombstones first;
//   - hinted handoff (hints.go): hints go to their target when it is back,
//     or to the key's current replicas when the target no longer is one,
//     and a leaving node hands its hints over;
//   - ownership handoff (handoff.go): a node that becomes a replica of
//     partitions in a ring change copies them before the change completes,
//     and drops what it no longer replicates once the ring is stable.
//
// Each of AntiEntropy, HintDelivery and Handoff runs one goroutine (loop.go),
// started by its Start function and stopped, and waited for, by Close.
// Exchanges run one at a time on the scheduler's goroutine.
package antientropy

// Package coord is the Dynamo coordinator: for one request it finds the
// key's replicas, sends the request to them, waits for the read or write
// quorum, merges the replies with replica.Sync and returns the result.
//
// Where each mechanism lives:
//
//   - coord.go: the interfaces it is built on (Local, Placement, Transport,
//     each declared here, where it is used), options and errors;
//   - sloppy.go: the sloppy quorum's view of the nodes: which are healthy,
//     the fallbacks that stand in for those that are not, and the probe
//     that brings a failed node back;
//   - quorum.go: the pure tally both quorums are counted with;
//   - read.go: a read's gather (R answers, hedged past slow primaries);
//   - repair.go: read repair of replicas that answered stale;
//   - write.go: where a write is coordinated (here, the first healthy
//     primary, or a fallback), and the decision against the current value;
//   - fanout.go: a write on its way to W replicas, with hints for those
//     that cannot take it;
//   - op.go and wire.go: a write as data (Op) and its encoding, so that a
//     node outside a key's replicas can hand one to a replica
//     (peer.CmdWrite);
//   - pipeline.go: what a client's pipeline lends the requests it runs in
//     line (deferred syncs and quorums, reads started ahead);
//   - keyspace.go: the commands over the whole cluster (SCAN, DBSIZE,
//     FLUSHALL); context.go: sealing clients' contexts;
//   - nettransport.go and memnet.go: the Transport over the peer protocol,
//     and an in-memory one with seeded faults for tests.
//
// A write is applied with replica.Update under a dot the local store mints
// (a fallback's under the key's stand-in actor). A forwarded write runs at
// most once: it goes on to another node only when it provably was not
// sent, and its receiver drops it when it arrives after its sender gave
// up.
//
// A Coordinator is safe for concurrent use; it keeps no per-request state
// beyond the call. The work a request leaves behind (the replicas still
// being written or repaired after the quorum answered) runs on callbacks
// and short goroutines that Wait waits for, each bounded by the timeout.
package coord

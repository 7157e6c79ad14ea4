// Package coord is the Dynamo coordinator: for one request it finds the
// key's replicas, sends the request to them, waits for the read or write
// quorum, merges the replies with replica.Sync and returns the result.
//
// A write is an Op: plain data describing what to do to one key (store a
// value, delete, conditionally), decided against the coordinator's merged
// view of the key and applied with replica.Update, which mints the write's
// dot. Ops are data rather than closures so that a node outside a key's
// replicas can hand one to a replica to coordinate.
//
// A Coordinator is safe for concurrent use; it keeps no per-request state
// beyond the call.
package coord

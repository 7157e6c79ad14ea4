// Package coord is the Dynamo coordinator: for one request it finds the
// key's replicas, sends the request to them, waits for the read or write
// quorum, merges the replies with replica.Sync and returns the result.
//
// A write is an Op: plain data describing what to do to one key (store a
// value, delete, conditionally), decided against the coordinator's merged
// view of the key and applied with replica.Update under a dot the local
// store mints (a fallback's under the key's stand-in actor). Ops are data
// rather than closures so that a node outside a key's replicas can hand
// one to a replica to coordinate. A forwarded op is run once at most: it
// goes on to another node only when it provably was not sent, and its
// receiver drops it when it arrives after its sender gave up.
//
// A Coordinator is safe for concurrent use; it keeps no per-request state
// beyond the call.
package coord

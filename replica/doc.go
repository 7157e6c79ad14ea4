// Package replica is one node's replica of the data: the object model of
// versioned values and the Pebble store that keeps it.
//
// An object holds a key's concurrent versions (siblings) under a dotted
// version vector. Three pure functions carry the Dynamo semantics: Update is
// a coordinator's write under a client's causal context, Sync merges two
// replicas' objects (commutative, associative, idempotent), and an object's
// Context is what a client echoes back to supersede what it read. They do no
// I/O and read no clock; callers pass the time in, and the dot.
//
// Dots come from Store.Mint (dots.go): one node-wide sequence, leased to
// disk, under an actor that is the node id plus an incarnation, renewed
// after any stop that was not clean; so a dot is never minted twice, and a
// clock never claims writes its minter lost. A fallback mints under a
// stand-in actor kept with a record of its writes (standin.go). Contexts
// reach clients sealed to their key (seal.go). Nothing is stored that
// DecodeObject would not read back (Object.Check), and an object that does
// not decode is counted and skipped, never fatal.
//
// The pure model is object.go, clock.go, counter.go, codec.go and seal.go:
// values in, values out. position.go places keys on the ring: the one home
// of that arithmetic (partitions, their ranges, lock stripes).
//
// The Store keeps objects in Pebble under 'o' | ring position | key, so
// that partitions are contiguous ranges; store.go opens and closes it, and
// the files store_*.go hold one concern each (reads, writes and Pending,
// key counts, range scans, FLUSHALL, tombstone purges, dropped ranges,
// stats, checkpoints). hints.go keeps the hints for other nodes,
// standin.go the fallbacks' records, meta.go node metadata (every name in
// one list), walfs.go the fsync policy, cache.go and filter.go the hot
// paths of reads. Writes to one key are serialized by a striped lock;
// durable writes release the lock before waiting for fsync, so concurrent
// writers share one WAL sync. All Store methods are safe for concurrent
// use.
package replica

// Package resp is dynakv's Redis front end: a RESP server with a command
// table, Redis's argument parsing and error texts, and reply shapes.
//
// Each command is declared once in the table (arity, flags, key positions,
// docs) and implemented by a handler that parses its arguments, calls the
// coordinator and writes the reply. A connection's pipeline is taken whole:
// commands on different keys run concurrently (on a cluster each waits on
// its own replicas), commands on the same key run in order, and replies
// are written in order, in one write per batch (wire.Serve runs the loop).
// A guard in front of the parser checks the RESP framing as bytes arrive,
// so that an oversized bulk is refused before it is buffered; the reader
// (wire's) cuts commands out of the read buffer without copying them. The
// package knows nothing of replicas beyond the coordinator's interface.
package resp

// Package wire is the RESP framing both ports share: the client front end
// (resp) and the peer server (peer) accept connections with Accept, read
// whole commands off them without copying with Reader, and run each
// connection's request loop with Serve.
//
// It knows nothing of commands: a server hands Serve a function that runs
// one batch of commands and returns their replies. A connection is served
// by one goroutine, its own; Accept runs on the listener's.
package wire

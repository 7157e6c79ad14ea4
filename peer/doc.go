// Package peer is the node-to-node protocol: RESP on the peer port. It
// holds every peer command's name and the encoding of the replica
// commands (protocol.go), the Server that applies them to this node's
// replica and serves the commands other packages register (server.go),
// and the typed Client other nodes call them with (client.go).
//
// The Client gathers concurrent requests for one peer into pipelines (two
// in flight per peer), and classifies every failure once: the peer's error
// reply (*Error), or ErrUnreachable, wrapping ErrNotSent as well when the
// request provably never left this node, the only case in which a write
// that must not run twice may go to another node.
//
// A payload another package owns (a forwarded write, the ring, a Merkle
// tree's hashes) travels as a bulk string in that package's encoding:
// peer knows their names, not their insides, and imports only replica and
// wire. Server and Client are safe for concurrent use.
package peer

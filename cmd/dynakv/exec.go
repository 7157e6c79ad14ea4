package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/dynakv/dynakv/coord"
)

// forwardExec hands a transaction to its slot's leader over the peer
// port and returns the reply of its EXEC.
func (n *node) forwardExec(ctx context.Context, node string, tx []byte) ([]byte, error) {
	addr, ok := n.cluster.PeerAddr(node)
	if !ok {
		return nil, fmt.Errorf("%w: %w: no peer address known for %s", coord.ErrUnreachable, coord.ErrNotSent, node)
	}
	return n.peers.Exec(ctx, addr, tx)
}

// serveExec runs a transaction another node forwarded here; before the
// front end runs, it cannot.
func (n *node) serveExec(ctx context.Context, args [][]byte) ([]byte, error) {
	if len(args) != 2 {
		return nil, errors.New("ERR wrong number of arguments for 'c.exec' command")
	}
	s := n.front.Load()
	if s == nil {
		return []byte("-UNAVAILABLE the node is starting\r\n"), nil
	}
	return s.ServeExec(ctx, args[1])
}

package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynakv/dynakv/gossip"
)

// publishTimeout bounds how long a PUBLISH waits for the other nodes'
// counts: a paused or partitioned node delays publishers by at most this,
// and its subscribers miss the message, as they would in Redis Cluster.
const publishTimeout = 500 * time.Millisecond

// broadcast hands a published message to every other live member at once
// and sums the deliveries they report; a node that does not answer in
// time counts none. Nothing is stored or retried: delivery is at most
// once.
func (n *node) broadcast(ctx context.Context, channel, message []byte, sharded bool) int64 {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	var total atomic.Int64
	var wg sync.WaitGroup
	for _, m := range n.cluster.Members() {
		if m.ID == n.cfg.Node.ID || m.State != gossip.Alive || m.Peer == "" {
			continue
		}
		wg.Add(1)
		go func(id, addr string) {
			defer wg.Done()
			got, err := n.peers.Publish(ctx, addr, channel, message, sharded)
			if err != nil {
				n.log.Debug("publish not delivered", "member", id, "err", err)
				return
			}
			total.Add(got)
		}(m.ID, m.Peer)
	}
	wg.Wait()
	return total.Load()
}

// deliver gives a message published on another node to this node's
// subscribers; before the front end runs there are none.
func (n *node) deliver(channel, message []byte, sharded bool) int64 {
	if s := n.front.Load(); s != nil {
		return s.Deliver(channel, message, sharded)
	}
	return 0
}

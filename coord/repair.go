package coord

import (
	"context"

	"github.com/dynakv/dynakv/replica"
)

// repair sends the merged object final to the replicas whose answer to a
// read was stale.
func (c *Coordinator) repair(ctx context.Context, key []byte, final replica.Object, stale []string) {
	var enc []byte
	for _, node := range stale {
		var err error
		if node == c.opts.Self {
			_, err = c.local.Merge(key, final)
		} else {
			if enc == nil {
				enc = replica.AppendObject(nil, final)
			}
			ch := make(chan error, 1)
			c.net.Merge(ctx, node, key, enc, func(err error) { ch <- err })
			err = <-ch
		}
		if err != nil {
			c.log.Debug("read repair failed", "node", node, "key", string(key), "err", err)
			continue
		}
		c.readRepairs.Add(1)
	}
}

package gossip

// Flushes is the FLUSHALL state gossip spreads.
type Flushes interface {
	FlushedBefore() int64
	Flush(t int64) error
}

// keeper, run under work, does the disk work gossip's news calls for: it persists the
// members after one changes state, and applies a FLUSHALL another node
// advertises. memberlist calls observe with its state lock held, so a
// write there that waits on a slow disk (an fsync under load can take
// seconds) stopped the node's gossip: it answered no probe, and the others
// declared it failed.
func (c *Cluster) keeper() {
	c.persistMembers()
	if f := c.opts.Flushes; f != nil {
		if t := c.flushWanted.Load(); t > f.FlushedBefore() {
			c.log.Info("applying a FLUSHALL another node advertises", "at", t)
			if err := f.Flush(t); err != nil {
				c.log.Error("flush", "err", err)
			}
			c.advertise()
		}
	}
}

package coord

import "github.com/dynakv/dynakv/replica"

// Seal renders a clock of key as the context its client receives, sealed
// under the cluster's key (replica.Sealer). It fails with ErrNoRing until
// this node knows the cluster key.
func (c *Coordinator) Seal(key []byte, clock replica.Clock) (string, error) {
	s := c.contextSealer()
	if s == nil {
		return "", ErrNoRing
	}
	return s.Seal(key, clock), nil
}

// Open checks a context a client sent with key and returns its clock;
// replica.ErrBadContext when it was not sealed for key by this cluster.
func (c *Coordinator) Open(key []byte, ctx string) (replica.Clock, error) {
	if ctx == "" {
		return nil, nil
	}
	s := c.contextSealer()
	if s == nil {
		return nil, ErrNoRing
	}
	return s.Open(key, ctx)
}

// contextSealer returns a sealer under the placement's context key, made
// again only when the key changes (once, when a ring without one gets it).
func (c *Coordinator) contextSealer() *replica.Sealer {
	k := c.place.ContextKey()
	if k == nil {
		return nil
	}
	if s := c.sealer.Load(); s != nil && s.Keyed(k) {
		return s
	}
	s := replica.NewSealer(k)
	c.sealer.Store(s)
	return s
}

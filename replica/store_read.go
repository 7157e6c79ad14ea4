package replica

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Get returns key's object, or the empty object if the key was never
// written.
func (s *Store) Get(key []byte) (Object, error) { return s.GetAt(Position(key), key) }

// GetAt is Get for a caller that has placed the key already: pos must be
// Position(key). Hashing a key costs about as much as a cached read, so a
// request hashes its key once, not at every layer.
func (s *Store) GetAt(pos uint64, key []byte) (Object, error) {
	if !s.enter() {
		return Object{}, ErrClosed
	}
	defer s.gate.RUnlock()
	if o, ok := s.cache.get(pos, key); ok {
		return o, nil
	}
	// A miss fills the cache under the key's lock, so that it cannot put
	// back an object a concurrent write just replaced.
	mu := &s.locks[Stripe(pos)]
	mu.Lock()
	defer mu.Unlock()
	return s.getLocked(pos, key)
}

// getLocked reads key's object through the cache; the caller holds the
// key's stripe lock.
func (s *Store) getLocked(pos uint64, key []byte) (Object, error) {
	if o, ok := s.cache.get(pos, key); ok {
		return o, nil
	}
	if !s.filter.mayContain(pos) {
		return Object{}, nil // never written: nothing to cache either
	}
	enc, err := s.get(objectKey(pos, key))
	if err != nil || enc == nil {
		return Object{}, err
	}
	o, err := DecodeObject(enc)
	if err != nil {
		// What cannot be read is treated as never written, so that the
		// next write or repair replaces it instead of failing forever.
		s.skipCorrupt("object", key, err)
		return Object{}, nil
	}
	s.cache.put(pos, key, enc)
	return o, nil
}

// get returns a copy of the encoded object stored at k, nil if none is.
func (s *Store) get(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", k[9:], err)
	}
	enc := bytes.Clone(v)
	closer.Close()
	return enc, nil
}

package replica

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// A client's causal context is sealed to its key: the clock, and a MAC
// over the key and the clock under a key the whole cluster shares. A
// context that was forged, altered, or copied from another key fails the
// MAC, and the write carrying it is refused before it can do harm: a
// clock a client made up could claim dots a node has yet to mint, and
// replicas would drop those writes as already seen.

// contextV2 is the sealed context's version byte (version 1 was the bare
// clock, accepted from clients until contexts were sealed).
const contextV2 = 2

// macLen is how many bytes of HMAC-SHA256 a context carries: 128 bits, as
// many as a forger would have to guess.
const macLen = 16

// Sealer seals and opens the contexts clients carry. It is immutable and
// safe for concurrent use.
type Sealer struct {
	key []byte
}

// NewSealer returns a sealer under the cluster's context key (32 random
// bytes made by the founding node, or derived from the cluster secret).
func NewSealer(key []byte) *Sealer {
	return &Sealer{key: append([]byte(nil), key...)}
}

// Keyed reports whether s seals under key.
func (s *Sealer) Keyed(key []byte) bool { return hmac.Equal(s.key, key) }

// Seal renders c as the printable context a client receives with key's
// value: unpadded URL-safe base64 of the version, the clock and the MAC.
// The empty clock is the empty string, which clients send to mean "I
// have seen nothing".
func (s *Sealer) Seal(key []byte, c Clock) string {
	if len(c) == 0 {
		return ""
	}
	raw := appendClock([]byte{contextV2}, c)
	raw = append(raw, s.mac(key, raw)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Open checks a context a client sent with key and returns its clock. A
// context not made by Seal for this key under this cluster's key, or not
// in canonical form, is ErrBadContext.
func (s *Sealer) Open(key []byte, ctx string) (Clock, error) {
	if ctx == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(ctx)
	if err != nil || len(raw) < 1+macLen || raw[0] != contextV2 {
		return nil, ErrBadContext
	}
	body, sum := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	if !hmac.Equal(sum, s.mac(key, body)) {
		return nil, ErrBadContext
	}
	d := Reader{b: body[1:]}
	c := d.clock()
	if d.bad || len(d.b) != 0 || !c.valid() {
		return nil, ErrBadContext
	}
	return c.Clone(), nil
}

// mac is the seal of body for key: HMAC-SHA256 over the key's length, the
// key and body, cut to macLen bytes.
func (s *Sealer) mac(key, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(binary.AppendUvarint(nil, uint64(len(key))))
	m.Write(key)
	m.Write(body)
	return m.Sum(nil)[:macLen]
}

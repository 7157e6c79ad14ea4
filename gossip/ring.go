package gossip

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Ring is the cluster's assignment of partitions to nodes: Q equal slices of
// the md5 ring, one owner each. It changes only when the claimant changes
// it, and every change bumps Epoch. While a change is in progress Next
// holds the owners it moves to; data is copied to the nodes that gain
// replicas before Next becomes Owners.
type Ring struct {
	Epoch uint64
	// Claimant is the node that made this version; of two rings with the
	// same epoch, the one made by the lower id wins.
	Claimant string
	Owners   []string
	Next     []string
	// Key is the cluster's context key: clients' contexts are sealed
	// with it (unless a cluster secret gives one). The founding node
	// makes it; every later ring carries it on.
	Key []byte
	// Legacy is set on the ring of a cluster founded before positions
	// carried the Redis Cluster slot: a key may still sit on the replicas
	// of its legacy position (replica.LegacyPosition). Reads ask those too,
	// and no ring change, reaping or dropping of data happens, until every
	// member has pushed the keys it holds to their replicas; then the
	// claimant clears it.
	Legacy bool
	// Zones is each owner's zone (node.zone; absent: ""), and NextZones
	// that of each owner of the change in progress when it differs:
	// preference lists spread across zones (zones.go).
	Zones, NextZones map[string]string
}

// contextKeyLen is the size of the context key a founding node makes.
const contextKeyLen = 32

// NewContextKey returns a fresh random context key.
func NewContextKey() []byte {
	k := make([]byte, contextKeyLen)
	if _, err := rand.Read(k); err != nil {
		panic(fmt.Sprintf("gossip: no randomness for a context key: %v", err))
	}
	return k
}

// Q is the number of partitions.
func (r Ring) Q() int { return len(r.Owners) }

// Stable reports whether no ownership change is in progress.
func (r Ring) Stable() bool { return r.Next == nil }

// Newer reports whether r should replace o.
func (r Ring) Newer(o Ring) bool {
	if r.Epoch != o.Epoch {
		return r.Epoch > o.Epoch
	}
	return o.Claimant != "" && r.Claimant < o.Claimant
}

// Members returns the sorted ids of every node that owns a partition now or
// after the change in progress.
func (r Ring) Members() []string {
	var out []string
	seen := map[string]bool{}
	for _, owners := range [][]string{r.Owners, r.Next} {
		for _, o := range owners {
			if o != "" && !seen[o] {
				seen[o] = true
				out = append(out, o)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Counts returns how many partitions each node owns in owners.
func Counts(owners []string) map[string]int {
	c := map[string]int{}
	for _, o := range owners {
		c[o]++
	}
	return c
}

// Founding returns the first ring of a new cluster: founder owns every
// partition.
func Founding(q int, founder string) Ring {
	owners := make([]string, q)
	for i := range owners {
		owners[i] = founder
	}
	return Ring{Epoch: 1, Claimant: founder, Owners: owners, Key: NewContextKey()}
}

// Preference returns the preference list of partition p of a ring without
// zones: its owner, then the owners of the following partitions
// clockwise, skipping nodes already listed, until n distinct nodes are
// listed or the ring is exhausted. A ring's own lists, which spread
// across its zones, are Ring.Primaries and ZonedPreference.
func Preference(owners []string, p, n int) []string {
	return ZonedPreference(owners, nil, p, n, n)
}

// Ring encoding versions: 2 added the context key, 3 the legacy flag (a
// ring of an earlier version is a legacy ring), 4 the zones.
const (
	ringV1 = 1
	ringV2 = 2
	ringV3 = 3
	ringV4 = 4
)

// ErrBadRing is returned when ring bytes do not decode.
var ErrBadRing = errors.New("gossip: corrupt ring")

// Encode renders the ring in a compact, versioned binary form: the node ids
// once, then one index per partition.
func (r Ring) Encode() []byte {
	names := r.Members()
	index := map[string]uint64{"": 0}
	for i, n := range names {
		index[n] = uint64(i + 1)
	}
	b := []byte{ringV4}
	b = binary.AppendUvarint(b, r.Epoch)
	b = appendString(b, r.Claimant)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = appendString(b, n)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Owners)))
	for _, o := range r.Owners {
		b = binary.AppendUvarint(b, index[o])
	}
	if r.Next == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		for _, o := range r.Next {
			b = binary.AppendUvarint(b, index[o])
		}
	}
	b = appendString(b, string(r.Key))
	if r.Legacy {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return appendZones(appendZones(b, r.Zones), r.NextZones)
}

// appendZones encodes a zone map in name order: a count, then name and
// zone pairs.
func appendZones(b []byte, zones map[string]string) []byte {
	names := slices.Sorted(maps.Keys(zones))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = appendString(appendString(b, n), zones[n])
	}
	return b
}

// zones decodes what appendZones wrote; nil for an empty map.
func (d *ringDecoder) zones() map[string]string {
	n := d.count()
	if n == 0 || d.err != nil {
		return nil
	}
	out := make(map[string]string, n)
	for range n {
		name := d.string()
		out[name] = d.string()
	}
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeRing parses what Encode produced.
func DecodeRing(b []byte) (Ring, error) {
	d := ringDecoder{b: b}
	version := d.uvarint()
	if version < ringV1 || version > ringV4 {
		return Ring{}, ErrBadRing
	}
	var r Ring
	r.Epoch = d.uvarint()
	r.Claimant = d.string()
	names := make([]string, d.count())
	for i := range names {
		names[i] = d.string()
	}
	owners := func(q int) []string {
		out := make([]string, q)
		for i := range out {
			idx := d.uvarint()
			if idx > uint64(len(names)) {
				d.err = ErrBadRing
				return nil
			}
			if idx > 0 {
				out[i] = names[idx-1]
			}
		}
		return out
	}
	q := d.count()
	r.Owners = owners(q)
	if len(d.b) > 0 && d.b[0] == 1 {
		d.b = d.b[1:]
		r.Next = owners(q)
	} else if len(d.b) > 0 {
		d.b = d.b[1:]
	} else {
		d.err = ErrBadRing
	}
	if version >= ringV2 {
		if key := d.string(); key != "" {
			r.Key = []byte(key)
		}
	}
	r.Legacy = version < ringV3
	if version >= ringV3 {
		switch {
		case len(d.b) == 0 || d.b[0] > 1:
			d.err = ErrBadRing
		default:
			r.Legacy = d.b[0] == 1
			d.b = d.b[1:]
		}
	}
	if version >= ringV4 {
		r.Zones, r.NextZones = d.zones(), d.zones()
	}
	if d.err != nil || len(d.b) != 0 || q == 0 || q&(q-1) != 0 {
		return Ring{}, ErrBadRing
	}
	return r, nil
}

type ringDecoder struct {
	b   []byte
	err error
}

func (d *ringDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = ErrBadRing, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *ringDecoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.err, d.b = ErrBadRing, nil
		return 0
	}
	return int(v)
}

func (d *ringDecoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// String summarizes the ring for logs.
func (r Ring) String() string {
	s := fmt.Sprintf("epoch %d by %s: %v", r.Epoch, r.Claimant, Counts(r.Owners))
	if len(r.Zones) > 0 {
		s += fmt.Sprintf(" zones %v", r.Zones)
	}
	if r.Legacy {
		s += " (legacy positions)"
	}
	if r.Next != nil {
		s += fmt.Sprintf(" -> %v", Counts(r.Next))
	}
	return s
}

// Gainers returns the nodes that become replicas of some partition when
// ring's change in progress completes: they must take in its data first.
func Gainers(r Ring, n int) []string {
	if r.Next == nil {
		return nil
	}
	var out []string
	cur, next := r.AllPrimaries(n), preferences(r.Next, r.nextZones(), n, n)
	for p := range r.Owners {
		for _, id := range next[p] {
			if !slices.Contains(cur[p], id) && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Gained returns the partitions node becomes a replica of when r's change
// completes, with the nodes that replicate each now.
func Gained(r Ring, n int, node string) map[int][]string {
	out := map[int][]string{}
	if r.Next == nil {
		return out
	}
	cur, next := r.AllPrimaries(n), preferences(r.Next, r.nextZones(), n, n)
	for p := range r.Owners {
		if !slices.Contains(cur[p], node) && slices.Contains(next[p], node) {
			out[p] = cur[p]
		}
	}
	return out
}

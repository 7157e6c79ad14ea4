package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"
)

// Encoding versions. The first byte of every encoded object and context is
// its version, so that the format can change without a flag day.
const (
	objectV1 = 1
	// objectV2 is objectV1 followed by the removal clock; written only
	// when the object has one (container headers), so strings keep v1.
	objectV2 = 2
	clockV1  = 1
)

// Limits the decoders enforce, so that hostile or corrupt input cannot make
// them allocate without bound.
const (
	maxActorLen     = 255
	maxClockEntries = 1024
)

// Sibling flag bits in the object encoding.
const (
	flagTombstone = 1 << 0
	flagExpiry    = 1 << 1
	kindShift     = 4
)

// Errors the decoders return.
var (
	// ErrCorrupt means stored or received object bytes do not decode.
	ErrCorrupt = errors.New("replica: corrupt object")
	// ErrBadContext means a client-supplied context does not decode, or
	// is not sealed for the key it came with.
	ErrBadContext = errors.New("replica: invalid context")
	// ErrUnencodable refuses to store an object that DecodeObject would
	// not read back (a clock past its entry cap, an actor name too long):
	// nothing is ever written that a restart could not read.
	ErrUnencodable = errors.New("replica: object would not decode")
)

// Check reports, as ErrUnencodable, why DecodeObject would refuse o's
// encoding; nil when it would read it back as o.
func (o Object) Check() error {
	switch {
	case len(o.Clock) > maxClockEntries:
		return fmt.Errorf("%w: %d clock entries, at most %d", ErrUnencodable, len(o.Clock), maxClockEntries)
	case !o.Clock.valid():
		return fmt.Errorf("%w: clock not in canonical form", ErrUnencodable)
	case len(o.Removed) > maxClockEntries || !o.Removed.valid():
		return fmt.Errorf("%w: removal clock not in canonical form", ErrUnencodable)
	}
	for _, e := range append(o.Clock[:len(o.Clock):len(o.Clock)], o.Removed...) {
		if len(e.Actor) > maxActorLen {
			return fmt.Errorf("%w: actor name of %d bytes, at most %d", ErrUnencodable, len(e.Actor), maxActorLen)
		}
	}
	for i, s := range o.Siblings {
		switch {
		case s.Dot.Counter == 0 || !o.Clock.Covers(s.Dot):
			return fmt.Errorf("%w: sibling %s:%d not covered by the clock", ErrUnencodable, s.Dot.Actor, s.Dot.Counter)
		case s.Kind > maxKind:
			return fmt.Errorf("%w: sibling kind %d", ErrUnencodable, s.Kind)
		case i > 0 && compareSiblings(o.Siblings[i-1], s) >= 0:
			return fmt.Errorf("%w: siblings out of dot order", ErrUnencodable)
		}
	}
	return nil
}

// AppendObject appends the binary encoding of o to dst.
//
// Layout (v1): version; uvarint #entries, then per entry uvarint len, actor,
// uvarint counter; uvarint #siblings, then per sibling uvarint index of its
// actor in the clock, uvarint counter, flags byte, varint time, [uvarint
// expiry], uvarint len, value.
func AppendObject(dst []byte, o Object) []byte {
	dst = slices.Grow(dst, maxEncodedSize(o)) // one allocation, not one per doubling
	if len(o.Removed) > 0 {
		dst = appendClock(append(dst, objectV2), o.Removed)
	} else {
		dst = append(dst, objectV1)
	}
	dst = appendClock(dst, o.Clock)
	dst = binary.AppendUvarint(dst, uint64(len(o.Siblings)))
	for _, s := range o.Siblings {
		idx, _ := o.Clock.find(s.Dot.Actor)
		dst = binary.AppendUvarint(dst, uint64(idx))
		dst = binary.AppendUvarint(dst, s.Dot.Counter)
		flags := byte(s.Kind) << kindShift
		if s.Tombstone {
			flags |= flagTombstone
		}
		if s.Expiry != 0 {
			flags |= flagExpiry
		}
		dst = append(dst, flags)
		dst = binary.AppendVarint(dst, s.Time)
		if s.Expiry != 0 {
			dst = binary.AppendUvarint(dst, uint64(s.Expiry))
		}
		dst = binary.AppendUvarint(dst, uint64(len(s.Value)))
		dst = append(dst, s.Value...)
	}
	return dst
}

// maxEncodedSize bounds the length of o's encoding: every varint at its
// longest.
func maxEncodedSize(o Object) int {
	n := 1 + 3*binary.MaxVarintLen64
	for _, c := range [2]Clock{o.Clock, o.Removed} {
		for _, e := range c {
			n += 2*binary.MaxVarintLen64 + len(e.Actor)
		}
	}
	for _, s := range o.Siblings {
		n += 1 + 6*binary.MaxVarintLen64 + len(s.Value)
	}
	return n
}

func appendClock(dst []byte, c Clock) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(c)))
	for _, e := range c {
		dst = binary.AppendUvarint(dst, uint64(len(e.Actor)))
		dst = append(dst, e.Actor...)
		dst = binary.AppendUvarint(dst, e.Counter)
	}
	return dst
}

// DecodeObject decodes an object encoded by AppendObject. The object's
// strings and values alias b, which must not be modified afterwards. It
// checks every invariant the rest of the package relies on (a sorted clock,
// siblings in dot order, each dot covered by the clock), so a decoded object
// is as good as one built in memory.
func DecodeObject(b []byte) (Object, error) {
	d := Reader{b: b}
	var removed Clock
	switch d.Byte() {
	case objectV1:
	case objectV2:
		if removed = d.clock(); len(removed) == 0 {
			d.fail() // AppendObject writes v1 for an empty removal clock
		}
	default:
		return Object{}, fmt.Errorf("%w: unknown version", ErrCorrupt)
	}
	clock := d.clock()
	n := d.count(4)
	var o Object
	o.Clock, o.Removed = clock, removed
	if n > 0 {
		o.Siblings = make([]Sibling, n)
	}
	for i := range o.Siblings {
		s := &o.Siblings[i]
		idx := d.Uvarint()
		if idx >= uint64(len(clock)) {
			d.fail()
			break
		}
		s.Dot = Dot{clock[idx].Actor, d.Uvarint()}
		flags := d.Byte()
		s.Tombstone = flags&flagTombstone != 0
		s.Kind = Kind(flags >> kindShift)
		s.Time = d.Varint()
		if flags&flagExpiry != 0 {
			if s.Expiry = int64(d.Uvarint()); s.Expiry == 0 {
				d.fail() // AppendObject writes no expiry for 0
			}
		}
		s.Value = d.take(d.Uvarint())
		if s.Dot.Counter == 0 || !clock.Covers(s.Dot) || s.Kind > maxKind ||
			flags&^(flagTombstone|flagExpiry|0xf0) != 0 ||
			(i > 0 && compareSiblings(o.Siblings[i-1], *s) >= 0) {
			d.fail()
		}
		if d.bad {
			break
		}
	}
	if d.bad || len(d.b) != 0 || !clock.valid() || !removed.valid() {
		return Object{}, ErrCorrupt
	}
	return o, nil
}

// AppendClock appends the bare, versioned encoding of c to dst: how
// nodes pass a clock to each other (a forwarded write's context). Clients
// get clocks only sealed (Sealer).
func AppendClock(dst []byte, c Clock) []byte {
	return appendClock(append(dst, clockV1), c)
}

// DecodeClock parses what AppendClock produced. Anything else, including
// a clock out of canonical order, is ErrCorrupt.
func DecodeClock(b []byte) (Clock, error) {
	d := Reader{b: b}
	if d.Byte() != clockV1 {
		return nil, ErrCorrupt
	}
	c := d.clock()
	if d.bad || len(d.b) != 0 || !c.valid() {
		return nil, ErrCorrupt
	}
	return c, nil
}

// Reader reads the primitives of dynakv's binary encodings (bytes,
// varints, length-prefixed byte strings), remembering the first failure so
// that callers check once, at the end, with Failed.
type Reader struct {
	b   []byte
	bad bool
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Failed reports whether a read ran past the input or met a bad varint.
func (d *Reader) Failed() bool { return d.bad }

// Rest returns the bytes not read yet.
func (d *Reader) Rest() []byte { return d.b }

func (d *Reader) fail() { d.bad, d.b = true, nil }

// Byte reads one byte.
func (d *Reader) Byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// Uvarint reads an unsigned varint in its shortest form: a longer one
// (a padding zero byte at its end) would decode to a value that encodes
// differently, and two encodings of one object must not both be accepted.
func (d *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a signed varint, in its shortest form as Uvarint.
func (d *Reader) Varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Bytes reads a length-prefixed byte string; it aliases the input.
func (d *Reader) Bytes() []byte { return d.take(d.Uvarint()) }

// count reads a length prefix for items of at least minSize bytes each, and
// fails if the remaining input cannot hold that many.
func (d *Reader) count(minSize int) int {
	n := d.Uvarint()
	if n > uint64(len(d.b)/minSize) {
		d.fail()
		return 0
	}
	return int(n)
}

// Next reads the next n bytes as they are; nil, and the reader failed,
// when fewer are left.
func (d *Reader) Next(n int) []byte { return d.take(uint64(n)) }

func (d *Reader) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// AppendBytes appends v with its length prefix, as Reader.Bytes reads it.
func AppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func (d *Reader) clock() Clock {
	n := d.count(3)
	if n > maxClockEntries {
		d.fail()
		return nil
	}
	var c Clock
	if n > 0 {
		c = make(Clock, n)
	}
	for i := range c {
		l := d.Uvarint()
		if l > maxActorLen {
			d.fail()
			return nil
		}
		a := d.take(l)
		c[i] = Entry{unsafe.String(unsafe.SliceData(a), len(a)), d.Uvarint()}
		if d.bad {
			return nil
		}
	}
	return c
}

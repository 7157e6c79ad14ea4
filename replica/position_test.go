package replica

import (
	"fmt"
	"testing"
)

// TestSlot checks CRC16 and hash tags against Redis's published vectors
// (the Cluster specification's reference CRC16 and its tag rules).
func TestSlot(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x31c3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]uint16{
		"":                  0,
		"123456789":         0x31c3 & (Slots - 1),
		"foo":               12182,
		"bar":               5061,
		"somekey":           11058,
		"{user1000}.a":      Slot([]byte("user1000")),
		"{user1000}.b":      Slot([]byte("user1000")),
		"foo{}{bar}":        crc16([]byte("foo{}{bar}")) & (Slots - 1), // empty tag: the whole key
		"foo{{bar}}zap":     Slot([]byte("{bar")),                      // from the first {
		"foo{bar}{zap}":     Slot([]byte("bar")),                       // the first tag only
		"{unclosed":         crc16([]byte("{unclosed")) & (Slots - 1),
		"a{b}c{d}":          Slot([]byte("b")),
		"no tags at all {}": crc16([]byte("no tags at all {}")) & (Slots - 1),
	} {
		if got := Slot([]byte(key)); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// TestPositionCarriesSlot: a position's top bits are the key's slot, so a
// partition is a run of slots, and keys sharing a tag share a partition.
func TestPositionCarriesSlot(t *testing.T) {
	for i := range 1000 {
		key := []byte(fmt.Sprintf("key:%d", i))
		pos := Position(key)
		if PositionSlot(pos) != int(Slot(key)) {
			t.Fatalf("%s: position slot %d, key slot %d", key, PositionSlot(pos), Slot(key))
		}
		for _, q := range []int{1, 16, 256, Slots} {
			p := Partition(pos, q)
			first, last := SlotRange(p, q)
			if s := int(Slot(key)); s < first || s > last {
				t.Fatalf("%s: slot %d outside partition %d's slots %d-%d of %d", key, s, p, first, last, q)
			}
		}
	}
	q := 256
	if Partition(Position([]byte("{cart:7}.items")), q) != Partition(Position([]byte("{cart:7}.total")), q) {
		t.Fatal("keys with one tag in different partitions")
	}
}

package antientropy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// hintWorld is a few real stores reached through fakes of the peer client
// and membership: what hint delivery needs, without sockets.
type hintWorld struct {
	t      *testing.T
	stores map[string]*replica.Store
	ring   gossip.Ring
	down   map[string]bool
	// batches counts MergeAll requests.
	batches int
}

func newHintWorld(t *testing.T, ids ...string) *hintWorld {
	w := &hintWorld{t: t, stores: map[string]*replica.Store{}, down: map[string]bool{}}
	for _, id := range ids {
		s, err := replica.Open(t.TempDir(), replica.Options{NodeID: id, Fsync: replica.FsyncNo, CacheSize: 4 << 20,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		w.stores[id] = s
	}
	return w
}

func (w *hintWorld) Up(node string) bool { return w.stores[node] != nil && !w.down[node] }

func (w *hintWorld) PeerAddr(node string) (string, bool) { return node, w.stores[node] != nil }

func (w *hintWorld) Ring() (gossip.Ring, bool) { return w.ring, true }

func (w *hintWorld) Merge(ctx context.Context, addr string, key []byte, o replica.Object) error {
	if w.down[addr] {
		return fmt.Errorf("%s is down", addr)
	}
	_, err := w.stores[addr].Merge(key, o)
	return err
}

func (w *hintWorld) MergeAll(ctx context.Context, addr string, objs []replica.KeyObject) error {
	if w.down[addr] {
		return fmt.Errorf("%s is down", addr)
	}
	w.batches++
	return w.stores[addr].MergeAll(nil, objs)
}

func (w *hintWorld) Hint(ctx context.Context, addr, target string, key []byte, o replica.Object) error {
	if w.down[addr] {
		return fmt.Errorf("%s is down", addr)
	}
	return w.stores[addr].Hint(target, key, o)
}

// delivery returns a hint delivery of self's store, not started.
func (w *hintWorld) delivery(self string) *HintDelivery {
	return &HintDelivery{opts: HintOptions{Self: self, N: 2, Store: w.stores[self], Peers: w, Nodes: w, Batch: 16, Rate: 1 << 20},
		log: slog.New(slog.DiscardHandler)}
}

// value is a blind write's object, as a coordinator would have sent it.
func value(v string) replica.Object {
	return replica.Update(replica.Object{}, nil, replica.Sibling{Value: []byte(v), Time: 1}, replica.Dot{Actor: "w#1", Counter: 1})
}

// keyOf returns a key of partition p of a ring of q.
func keyOf(p, q int) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("k%d", i)
		if replica.Partition(replica.Position([]byte(k)), q) == p {
			return k
		}
	}
}

func (w *hintWorld) holds(node, key, v string) bool {
	o, err := w.stores[node].Get([]byte(key))
	if err != nil {
		w.t.Fatal(err)
	}
	return slices.ContainsFunc(o.Siblings, func(s replica.Sibling) bool { return string(s.Value) == v })
}

func (w *hintWorld) hintsFor(node, target string) int64 {
	return w.stores[node].HintTargets()[target].Count
}

// TestHintsRerouted is the sixth bug of the dot design: a hint for a node
// that no longer replicates the hint's partition (the ring moved it, or
// the node left the ring) used to be stored there anyway, outside what the
// partition's replicas serve, or dropped. It goes to the key's current
// replicas: merged into those that are up, kept as a hint for those down.
func TestHintsRerouted(t *testing.T) {
	w := newHintWorld(t, "a", "b", "c", "d")
	// Four partitions: 0 and 1 owned by b, 2 and 3 by c; with N=2 every
	// partition's replicas are b and c. a and d replicate nothing.
	w.ring = gossip.Ring{Epoch: 2, Owners: []string{"b", "b", "c", "c"}}
	moved := keyOf(0, 4) // hinted for d, which no longer replicates it
	gone := keyOf(2, 4)  // hinted for e, which left the ring
	stays := keyOf(3, 4) // hinted for c, which replicates it
	whileDown := keyOf(1, 4)
	a := w.stores["a"]
	for key, target := range map[string]string{moved: "d", gone: "e", stays: "c"} {
		if err := a.Hint(target, []byte(key), value("v-"+key)); err != nil {
			t.Fatal(err)
		}
	}
	d := w.delivery("a")
	ctx := context.Background()
	d.deliver(ctx, "d") // d is up but no longer a replica of moved
	if err := d.rerouteAll(ctx, w.ring, "e", false); err != nil {
		t.Fatal(err)
	}
	d.deliver(ctx, "c")
	for _, key := range []string{moved, gone} {
		for _, r := range []string{"b", "c"} {
			if !w.holds(r, key, "v-"+key) {
				t.Errorf("replica %s lacks %s after re-routing", r, key)
			}
		}
	}
	if !w.holds("c", stays, "v-"+stays) {
		t.Errorf("c lacks the hint delivered to it")
	}
	if w.holds("d", moved, "v-"+moved) {
		t.Errorf("the hint was stored on d, which no longer replicates %s", moved)
	}
	if n := len(a.HintTargets()); n != 0 {
		t.Errorf("a still holds hints for %d targets", n)
	}
	// A replica that is down gets its copy as a hint kept here.
	w.down["c"] = true
	if err := a.Hint("d", []byte(whileDown), value("late")); err != nil {
		t.Fatal(err)
	}
	d.deliver(ctx, "d")
	if !w.holds("b", whileDown, "late") || w.hintsFor("a", "c") != 1 || w.hintsFor("a", "d") != 0 {
		t.Fatalf("with c down: b holds it %v, hints for c %d, for d %d", w.holds("b", whileDown, "late"),
			w.hintsFor("a", "c"), w.hintsFor("a", "d"))
	}
}

// TestHintsOfABatchDeliveredWhole: the hints of a write of several keys
// (one slot) reach their target in one request, stored in one batch,
// even when the page size falls inside them.
func TestHintsOfABatchDeliveredWhole(t *testing.T) {
	w := newHintWorld(t, "a", "b", "c")
	w.ring = gossip.Ring{Epoch: 2, Owners: []string{"b", "c"}}
	var objs []replica.KeyObject
	for i := range 20 {
		objs = append(objs, replica.KeyObject{Key: fmt.Appendf(nil, "{tx}k%d", i), Object: value(fmt.Sprint("v", i))})
	}
	a := w.stores["a"]
	if err := a.HintAll("c", objs); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := a.Hint("c", fmt.Appendf(nil, "single%d", i), value("s")); err != nil {
			t.Fatal(err)
		}
	}
	w.delivery("a").deliver(context.Background(), "c")
	for i := range 20 {
		if !w.holds("c", fmt.Sprintf("{tx}k%d", i), fmt.Sprint("v", i)) {
			t.Fatalf("c lacks {tx}k%d", i)
		}
	}
	if w.batches != 1 {
		t.Fatalf("%d MergeAll requests, want the batch's 20 hints in 1", w.batches)
	}
	if n := w.hintsFor("a", "c"); n != 0 {
		t.Fatalf("%d hints left for c", n)
	}
}

// TestHandOverOnLeave: a node leaving the ring gives away every hint it
// holds before it exits: to its target when that is up, and to a replica
// that is up, as a hint, for a target that is down.
func TestHandOverOnLeave(t *testing.T) {
	w := newHintWorld(t, "a", "b", "c")
	w.ring = gossip.Ring{Epoch: 3, Owners: []string{"b", "c"}} // a has left
	w.down["c"] = true
	a := w.stores["a"]
	keys := []string{keyOf(0, 2), keyOf(1, 2), "x", "y", "z"}
	for _, k := range keys {
		for _, target := range []string{"b", "c"} {
			if err := a.Hint(target, []byte(k), value("v-"+k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	left, err := w.delivery("a").HandOver(context.Background())
	if err != nil || left != 0 {
		t.Fatalf("hand-over: %d left, %v", left, err)
	}
	for _, k := range keys {
		if !w.holds("b", k, "v-"+k) {
			t.Errorf("b lacks %s", k)
		}
	}
	if got := w.hintsFor("b", "c"); got != int64(len(keys)) {
		t.Fatalf("b keeps %d hints for the down c, want %d", got, len(keys))
	}
	w.down["c"] = false
	w.delivery("b").deliver(context.Background(), "c")
	for _, k := range keys {
		if !w.holds("c", k, "v-"+k) {
			t.Errorf("c lacks %s once back", k)
		}
	}
}

// migRing adds what the migration needs to a hintWorld.
type migRing struct {
	*hintWorld
	migrated uint64
}

func (m *migRing) Changed() <-chan struct{} { return nil }
func (m *migRing) SetMigrated(epoch uint64) { m.migrated = epoch }

// TestMigrationMovesLegacyKeys: on a legacy ring, a node pushes the
// objects of the partitions it does not replicate to their primaries
// (a hint for one that is down), then reports its pass done.
func TestMigrationMovesLegacyKeys(t *testing.T) {
	w := newHintWorld(t, "a", "b", "c", "d")
	// Partitions 0-1 are b's and c's, 2-3 c's and d's (N=2): a holds
	// keys of every partition, as a converted legacy replica would.
	w.ring = gossip.Ring{Epoch: 5, Owners: []string{"b", "b", "c", "d"}, Legacy: true}
	w.down["d"] = true
	var keys []string
	for p := range 4 {
		for i := range 40 {
			k := keyOf(p, 4) + fmt.Sprintf("-%d", i)
			if replica.Partition(replica.Position([]byte(k)), 4) != p {
				continue
			}
			keys = append(keys, k)
			if _, err := w.stores["a"].Merge([]byte(k), value("v-"+k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := &migRing{hintWorld: w}
	m := &Migration{opts: MigrationOptions{Self: "a", N: 2, Ring: r, Peers: w, Store: w.stores["a"], Batch: 7, Rate: 1 << 20},
		log: slog.New(slog.DiscardHandler)}
	if err := m.pass(context.Background(), w.ring); err != nil {
		t.Fatal(err)
	}
	hinted := 0
	for _, k := range keys {
		p := replica.Partition(replica.Position([]byte(k)), 4)
		for _, id := range gossip.Preference(w.ring.Owners, p, 2) {
			if id == "d" {
				hinted++
				continue
			}
			if !w.holds(id, k, "v-"+k) {
				t.Errorf("%s (partition %d) did not reach %s", k, p, id)
			}
		}
	}
	if got := w.hintsFor("a", "d"); got != int64(hinted) || hinted == 0 {
		t.Fatalf("a keeps %d hints for the down d, want %d", got, hinted)
	}
	if m.Pending() != 0 {
		t.Fatalf("%d partitions pending after a whole pass", m.Pending())
	}
}

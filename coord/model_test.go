package coord

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// The model test runs an in-memory cluster through a seeded random
// schedule of writes, deletes, tombstone purges, crashes that lose what was
// not synced, partitions and heals; then it heals everything, delivers
// every hint and merges every replica, and checks the two invariants that
// every guarantee rests on:
//
//   - no dot is ever minted twice (each write's dot names it alone);
//   - every acknowledged write is in the final object, or a later write
//     superseded it: it was in the object that write was decided against,
//     and the write's context covered it;
//
// and that every replica ends with the same object, and every counter
// counts each acknowledged increment once and no increment twice.

// modelPlacement is a fixed ring whose nodes are down while crashed.
type modelPlacement struct {
	staticPlacement
	mu   sync.Mutex
	down map[string]bool
}

func (p *modelPlacement) Up(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.down[node]
}

func (p *modelPlacement) setDown(node string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[node] = down
}

type modelNode struct {
	id    string
	fs    *vfs.MemFS
	store *replica.Store
	coord *Coordinator
	down  bool
}

// write is one write the model made, as its coordinator reported it.
type write struct {
	key, value string
	dot        replica.Dot
	seen       replica.Clock
	acked      bool
}

type model struct {
	t       *testing.T
	rng     *rand.Rand
	net     *MemNetwork
	place   *modelPlacement
	ids     []string
	nodes   map[string]*modelNode
	opts    Options
	writes  []write
	dots    map[replica.Dot]int // dot -> index in writes
	values  int
	cut     bool
	lossy   bool // a node lost unsynced writes since the last sync of all
	incrs   map[string][2]int
	crashes int
	purges  int
	// superseded holds every dot a write removed from the object it was
	// decided against: the versions that write really saw.
	superseded struct {
		sync.Mutex
		dots map[replica.Dot]bool
	}
	events []string // what happened, for the report of a failure
}

func (m *model) logf(format string, args ...any) {
	m.events = append(m.events, fmt.Sprintf(format, args...))
}

var (
	modelKeys     = []string{"a", "b", "c", "d", "e", "f"}
	modelCounters = []string{"hits", "likes"}
)

func newModel(t *testing.T, seed uint64) *model {
	m := &model{
		t: t, rng: rand.New(rand.NewPCG(seed, 99)), net: NewMemNetwork(seed),
		nodes: map[string]*modelNode{}, dots: map[replica.Dot]int{}, incrs: map[string][2]int{},
	}
	m.superseded.dots = map[replica.Dot]bool{}
	for i := range 5 {
		m.ids = append(m.ids, fmt.Sprintf("n%d", i+1))
	}
	m.place = &modelPlacement{staticPlacement: staticPlacement{gossip.Assign(nil, m.ids, 16, 3), 3}, down: map[string]bool{}}
	m.opts = Options{N: 3, R: 2, W: 2, Timeout: 30 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	for _, id := range m.ids {
		n := &modelNode{id: id, fs: vfs.NewCrashableMem()}
		m.nodes[id] = n
		m.start(n)
	}
	t.Cleanup(func() {
		for _, n := range m.nodes {
			if !n.down {
				_ = n.coord.Wait(context.Background())
				_ = n.store.Close()
			}
		}
	})
	return m
}

// start opens n's store on its filesystem and puts it on the network.
func (m *model) start(n *modelNode) {
	store, err := replica.Open("/db", replica.Options{NodeID: n.id, Fsync: replica.FsyncNo, CacheSize: 4 << 20,
		FS: n.fs, Logger: m.opts.Logger})
	if err != nil {
		m.t.Fatalf("%s does not start: %v", n.id, err)
	}
	opts := m.opts
	opts.Self = n.id
	n.store, n.coord, n.down = store, New(store, m.net.Transport(n.id), m.place, opts), false
	n.coord.decided = func(base replica.Object, res Result) {
		m.superseded.Lock()
		defer m.superseded.Unlock()
		for _, s := range base.Siblings {
			if res.Seen.Covers(s.Dot) {
				m.superseded.dots[s.Dot] = true
			}
		}
	}
	m.net.Add(n.id, store, n.coord)
	m.place.setDown(n.id, false)
	m.logf("start %s as %s", n.id, store.Actor())
}

// crash cuts n's power: what it did not sync is gone.
func (m *model) crash(n *modelNode) {
	n.fs = n.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	m.net.Remove(n.id)
	m.place.setDown(n.id, true)
	_ = n.coord.Wait(context.Background())
	_ = n.store.Close()
	n.down = true
	m.lossy = true
	m.crashes++
	m.logf("crash %s", n.id)
}

// syncAll makes everything every live node wrote durable (as the
// everysec tick would), so that a later crash cannot lose it.
func (m *model) syncAll() {
	for _, n := range m.live() {
		if err := n.store.FlushMemtable(); err != nil {
			m.t.Fatal(err)
		}
	}
	if len(m.live()) == len(m.ids) {
		m.lossy = false
	}
}

func (m *model) live() []*modelNode {
	var out []*modelNode
	for _, id := range m.ids {
		if n := m.nodes[id]; !n.down {
			out = append(out, n)
		}
	}
	return out
}

func (m *model) pick(nodes []*modelNode) *modelNode { return nodes[m.rng.IntN(len(nodes))] }

// record notes a write's outcome and checks that its dot is new.
func (m *model) record(key, value string, res Result, err error) {
	if !res.Written || res.Dot.Counter == 0 {
		return
	}
	if i, dup := m.dots[res.Dot]; dup {
		m.t.Fatalf("dot %v minted twice: for %s=%s and %s=%s", res.Dot, m.writes[i].key, m.writes[i].value, key, value)
	}
	m.dots[res.Dot] = len(m.writes)
	m.writes = append(m.writes, write{key, value, res.Dot, res.Seen.Clone(), err == nil})
	m.logf("write %d %s=%q dot %v seen %v err %v", len(m.writes)-1, key, value, res.Dot, res.Seen, err)
}

func (m *model) step() {
	live := m.live()
	via := m.pick(live)
	ctx := context.Background()
	switch r := m.rng.IntN(100); {
	case r < 40:
		key := modelKeys[m.rng.IntN(len(modelKeys))]
		m.values++
		v := "v" + strconv.Itoa(m.values)
		res, err := via.coord.Write(ctx, []byte(key), Op{Kind: Put, Value: []byte(v)})
		m.record(key, v, res, err)
	case r < 48:
		key := modelKeys[m.rng.IntN(len(modelKeys))]
		res, err := via.coord.Write(ctx, []byte(key), Op{Kind: Delete})
		m.record(key, "", res, err)
	case r < 58: // a client's read-modify-write with a context
		key := modelKeys[m.rng.IntN(len(modelKeys))]
		o, err := via.coord.Get(ctx, []byte(key), 0)
		if err != nil {
			return
		}
		m.values++
		v := "c" + strconv.Itoa(m.values)
		// The siblings the read returned are what this write supersedes,
		// wherever it is decided (the coordinator may not hold them yet),
		// once it lands; it may land even when it answers an error.
		m.superseded.Lock()
		for _, s := range o.Siblings {
			m.superseded.dots[s.Dot] = true
		}
		m.superseded.Unlock()
		res, err := via.coord.Write(ctx, []byte(key), Op{Kind: Put, Value: []byte(v), HasContext: true, Context: o.Context()})
		m.record(key, v, res, err)
	case r < 68:
		key := modelCounters[m.rng.IntN(len(modelCounters))]
		_, err := via.coord.Write(ctx, []byte(key), Op{Kind: Incr, Delta: 1})
		c := m.incrs[key]
		c[1]++
		if err == nil {
			c[0]++
		}
		m.incrs[key] = c
	case r < 71:
		if len(live) > 3 && !m.lossy {
			m.crash(m.pick(live))
		}
	case r < 79:
		for _, id := range m.ids {
			if n := m.nodes[id]; n.down {
				m.start(n)
				break
			}
		}
	case r < 84:
		m.syncAll()
		m.logf("sync all live")
	case r < 87:
		perm := m.rng.Perm(len(m.ids))
		cut := 1 + m.rng.IntN(2)
		var a, b []string
		for i, j := range perm {
			if i < cut {
				a = append(a, m.ids[j])
			} else {
				b = append(b, m.ids[j])
			}
		}
		m.net.Heal()
		m.net.Partition(a, b)
		m.cut = true
		m.logf("partition %v | %v", a, b)
	case r < 93:
		m.net.Heal()
		m.cut = false
		m.logf("heal")
	case r < 96:
		if !m.cut {
			m.deliverHints(via)
		}
	default:
		// A delete, repaired everywhere, whose tombstone one node then
		// reaps: the next write of the key through that node must not
		// mint a dot the others' tombstone covers.
		key := modelKeys[m.rng.IntN(len(modelKeys))]
		res, err := via.coord.Write(ctx, []byte(key), Op{Kind: Delete})
		m.record(key, "", res, err)
		m.purge(via, key)
	}
}

// deliverHints hands the hints from holds to their targets, when they are
// up and every link is whole.
func (m *model) deliverHints(from *modelNode) {
	for target := range from.store.HintTargets() {
		to := m.nodes[target]
		if to.down {
			continue
		}
		hs, err := from.store.Hints(target, nil, 1<<20)
		if err != nil {
			m.t.Fatal(err)
		}
		for _, h := range hs {
			if _, err := to.store.Merge(h.Key, h.Object); err != nil {
				m.t.Fatal(err)
			}
		}
		// The hints go only once the target has them durably: a target
		// that loses a delivered hint in a power cut under everysec loses
		// its last second like any write, which this model does not test.
		if err := to.store.FlushMemtable(); err != nil {
			m.t.Fatal(err)
		}
		for _, h := range hs {
			if _, err := from.store.DeliveredHint(target, h.Key, h.Object); err != nil {
				m.t.Fatal(err)
			}
		}
	}
}

// purge runs what DYN.REPAIR on node does for key once every primary
// holds its tombstone: hints delivered, the primaries merged, and then the
// tombstone reaped on node alone; the other primaries keep theirs.
func (m *model) purge(node *modelNode, key string) {
	if m.cut || len(m.live()) < len(m.ids) {
		return
	}
	primaries, _, _ := m.place.Preference(replica.Position([]byte(key)))
	if !slices.Contains(primaries, node.id) {
		return
	}
	for _, n := range m.nodes {
		if err := n.coord.Wait(context.Background()); err != nil {
			m.t.Fatal(err)
		}
	}
	for _, id := range m.ids {
		m.deliverHints(m.nodes[id])
	}
	merged := m.mergeKey(key)
	if !replica.TombstoneOnly(merged) {
		return
	}
	if ok, err := node.store.Purge([]byte(key), merged.Clock); err == nil && ok {
		m.purges++
		m.logf("purge %s on %s, clock %v", key, node.id, merged.Clock)
	}
}

// mergeKey merges key's replicas into each other, as an exchange does,
// and returns the merged object.
func (m *model) mergeKey(key string) replica.Object {
	primaries, _, _ := m.place.Preference(replica.Position([]byte(key)))
	var all replica.Object
	for _, id := range primaries {
		o, err := m.nodes[id].store.Get([]byte(key))
		if err != nil {
			m.t.Fatal(err)
		}
		all = replica.Sync(all, o)
	}
	for _, id := range primaries {
		if _, err := m.nodes[id].store.Merge([]byte(key), all); err != nil {
			m.t.Fatal(err)
		}
	}
	return all
}

// settle heals everything, brings every node back, delivers every hint and
// merges every replica of every key with every other.
func (m *model) settle() {
	m.net.Heal()
	m.cut = false
	for _, id := range m.ids {
		if n := m.nodes[id]; n.down {
			m.start(n)
		}
	}
	for _, n := range m.nodes {
		if err := n.coord.Wait(context.Background()); err != nil {
			m.t.Fatal(err)
		}
	}
	for range 3 {
		for _, id := range m.ids {
			m.deliverHints(m.nodes[id])
		}
	}
	for _, key := range append(slices.Clone(modelKeys), modelCounters...) {
		m.mergeKey(key)
	}
}

// check verifies the invariants on the settled cluster.
func (m *model) check() {
	now := time.Now().UnixMilli()
	final := map[string]replica.Object{}
	for _, key := range append(slices.Clone(modelKeys), modelCounters...) {
		primaries, _, _ := m.place.Preference(replica.Position([]byte(key)))
		for i, id := range primaries {
			o, err := m.nodes[id].store.Get([]byte(key))
			if err != nil {
				m.t.Fatal(err)
			}
			if i == 0 {
				final[key] = o
			} else if !o.Equal(final[key]) {
				m.t.Fatalf("%s: replicas %s and %s differ after repair:\n%+v\n%+v", key, primaries[0], id, final[key], o)
			}
		}
	}
	lost := 0
	for i, w := range m.writes {
		if !w.acked || w.value == "" {
			continue
		}
		if slices.ContainsFunc(final[w.key].Siblings, func(s replica.Sibling) bool { return s.Dot == w.dot }) {
			continue
		}
		// Not "a later clock covers it": a dot minted twice, or a clock
		// that claims what its minter lost, covers writes nobody saw.
		if !m.superseded.dots[w.dot] {
			lost++
			m.t.Errorf("acknowledged write %d %s=%s (dot %v) is gone, and no write saw it", i, w.key, w.value, w.dot)
		}
	}
	for key, c := range m.incrs {
		v, _ := final[key].Resolve(now)
		n, _ := strconv.Atoi(string(v.Bytes))
		if n < c[0] || n > c[1] {
			m.t.Errorf("counter %s reads %d: %d increments acknowledged, %d tried", key, n, c[0], c[1])
		}
	}
	if lost > 0 {
		for _, e := range m.events {
			m.t.Log(e)
		}
		for key, o := range final {
			m.t.Logf("final %s: %+v", key, o)
		}
		m.t.Fatalf("%d acknowledged writes lost", lost)
	}
}

// TestModel runs the model over many seeds. Set -short for a quick run,
// or DYNAKV_MODEL_SEEDS=first-last for a long campaign; a failure names
// its seed, and TestModel/seed=N replays it (as far as goroutine
// scheduling allows).
func TestModel(t *testing.T) {
	first, last, steps := uint64(1), uint64(8), 1000
	if testing.Short() {
		last, steps = 3, 400
	}
	if r := os.Getenv("DYNAKV_MODEL_SEEDS"); r != "" {
		if _, err := fmt.Sscanf(r, "%d-%d", &first, &last); err != nil {
			t.Fatalf("DYNAKV_MODEL_SEEDS=%q: want first-last", r)
		}
	}
	for seed := first; seed <= last; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			m := newModel(t, seed)
			for range steps {
				m.step()
			}
			m.settle()
			m.check()
			acked := 0
			for _, w := range m.writes {
				if w.acked {
					acked++
				}
			}
			t.Logf("seed %d: %d writes minted, %d acknowledged, %d crashes, %d tombstones purged", seed, len(m.writes), acked, m.crashes, m.purges)
		})
	}
}

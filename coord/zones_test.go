package coord

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/dynakv/dynakv/replica"
)

// zonedPlacement is a static ring of nodes in zones whose writes must
// spread their acknowledgements across zones.
type zonedPlacement struct {
	staticPlacement
	zones map[string]string
}

func (p zonedPlacement) Preference(pos uint64) ([]string, []string, []string) {
	all := gossip.ZonedPreference(p.owners, p.zones, replica.Partition(pos, len(p.owners)), p.n, len(p.zones))
	return all[:p.n], all[p.n:], nil
}

func (p zonedPlacement) Zone(node string) string { return p.zones[node] }

func (p zonedPlacement) SpreadAcks() bool { return true }

// TestWriteAcksSpreadAcrossZones: while every zone is up, a write's W
// acknowledgements come from W zones. With the primaries of two zones cut
// off, a fallback of the primary's own zone keeps the hint; with every
// node of those zones cut off, hints kept in the coordinator's zone alone
// do not make W, and the write answers UNAVAILABLE rather than leave every
// copy in one zone.
func TestWriteAcksSpreadAcrossZones(t *testing.T) {
	tc := newTestCluster(t, 33, 6, 3, 2, 2, 300*time.Millisecond)
	zones := map[string]string{}
	for i, id := range tc.ids {
		zones[id] = []string{"A", "B", "C"}[i%3]
	}
	owners := gossip.AssignZones(nil, tc.ids, zones, 64, 3)
	place := zonedPlacement{staticPlacement{owners, 3}, zones}
	for _, id := range tc.ids {
		tc.nodes[id].coord.place = place
	}
	key := "spread"
	p, fb, _ := place.Preference(replica.Position([]byte(key)))
	if zs := []string{zones[p[0]], zones[p[1]], zones[p[2]]}; len(slices.Compact(slices.Sorted(slices.Values(zs)))) != 3 {
		t.Fatalf("primaries %v in zones %v", p, zs)
	}
	// The other two zones' primaries cut off from the coordinator: their
	// zones' fallbacks stand in.
	tc.net.Partition([]string{p[0]}, []string{p[1], p[2]})
	if _, err := tc.put(p[0], key, "v1", Op{}); err != nil {
		t.Fatalf("write with two primaries cut off and their zones' fallbacks up: %v", err)
	}
	tc.net.Heal()
	// Every node of the other two zones cut off: only the coordinator's
	// zone can keep copies.
	var others []string
	for _, id := range append(slices.Clone(p[1:]), fb...) {
		if zones[id] != zones[p[0]] {
			others = append(others, id)
		}
	}
	tc.net.Partition([]string{p[0]}, others)
	if _, err := tc.put(p[0], key, "v2", Op{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with every copy in one zone: %v, want UNAVAILABLE", err)
	}
}

package coord

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
)

// legacyPlacement is a static ring whose keys may still sit at their
// legacy positions' replicas.
type legacyPlacement struct{ staticPlacement }

func (legacyPlacement) Legacy() bool { return true }

// TestLegacyReadFindsUnmovedKeys: while a converted cluster still has keys
// on the replicas of their legacy positions, a read finds them there,
// merged with what the key's replicas hold, and repairs the replicas.
func TestLegacyReadFindsUnmovedKeys(t *testing.T) {
	tc := newTestCluster(t, 30, 6, 3, 2, 2, time.Second)
	place := legacyPlacement{staticPlacement{tc.owners, tc.n}}
	for _, id := range tc.ids {
		tc.nodes[id].coord.place = place
	}
	// A key whose legacy replicas and replicas share no node.
	var key string
	var legacy []string
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("old:%d", i)
		l, _, _ := place.Preference(replica.LegacyPosition([]byte(k)))
		if !slices.ContainsFunc(l, func(id string) bool { return slices.Contains(tc.primaries(k), id) }) {
			key, legacy = k, l
		}
	}
	old := replica.Update(replica.Object{}, nil, replica.Sibling{Value: []byte("before the move"), Time: 1},
		replica.Dot{Actor: "n9#old", Counter: 7})
	for _, id := range legacy {
		if _, err := tc.nodes[id].store.Merge([]byte(key), old); err != nil {
			t.Fatal(err)
		}
	}
	via := tc.primaries(key)[0]
	o, err := tc.nodes[via].coord.Get(context.Background(), []byte(key), 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := o.Resolve(time.Now().UnixMilli()); !ok || string(v.Bytes) != "before the move" {
		t.Fatalf("read during the move = %q, %v; want the value at the legacy replicas", v.Bytes, ok)
	}
	eventually(t, "the key's replicas to be repaired", func() bool {
		for _, id := range tc.primaries(key) {
			if !slices.Equal(tc.local(id, key), []string{"before the move"}) {
				return false
			}
		}
		return true
	})
}

package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/dynakv/dynakv/replica"
	"github.com/redis/go-redis/v9"
)

// TestClusterSecret runs a cluster with security.cluster_secret: a peer
// command without AUTH, or with the wrong secret, is refused and changes
// nothing; nodes without the secret, or with another, cannot join the
// encrypted gossip.
func TestClusterSecret(t *testing.T) {
	secret := "[security]\ncluster_secret = \"right horse battery staple\"\n"
	nodes := StartCluster(t, 2, secret)
	c := ctx(t)

	// A forged replica write straight to the peer port.
	obj, _ := replica.Update(replica.Object{}, nil, replica.Sibling{Value: []byte("forged"), Time: time.Now().UnixMilli()}, "mallory#1")
	forged := string(replica.AppendObject(nil, obj))
	for _, pass := range []string{"", "wrong secret"} {
		peer := redis.NewClient(&redis.Options{Addr: nodes[0].Peer, Protocol: 2, DisableIdentity: true, Password: pass})
		for _, cmd := range [][]any{{replica.CmdMerge, "stolen", forged}, {replica.CmdGet, "stolen"}, {replica.CmdHint, "n2", "stolen", forged}} {
			err := peer.Do(c, cmd...).Err()
			if err == nil || !(strings.Contains(err.Error(), "NOAUTH") || strings.Contains(err.Error(), "WRONGPASS")) {
				t.Fatalf("peer %v with password %q = %v, want refused", cmd[0], pass, err)
			}
		}
		peer.Close()
	}
	for _, n := range nodes {
		if got := peerRead(t, n, "stolen"); !got.Empty() {
			t.Fatalf("a refused peer command changed %s: %v", n.ID, got)
		}
		if err := n.Redis().Get(c, "stolen").Err(); err != redis.Nil {
			t.Fatalf("GET stolen on %s = %v, want nil", n.ID, err)
		}
	}

	// Strangers at the gossip port: no secret, and another secret.
	for i, extra := range []string{"", "[security]\ncluster_secret = \"guess\"\n"} {
		stranger := NewNode(t, []string{"x1", "x2"}[i], extra)
		stranger.ClusterName = nodes[0].ClusterName
		stranger.Seeds = []string{nodes[0].Gossip}
		stranger.Start()
		time.Sleep(3 * time.Second)
		for _, n := range append(nodes, stranger) {
			members, err := n.Redis().Do(c, "DYN.MEMBERS").Slice()
			if err != nil {
				t.Fatal(err)
			}
			want := 2
			if n == stranger {
				want = 1
			}
			if len(members) != want {
				t.Fatalf("%s sees %d members with a stranger (%s) at the door, want %d: %v", n.ID, len(members), stranger.ID, want, members)
			}
		}
		stranger.Kill()
	}
	waitRing(t, nodes, 2)
}

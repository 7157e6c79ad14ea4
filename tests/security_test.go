package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynakv/dynakv/peer"
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
	obj := replica.Update(replica.Object{}, nil, replica.Sibling{Value: []byte("forged"), Time: time.Now().UnixMilli()}, replica.Dot{Actor: "mallory#1", Counter: 1})
	forged := string(replica.AppendObject(nil, obj))
	for _, pass := range []string{"", "wrong secret"} {
		client := redis.NewClient(&redis.Options{Addr: nodes[0].Peer, Protocol: 2, DisableIdentity: true, Password: pass})
		for _, cmd := range [][]any{{peer.CmdMerge, "stolen", forged}, {peer.CmdGet, "stolen"}, {peer.CmdHint, "n2", "stolen", forged}} {
			err := client.Do(c, cmd...).Err()
			if err == nil || !(strings.Contains(err.Error(), "NOAUTH") || strings.Contains(err.Error(), "WRONGPASS")) {
				t.Fatalf("peer %v with password %q = %v, want refused", cmd[0], pass, err)
			}
		}
		client.Close()
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

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns a pool that trusts it.
func selfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dynakv test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

// TestClientTLS serves the client port over TLS: go-redis and
// redis-cli --tls work through it, a plaintext client gets nowhere.
func TestClientTLS(t *testing.T) {
	cli := needTool(t, "redis-cli")
	n := NewNode(t, "n1", "[security]\ntls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"\n")
	n.TLS = &tls.Config{RootCAs: selfSigned(t, n.Dir), MinVersion: tls.VersionTLS12}
	n.Start()
	c := ctx(t)
	if err := n.Redis().Set(c, "secret", "over tls", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}
	host, port, _ := net.SplitHostPort(n.Client)
	out, err := exec.Command(cli, "--tls", "--cacert", filepath.Join(n.Dir, "cert.pem"), "-h", host, "-p", port, "GET", "secret").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "over tls" {
		t.Fatalf("redis-cli --tls GET: %q, %v", out, err)
	}
	plain := redis.NewClient(&redis.Options{Addr: n.Client, Protocol: 2, MaxRetries: -1, ReadTimeout: 2 * time.Second})
	defer plain.Close()
	if err := plain.Ping(c).Err(); err == nil {
		t.Fatal("a plaintext client was answered on the TLS port")
	}
	out, _ = exec.Command(cli, "-h", host, "-p", port, "GET", "secret").CombinedOutput()
	if strings.Contains(string(out), "over tls") {
		t.Fatalf("plaintext redis-cli read the value: %q", out)
	}
}

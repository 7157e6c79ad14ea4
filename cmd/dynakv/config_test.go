package main

import (
	"strings"
	"testing"
	"time"
)

// The repo's config.toml is the single-node default and must load as is.
func TestRepoConfigLoads(t *testing.T) {
	c, err := LoadConfig("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != "n1" || c.Replication.N != 3 || c.Replication.Timeout.Duration != time.Second ||
		c.Storage.Fsync != "everysec" || c.Limits.ProtoMaxBulkLen != 512<<20 {
		t.Fatalf("unexpected values: %+v", c)
	}
	// Every key the repo's file sets must be a key this config knows; the
	// defaults must agree with what the file documents.
	d := DefaultConfig()
	d.Node = c.Node
	d.path = c.path
	if strings.TrimSpace(tomlString(t, d)) != strings.TrimSpace(tomlString(t, c)) {
		t.Fatalf("config.toml and DefaultConfig disagree:\n%s\nvs\n%s", tomlString(t, c), tomlString(t, d))
	}
}

func tomlString(t *testing.T, c Config) string {
	t.Helper()
	var b strings.Builder
	if err := encodeTOML(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestParseSize(t *testing.T) {
	cases := map[string]int64{"512mb": 512 << 20, "1024": 1024, "64k": 64000, "1gb": 1 << 30, "10 MB": 10 << 20}
	for in, want := range cases {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "mb", "12xb", "-1", "99999999999999gb"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	base := "[node]\nid = \"n1\"\ndata_dir = \"d\"\n"
	cases := map[string]string{
		base + "[cluster]\npartitions = 100\n":             "cluster.partitions",
		base + "[replication]\nr = 4\n":                    "replication.r",
		base + "[listen]\nclient = \"nohost\"\n":           "listen.client",
		base + "[limits]\nproto_max_bulk_len = \"lots\"":   "limits.proto_max_bulk_len",
		"[node]\nid = \"bad id\"\ndata_dir = \"d\"\n":      "node.id",
		"[node]\nid = \"n1\"\n":                            "node.data_dir",
		base + "[cluster]\nseeds = [\"x\"]\n":              "cluster.seeds[0]",
		base + "[limits]\nquery_buffer_limit = \"10mb\"\n": "limits.query_buffer_limit",
		base + "[limits]\nidle_timeout = \"-1s\"\n":        "limits.idle_timeout",
		base + "[listen]\nclient = \"0.0.0.0:6379\"\n":     "listen.advertise",
		base + "[listen]\npeer = \":16379\"\n":             "listen.advertise",
		base + "[listen]\nadvertise = \"0.0.0.0\"\n":       "listen.advertise",
		base + "[listen]\nadvertise = \"10.0.0.1:6379\"\n": "listen.advertise",
		base + "[log]\nlevel = \"loud\"\n":                 "log.level",
		base + "[log]\nformat = \"xml\"\n":                 "log.format",
	}
	for text, key := range cases {
		_, err := ParseConfig(text)
		if err == nil || !strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "\n") {
			t.Errorf("config %q: error %v does not name %s on one line", text, err, key)
		}
	}
}

// A node may bind every interface when it advertises the host the others
// reach it at; the advertised addresses keep the ports listened on.
func TestAdvertise(t *testing.T) {
	c, err := ParseConfig("[node]\nid = \"n1\"\ndata_dir = \"d\"\n[listen]\nclient = \":6379\"\npeer = \"0.0.0.0:16379\"\ngossip = \"[::]:7946\"\nadvertise = \"10.1.2.3\"\n")
	if err != nil {
		t.Fatal(err)
	}
	for listen, want := range map[string]string{
		c.Listen.Client: "10.1.2.3:6379", c.Listen.Peer: "10.1.2.3:16379", "[::]:7946": "10.1.2.3:7946",
	} {
		if got := c.advertised(listen); got != want {
			t.Errorf("advertised(%q) = %q, want %q", listen, got, want)
		}
	}
	d := DefaultConfig()
	if got := d.advertised(d.Listen.Client); got != d.Listen.Client {
		t.Errorf("without advertise, advertised(%q) = %q", d.Listen.Client, got)
	}
}

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
	}
	for text, key := range cases {
		_, err := ParseConfig(text)
		if err == nil || !strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "\n") {
			t.Errorf("config %q: error %v does not name %s on one line", text, err, key)
		}
	}
}

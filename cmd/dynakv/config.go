package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/dynakv/dynakv/replica"
)

// Config is a node's config.toml, decoded. Only this package reads it;
// each library package receives the options it needs.
type Config struct {
	Node struct {
		ID      string `toml:"id"`
		DataDir string `toml:"data_dir"`
		// Zone is the node's rack, room or data center: a key's N replicas
		// go to distinct zones while there are at least N.
		Zone string `toml:"zone"`
	} `toml:"node"`
	Listen struct {
		Client string `toml:"client"`
		Peer   string `toml:"peer"`
		Gossip string `toml:"gossip"`
		// Advertise is the host the other nodes and cluster-aware clients
		// reach this node at; empty: the listen hosts, which must then be
		// specific addresses.
		Advertise string `toml:"advertise"`
	} `toml:"listen"`
	Cluster struct {
		Name       string   `toml:"name"`
		Seeds      []string `toml:"seeds"`
		Partitions int      `toml:"partitions"`
	} `toml:"cluster"`
	Replication struct {
		N       int      `toml:"n"`
		R       int      `toml:"r"`
		W       int      `toml:"w"`
		Timeout Duration `toml:"timeout"`
	} `toml:"replication"`
	Storage struct {
		Fsync       string `toml:"fsync"`
		CacheSize   Size   `toml:"cache_size"`
		ObjectCache Size   `toml:"object_cache"`
		// CheckpointDir is where DYN.CHECKPOINT writes; empty: next to
		// the data directory, as data_dir + ".checkpoints".
		CheckpointDir string `toml:"checkpoint_dir"`
	} `toml:"storage"`
	Security struct {
		RequirePass   string `toml:"requirepass"`
		ClusterSecret string `toml:"cluster_secret"`
		// TLSCertFile and TLSKeyFile, both set, make the client port
		// speak TLS only (PEM files, relative to the config file).
		TLSCertFile string `toml:"tls_cert_file"`
		TLSKeyFile  string `toml:"tls_key_file"`
	} `toml:"security"`
	Metrics struct {
		Listen string `toml:"listen"`
	} `toml:"metrics"`
	Handoff struct {
		MaxHintBytes Size     `toml:"max_hint_bytes"`
		HintWindow   Duration `toml:"hint_window"`
		DeliverRate  int      `toml:"deliver_rate"`
		TransferRate int      `toml:"transfer_rate"`
		DropAfter    Duration `toml:"drop_after"`
	} `toml:"handoff"`
	AntiEntropy struct {
		Interval       Duration `toml:"interval"`
		RepairRate     int      `toml:"repair_rate"`
		TombstoneGrace Duration `toml:"tombstone_grace"`
	} `toml:"antientropy"`
	Gossip struct {
		ProbeInterval Duration `toml:"probe_interval"`
		ProbeTimeout  Duration `toml:"probe_timeout"`
		SuspicionMult int      `toml:"suspicion_mult"`
	} `toml:"gossip"`
	Log struct {
		Level  string `toml:"level"`
		Format string `toml:"format"`
	} `toml:"log"`
	Limits struct {
		ProtoMaxBulkLen  Size     `toml:"proto_max_bulk_len"`
		MaxClients       int      `toml:"maxclients"`
		QueryBufferLimit Size     `toml:"query_buffer_limit"`
		IdleTimeout      Duration `toml:"idle_timeout"`
	} `toml:"limits"`

	// path is the file the config was read from; relative paths in it are
	// relative to its directory.
	path string
}

// Duration is a TOML string such as "1s" or "250ms".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText renders the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Size is a byte count: an integer, or a string with Redis's units ("512mb",
// "64k", "1gb").
type Size int64

// UnmarshalTOML accepts an integer or a string with a unit.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*s = Size(v)
		return nil
	case string:
		n, err := parseSize(v)
		*s = Size(n)
		return err
	}
	return fmt.Errorf("want a size such as 512mb, got %v", v)
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 * 1000, "mb": 1024 * 1024,
	"g": 1000 * 1000 * 1000, "gb": 1024 * 1024 * 1024,
}

func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	unit, ok := sizeUnits[strings.TrimSpace(t[i:])]
	if err != nil || !ok || n > (1<<62)/unit {
		return 0, fmt.Errorf("%q is not a size such as 512mb", s)
	}
	return n * unit, nil
}

// DefaultConfig returns the config of a single node with every key at its
// default, as the repo's config.toml spells them out.
func DefaultConfig() Config {
	var c Config
	c.Listen.Client = "127.0.0.1:6379"
	c.Listen.Peer = "127.0.0.1:16379"
	c.Listen.Gossip = "127.0.0.1:7946"
	c.Cluster.Name = "dynakv"
	c.Cluster.Seeds = []string{}
	c.Cluster.Partitions = 256
	c.Replication.N, c.Replication.R, c.Replication.W = 3, 2, 2
	c.Replication.Timeout = Duration{time.Second}
	c.Storage.Fsync = "everysec"
	c.Storage.CacheSize = 64 << 20
	c.Storage.ObjectCache = 32 << 20
	c.Handoff.MaxHintBytes = 256 << 20
	c.Handoff.HintWindow = Duration{3 * time.Hour}
	c.Handoff.DeliverRate = 5000
	c.Handoff.TransferRate = 20000
	c.Handoff.DropAfter = Duration{time.Minute}
	c.AntiEntropy.Interval = Duration{time.Minute}
	c.AntiEntropy.RepairRate = 5000
	c.AntiEntropy.TombstoneGrace = Duration{24 * time.Hour}
	c.Gossip.ProbeInterval = Duration{500 * time.Millisecond}
	c.Gossip.ProbeTimeout = Duration{250 * time.Millisecond}
	c.Gossip.SuspicionMult = 4
	c.Log.Level, c.Log.Format = "info", "text"
	c.Limits.ProtoMaxBulkLen = 512 << 20
	c.Limits.MaxClients = 10000
	c.Limits.QueryBufferLimit = 1 << 30
	return c
}

// LoadConfig reads, decodes and validates a config file. Its error is one
// line that names the offending key.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(string(b))
	if err != nil {
		return Config{}, err
	}
	c.path = path
	for _, f := range []*string{&c.Security.TLSCertFile, &c.Security.TLSKeyFile} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(path), *f)
		}
	}
	if c.Storage.CheckpointDir != "" && !filepath.IsAbs(c.Storage.CheckpointDir) {
		c.Storage.CheckpointDir = filepath.Join(filepath.Dir(path), c.Storage.CheckpointDir)
	}
	if c.Node.DataDir != "" && !filepath.IsAbs(c.Node.DataDir) {
		c.Node.DataDir = filepath.Join(filepath.Dir(path), c.Node.DataDir)
	}
	return c, nil
}

// ParseConfig decodes TOML text over the defaults and validates it.
func ParseConfig(text string) (Config, error) {
	c := DefaultConfig()
	md, err := toml.Decode(text, &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" {
				return Config{}, fmt.Errorf("config: %s: %s (line %d)", pe.LastKey, oneLine(pe.Message), pe.Position.Line)
			}
			return Config{}, fmt.Errorf("config: line %d: %s", pe.Position.Line, oneLine(pe.Message))
		}
		return Config{}, fmt.Errorf("config: %s", oneLine(err.Error()))
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Config{}, fmt.Errorf("config: %s: unknown key", und[0])
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Validate checks that the config can work, and names the first key that
// cannot.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Node.ID == "":
		return bad("node.id", "missing: every node needs a unique, stable id")
	case !nodeIDPattern.MatchString(c.Node.ID):
		return bad("node.id", "%q must be 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", c.Node.ID)
	case c.Node.DataDir == "":
		return bad("node.data_dir", "missing: the directory for this node's data")
	case c.Node.Zone != "" && !nodeIDPattern.MatchString(c.Node.Zone):
		return bad("node.zone", "%q must be empty or 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", c.Node.Zone)
	}
	if err := checkHost(c.Listen.Advertise); c.Listen.Advertise != "" && err != nil {
		return bad("listen.advertise", "%v", err)
	}
	for _, a := range []struct{ key, addr string }{
		{"listen.client", c.Listen.Client}, {"listen.peer", c.Listen.Peer}, {"listen.gossip", c.Listen.Gossip},
	} {
		if err := checkListen(a.addr, c.Listen.Advertise != ""); err != nil {
			return bad(a.key, "%v", err)
		}
	}
	for i, s := range c.Cluster.Seeds {
		if err := checkAddr(s); err != nil {
			return bad(fmt.Sprintf("cluster.seeds[%d]", i), "%v", err)
		}
	}
	q := c.Cluster.Partitions
	switch {
	case c.Cluster.Name == "":
		return bad("cluster.name", "must not be empty")
	case q < 1 || q > replica.Slots || q&(q-1) != 0:
		// A partition is a run of Redis Cluster slots.
		return bad("cluster.partitions", "%d must be a power of two between 1 and %d (the hash slots)", q, replica.Slots)
	case c.Replication.N < 1:
		return bad("replication.n", "%d must be at least 1", c.Replication.N)
	case c.Replication.R < 1 || c.Replication.R > c.Replication.N:
		return bad("replication.r", "%d must be between 1 and replication.n (%d)", c.Replication.R, c.Replication.N)
	case c.Replication.W < 1 || c.Replication.W > c.Replication.N:
		return bad("replication.w", "%d must be between 1 and replication.n (%d)", c.Replication.W, c.Replication.N)
	case c.Replication.Timeout.Duration <= 0:
		return bad("replication.timeout", "%s must be positive", c.Replication.Timeout)
	case c.Storage.CacheSize < 1<<20:
		return bad("storage.cache_size", "%d must be at least 1mb", c.Storage.CacheSize)
	case c.Storage.ObjectCache < 0:
		return bad("storage.object_cache", "%d must not be negative", c.Storage.ObjectCache)
	case c.Handoff.MaxHintBytes < 0:
		return bad("handoff.max_hint_bytes", "%d must not be negative", c.Handoff.MaxHintBytes)
	case c.Handoff.HintWindow.Duration <= 0:
		return bad("handoff.hint_window", "%s must be positive", c.Handoff.HintWindow)
	case c.Handoff.DeliverRate < 1:
		return bad("handoff.deliver_rate", "%d must be at least 1 hint a second", c.Handoff.DeliverRate)
	case c.Handoff.TransferRate < 1:
		return bad("handoff.transfer_rate", "%d must be at least 1 key a second", c.Handoff.TransferRate)
	case c.Handoff.DropAfter.Duration < 0:
		return bad("handoff.drop_after", "%s must not be negative", c.Handoff.DropAfter)
	case c.AntiEntropy.Interval.Duration < 100*time.Millisecond:
		return bad("antientropy.interval", "%s must be at least 100ms", c.AntiEntropy.Interval)
	case c.AntiEntropy.RepairRate < 1:
		return bad("antientropy.repair_rate", "%d must be at least 1 key a second", c.AntiEntropy.RepairRate)
	case c.AntiEntropy.TombstoneGrace.Duration <= 0:
		return bad("antientropy.tombstone_grace", "%s must be positive", c.AntiEntropy.TombstoneGrace)
	case c.Gossip.ProbeInterval.Duration < 10*time.Millisecond:
		return bad("gossip.probe_interval", "%s must be at least 10ms", c.Gossip.ProbeInterval)
	case c.Gossip.ProbeTimeout.Duration <= 0 || c.Gossip.ProbeTimeout.Duration > c.Gossip.ProbeInterval.Duration:
		return bad("gossip.probe_timeout", "%s must be positive and at most gossip.probe_interval (%s)", c.Gossip.ProbeTimeout, c.Gossip.ProbeInterval)
	case c.Gossip.SuspicionMult < 1:
		return bad("gossip.suspicion_mult", "%d must be at least 1", c.Gossip.SuspicionMult)
	case c.Limits.ProtoMaxBulkLen < 1:
		return bad("limits.proto_max_bulk_len", "%d must be positive", c.Limits.ProtoMaxBulkLen)
	case c.Limits.MaxClients < 1:
		return bad("limits.maxclients", "%d must be positive", c.Limits.MaxClients)
	case c.Limits.QueryBufferLimit < 1<<20:
		return bad("limits.query_buffer_limit", "%d must be at least 1mb", c.Limits.QueryBufferLimit)
	case c.Limits.QueryBufferLimit < c.Limits.ProtoMaxBulkLen:
		return bad("limits.query_buffer_limit", "%d is less than limits.proto_max_bulk_len (%d): the largest value could never arrive", c.Limits.QueryBufferLimit, c.Limits.ProtoMaxBulkLen)
	case (c.Security.TLSCertFile == "") != (c.Security.TLSKeyFile == ""):
		return bad("security.tls_key_file", "tls_cert_file and tls_key_file must be set together")
	case c.Limits.IdleTimeout.Duration < 0:
		return bad("limits.idle_timeout", "%s must not be negative", c.Limits.IdleTimeout)
	case c.Metrics.Listen != "" && checkAddr(c.Metrics.Listen) != nil:
		return bad("metrics.listen", "%v", checkAddr(c.Metrics.Listen))
	}
	if _, err := replica.ParseFsync(c.Storage.Fsync); err != nil {
		return bad("storage.fsync", "%v", err)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return bad("log.level", "%v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return bad("log.format", "%q must be \"text\" or \"json\"", c.Log.Format)
	}
	return nil
}

// checkListen checks an address to listen on. Its host may be left out or
// be 0.0.0.0 or :: (every interface) only when the node advertises
// another: the others could not reach it at that address.
func checkListen(addr string, advertised bool) error {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not host:port", addr)
	case !everyInterface(host):
		return checkAddr(addr)
	case !advertised:
		return fmt.Errorf("%q listens on every interface: set listen.advertise to the host other nodes reach this one at", addr)
	}
	return checkPort(addr, port)
}

// everyInterface reports whether a listen host means every interface.
func everyInterface(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// checkHost checks an advertised host: an IP address or a DNS name, with
// no port, that another machine can dial.
func checkHost(host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return fmt.Errorf("%q is no address another node can reach", host)
		}
		return nil
	}
	if !hostPattern.MatchString(host) {
		return fmt.Errorf("%q is not an IP address or host name (no port: the ports are the listen ones)", host)
	}
	return nil
}

var hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$`)

// advertised is the address the other nodes and clients reach a listen
// address at: listen.advertise, when set, with the port listened on.
func (c Config) advertised(listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil || c.Listen.Advertise == "" {
		return listen
	}
	return net.JoinHostPort(c.Listen.Advertise, port)
}

// parseLevel parses log.level.
func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q must be \"debug\", \"info\", \"warn\" or \"error\"", s)
}

// logger returns the node's logger as log.level and log.format ask.
func (c Config) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("node", c.Node.ID)
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if err := checkPort(addr, port); err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	return nil
}

// checkPort checks the port of addr.
func checkPort(addr, port string) error {
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has no valid port", addr)
	}
	return nil
}

// encodeTOML writes c as TOML.
func encodeTOML(w io.Writer, c Config) error {
	return toml.NewEncoder(w).Encode(c)
}

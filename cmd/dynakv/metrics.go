package main

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dynakv/dynakv/gossip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus metrics. What the request path counts
// (commands, latencies, siblings) is recorded as it happens; what the
// background work already counts for INFO is read at scrape time by
// nodeCollector, so the two never disagree.
type metrics struct {
	reg         *prometheus.Registry
	commands    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	unavailable prometheus.Counter
	siblings    prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynakv_commands_total", Help: "Commands run, by command.",
		}, []string{"cmd"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynakv_command_errors_total", Help: "Commands that answered an error, by command and error prefix.",
		}, []string{"cmd", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dynakv_command_duration_seconds", Help: "Time to run a command, from parsed to reply ready.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 18), // 25 µs .. 3.3 s
		}, []string{"cmd"}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynakv_quorum_failures_total", Help: "Requests that answered -UNAVAILABLE: no quorum within replication.timeout.",
		}),
		siblings: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dynakv_read_siblings", Help: "Versions (siblings and tombstones) of a key merged by a quorum read.",
			Buckets: []float64{1, 2, 3, 5, 10, 20, 50, 100},
		}),
	}
	m.reg.MustRegister(m.commands, m.errors, m.latency, m.unavailable, m.siblings,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe gives the front end one recorder per command, its series
// resolved once so that a command costs no label lookup.
func (m *metrics) observe(cmd string) func(time.Duration, string) {
	count := m.commands.WithLabelValues(cmd)
	lat := m.latency.WithLabelValues(cmd)
	return func(took time.Duration, errPrefix string) {
		count.Inc()
		lat.Observe(took.Seconds())
		if errPrefix != "" {
			m.errors.WithLabelValues(cmd, errPrefix).Inc()
			if errPrefix == "UNAVAILABLE" {
				m.unavailable.Inc()
			}
		}
	}
}

// readSiblings records a quorum read's version count.
func (m *metrics) readSiblings(n int) { m.siblings.Observe(float64(n)) }

// handler serves /metrics and /debug/pprof/.
func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// nodeCollector reads, at each scrape, the counters the node keeps for
// INFO and Pebble's own metrics.
type nodeCollector struct{ n *node }

// desc describes a series read at scrape time.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	mHintsPending     = desc("dynakv_hints_pending", "Hints kept here for nodes that were unreachable.")
	mHintsDelivered   = desc("dynakv_hints_delivered_total", "Hints handed to their node and deleted here.")
	mReadRepairs      = desc("dynakv_read_repairs_total", "Stale replicas repaired after a read.")
	mAEExchanges      = desc("dynakv_ae_exchanges_total", "Merkle exchanges of a partition with another replica.")
	mAERepaired       = desc("dynakv_ae_keys_repaired_total", "Keys anti-entropy moved between replicas.")
	mAEReaped         = desc("dynakv_ae_tombstones_reaped_total", "Tombstones purged after every replica held them.")
	mCorrupt          = desc("dynakv_corrupt_objects_total", "Stored objects, hints and stand-in records found undecodable and skipped.")
	mLateForwards     = desc("dynakv_late_forwards_total", "Forwarded writes dropped because they arrived after their sender gave up.")
	mHandoffPending   = desc("dynakv_handoff_partitions_pending", "Partitions this node still has to copy in for a ring change: transfers in flight.")
	mRingEpoch        = desc("dynakv_ring_epoch", "The epoch of the ring this node uses.")
	mRingChanging     = desc("dynakv_ring_changing", "1 while an ownership change is in progress.")
	mRingPartitions   = desc("dynakv_ring_partitions", "Partitions this node owns.")
	mMembers          = desc("dynakv_members", "Known nodes by gossip state.", "state")
	mClients          = desc("dynakv_connected_clients", "Client connections open now.")
	mPebbleDisk       = desc("dynakv_pebble_disk_bytes", "Bytes of every file Pebble keeps.")
	mPebbleWAL        = desc("dynakv_pebble_wal_bytes", "Bytes of live WAL files.")
	mPebbleMemtable   = desc("dynakv_pebble_memtable_bytes", "Bytes of memtables.")
	mPebbleCache      = desc("dynakv_pebble_block_cache_bytes", "Bytes in the block cache.")
	mPebbleHits       = desc("dynakv_pebble_block_cache_hits_total", "Block cache hits.")
	mPebbleMisses     = desc("dynakv_pebble_block_cache_misses_total", "Block cache misses.")
	mPebbleL0         = desc("dynakv_pebble_l0_files", "Tables in L0: growing means compaction is behind.")
	mPebbleReadAmp    = desc("dynakv_pebble_read_amplification", "Tables a read may have to look at.")
	mPebbleDebt       = desc("dynakv_pebble_compaction_debt_bytes", "Estimated bytes compaction has to rewrite.")
	mPebbleCompaction = desc("dynakv_pebble_compactions_total", "Compactions done.")
	mPebbleFlushes    = desc("dynakv_pebble_flushes_total", "Memtable flushes done.")
	mBuildInfo        = desc("dynakv_build_info", "Always 1; the labels say which build runs.", "version", "goversion")
	mUnknownCommands  = desc("dynakv_unknown_commands_total", "Commands and subcommands this server does not have: an application that fails on one shows here.")
	mProtocolErrors   = desc("dynakv_protocol_errors_total", "Malformed RESP, oversized arguments or commands from clients.")
	mRejected         = desc("dynakv_rejected_connections_total", "Client connections refused past limits.maxclients.")
	mHintBytes        = desc("dynakv_hint_bytes", "Bytes of hints kept here for unreachable nodes.")
	mHintBytesLimit   = desc("dynakv_hint_bytes_limit", "handoff.max_hint_bytes: the cap on hint bytes kept per unreachable node (0: none).")
	mHintsDropped     = desc("dynakv_hints_dropped_total", "Hints not kept (refused: past max_hint_bytes or hint_window) or dropped undelivered (expired: older than the tombstone grace); anti-entropy repairs what they held.", "reason")
	mHandoffCopied    = desc("dynakv_handoff_objects_copied_total", "Objects copied in for ring changes (joins, leaves, forgets).")
	mAEFailures       = desc("dynakv_ae_exchange_failures_total", "Merkle exchanges that failed (a peer unreachable or erring).")
	mAELastRound      = desc("dynakv_ae_last_round_timestamp_seconds", "When the last anti-entropy round ended, Unix time; absent before the first.")
	mDataDirFree      = desc("dynakv_data_dir_free_bytes", "Bytes free for unprivileged users on the filesystem of node.data_dir.")
	mDataDirSize      = desc("dynakv_data_dir_size_bytes", "Size of the filesystem of node.data_dir.")
	mAELastDuration   = desc("dynakv_ae_last_round_duration_seconds", "How long the last anti-entropy round took.")
)

func (nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mHintsPending, mHintsDelivered, mReadRepairs, mAEExchanges, mAERepaired,
		mAEReaped, mCorrupt, mLateForwards, mHandoffPending, mRingEpoch, mRingChanging, mRingPartitions, mMembers, mClients, mPebbleDisk,
		mPebbleWAL, mPebbleMemtable, mPebbleCache, mPebbleHits, mPebbleMisses, mPebbleL0, mPebbleReadAmp,
		mPebbleDebt, mPebbleCompaction, mPebbleFlushes, mBuildInfo, mUnknownCommands, mProtocolErrors, mRejected,
		mHintBytes, mHintBytesLimit, mHintsDropped, mHandoffCopied, mAEFailures, mAELastRound, mAELastDuration, mDataDirFree, mDataDirSize} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	ht := n.store.HintTotals()
	gauge(mHintsPending, float64(ht.Pending))
	counter(mHintsDelivered, float64(ht.Delivered))
	gauge(mHintBytes, float64(ht.Bytes))
	gauge(mHintBytesLimit, float64(ht.MaxBytes))
	counter(mHintsDropped, float64(ht.Refused), "refused")
	counter(mHintsDropped, float64(n.hints.Expired()), "expired")
	gauge(mBuildInfo, 1, version(), runtime.Version())
	st := n.server.Stats()
	counter(mUnknownCommands, float64(st.Unknown))
	counter(mProtocolErrors, float64(st.Protocol))
	counter(mRejected, float64(st.Rejected))
	counter(mHandoffCopied, float64(n.handoff.Copied()))
	counter(mAEFailures, float64(n.ae.Failures()))
	var fs syscall.Statfs_t
	if err := syscall.Statfs(n.cfg.Node.DataDir, &fs); err == nil {
		gauge(mDataDirFree, float64(fs.Bavail)*float64(fs.Bsize))
		gauge(mDataDirSize, float64(fs.Blocks)*float64(fs.Bsize))
	}
	if round, ok := n.ae.LastRound(); ok {
		gauge(mAELastRound, float64(round.Ended.UnixMilli())/1000)
		gauge(mAELastDuration, round.Took.Seconds())
	}
	counter(mReadRepairs, float64(n.coord.ReadRepairs()))
	exchanges, repaired, reaped := n.ae.Stats()
	counter(mAEExchanges, float64(exchanges))
	counter(mAERepaired, float64(repaired))
	counter(mAEReaped, float64(reaped))
	counter(mCorrupt, float64(n.store.Corrupt()))
	counter(mLateForwards, float64(n.coord.LateForwards()))
	gauge(mHandoffPending, float64(n.handoff.Pending()))
	ring, _ := n.cluster.Ring()
	gauge(mRingEpoch, float64(ring.Epoch))
	changing := 0.0
	if !ring.Stable() {
		changing = 1
	}
	gauge(mRingChanging, changing)
	gauge(mRingPartitions, float64(gossip.Counts(ring.Owners)[n.cfg.Node.ID]))
	states := map[string]int{}
	for _, m := range n.cluster.Members() {
		states[strings.ToLower(string(m.State))]++
	}
	for _, st := range []gossip.State{gossip.Alive, gossip.Suspect, gossip.Dead, gossip.Leaving} {
		gauge(mMembers, float64(states[string(st)]), string(st))
	}
	gauge(mClients, float64(n.server.ConnectedClients()))
	s := n.store.StorageStats()
	gauge(mPebbleDisk, float64(s.DiskBytes))
	gauge(mPebbleWAL, float64(s.WALBytes))
	gauge(mPebbleMemtable, float64(s.MemtableBytes))
	gauge(mPebbleCache, float64(s.BlockCacheBytes))
	counter(mPebbleHits, float64(s.BlockCacheHits))
	counter(mPebbleMisses, float64(s.BlockCacheMisses))
	gauge(mPebbleL0, float64(s.L0Files))
	gauge(mPebbleReadAmp, float64(s.ReadAmp))
	gauge(mPebbleDebt, float64(s.CompactionDebt))
	counter(mPebbleCompaction, float64(s.Compactions))
	counter(mPebbleFlushes, float64(s.Flushes))
}

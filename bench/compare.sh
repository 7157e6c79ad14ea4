#!/usr/bin/env bash
# Side-by-side benchmark: redis-server (AOF, appendfsync everysec) against
# dynakv on the same machine, in one run, with redis-benchmark.
#
#   bench/compare.sh [-n requests] [-P "1 16"] [-t set,get]
#
# Prints one table: requests/s, p50 and p99 (ms) per target, test and
# pipeline depth, and each dynakv figure as a ratio of redis-server's.
# Installs redis-server and redis-tools with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=200000
pipelines="1 16"
tests="set,get"
while getopts "n:P:t:" opt; do
	case $opt in
	n) requests=$OPTARG ;;
	P) pipelines=$OPTARG ;;
	t) tests=$OPTARG ;;
	*) exit 2 ;;
	esac
done

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq redis-server redis-tools >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/dynakv" ./cmd/dynakv

wait_ping() {
	for _ in $(seq 100); do
		redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "nothing answers PING on port $1" >&2
	tail -n 5 "$work"/*/log >&2 2>/dev/null || true
	exit 1
}

# bench NAME PORT: runs redis-benchmark for each pipeline depth and records
# "name test P rps p50 p99" lines in $work/results.
bench() {
	local name=$1 port=$2
	for p in $pipelines; do
		redis-benchmark -p "$port" -t "$tests" -c 50 -n "$requests" -d 100 -r 100000 -P "$p" --csv 2>/dev/null |
			tail -n +2 | tr -d '"' |
			awk -F, -v name="$name" -v p="$p" '{ printf "%s %s %s %s %s %s\n", name, $1, p, $2, $5, $7 }' >>"$work/results"
	done
}

port=$((10000 + RANDOM % 20000)) # below the ephemeral range (32768+)
redis-server --port "$port" --save "" --appendonly yes --appendfsync everysec \
	--dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_ping "$port"
bench redis-server "$port"
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true

# node ID PORT FSYNC [SEED]: writes a config for a dynakv node and starts it;
# with SEED (a gossip address) it joins that node's cluster.
node() {
	local id=$1 port=$2 fsync=$3 seed=${4:-}
	mkdir -p "$work/$id"
	local seeds="[]"
	[ -n "$seed" ] && seeds="[\"$seed\"]"
	cat >"$work/$id/config.toml" <<EOF
[node]
id = "$id"
data_dir = "data"
[listen]
client = "127.0.0.1:$port"
peer = "127.0.0.1:$((port + 1))"
gossip = "127.0.0.1:$((port + 2))"
[cluster]
name = "bench-$port"
seeds = $seeds
[replication]
n = 3
r = 2
w = 2
[storage]
fsync = "$fsync"
EOF
	"$work/dynakv" --config "$work/$id/config.toml" >"$work/$id/log" 2>&1 &
	pids+=($!)
	wait_ping "$port"
}

port=$((port + 10))
node d1 "$port" everysec
bench "dynakv-1node" "$port"
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true

# A 3-node cluster (N=3, R=2, W=2), driven through its first node.
base=$((port + 10))
node c1 "$base" everysec
node c2 "$((base + 3))" everysec "127.0.0.1:$((base + 2))"
node c3 "$((base + 6))" everysec "127.0.0.1:$((base + 2))"
for _ in $(seq 100); do
	[ "$(redis-cli -p "$base" DYN.RING | wc -l)" -ge 7 ] && [ "$(redis-cli -p "$base" DYN.RING | sed -n '3p;5p;7p' | grep -c '^0$')" -eq 0 ] && break
	sleep 0.1
done
bench "dynakv-3nodes" "$base"

awk '
	{ key = $2 " " $3; rows[NR] = $0 }
	$1 == "redis-server" { base[key] = $4 }
	END {
		printf "%-14s %-5s %3s %12s %8s %8s %8s\n", "target", "test", "P", "requests/s", "p50 ms", "p99 ms", "ratio"
		for (i = 1; i <= NR; i++) {
			split(rows[i], f, " ")
			k = f[2] " " f[3]
			ratio = (k in base && base[k] > 0) ? sprintf("%.2f", f[4] / base[k]) : "-"
			printf "%-14s %-5s %3s %12.0f %8s %8s %8s\n", f[1], f[2], f[3], f[4], f[5], f[6], ratio
		}
	}' "$work/results"

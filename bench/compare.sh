#!/usr/bin/env bash
# Side-by-side benchmark: redis-server (AOF, appendfsync everysec) against
# dynakv on the same machine, in one run, with redis-benchmark.
#
#   bench/compare.sh [-n requests] [-P "1 16"] [-t set,get] [-R rounds] [-m keys] [-c] [-M members]
#
# Targets, all on loopback: redis-server; bench/bare, a redcon server
# over a map that stores and replicates nothing (the ceiling of a Go server
# with a goroutine per connection); a 1-node dynakv with fsync everysec; the same with fsync always (at the largest -P only); a 3-node
# dynakv (N=3, R=2, W=2) driven through its first node. All of them run at
# once and take turns: each test at each pipeline depth runs against every
# target, one right after the other, so that a ratio compares figures
# measured within a minute of each other; that is one round, and -R rounds
# (default 3) run, every other one with the targets in reverse order.
# Prints one table: per target, test and pipeline depth the median over
# the rounds of requests/s, p50 and p99 (ms), the server CPU per request
# in microseconds (user and system time of all the target's processes,
# from /proc, over the run: client and servers share the machine's cores,
# so CPU per request is what predicts a machine of their own), and the
# median and range of the rounds' ratios to redis-server (on a shared
# machine redis-server itself varies by a quarter from minute to
# minute); then fsync always
# against everysec the same way. Then loads -m keys (default 1 000 000) of
# 100 bytes into a fresh redis-server and a fresh 1-node dynakv and
# reports their resident memory: in all, and per key above what the
# process held empty, beyond the 100-byte value. -m 0 skips the memory
# part. With -c, also reads a 1 000-field hash whole (HGETALL) and a
# 10 000-member set (SMEMBERS) from each target, one client at a time, and
# reports the time per read and the reply's bytes. -M members (default 0:
# skipped) loads one set of that many members into a fresh redis-server
# and a fresh 1-node dynakv and reports resident memory per member and
# dynakv's disk per member. Installs redis-server and redis-tools with
# apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=1000000 # a -P 16 run of 200 000 lasts a fifth of a second against redis-server: mostly warm-up
pipelines="1 16"
tests="set,get"
rounds=3
memkeys=1000000
containers=""
setmembers=0
while getopts "n:P:t:R:m:cM:" opt; do
	case $opt in
	n) requests=$OPTARG ;;
	P) pipelines=$OPTARG ;;
	t) tests=$OPTARG ;;
	R) rounds=$OPTARG ;;
	m) memkeys=$OPTARG ;;
	c) containers=1 ;;
	M) setmembers=$OPTARG ;;
	*) exit 2 ;;
	esac
done
maxp=$(echo "$pipelines" | tr ' ' '\n' | sort -n | tail -1)

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
go build -o "$work/bare" ./bench/bare

wait_ping() {
	for _ in $(seq 100); do
		[ "$(redis-cli -p "$1" PING 2>/dev/null)" = "PONG" ] && return 0
		sleep 0.1
	done
	echo "nothing answers PING on port $1" >&2
	tail -n 5 "$work"/*/log >&2 2>/dev/null || true
	exit 1
}

# cputicks PID...: the user and system clock ticks the processes have used.
cputicks() {
	local t=0 pid f
	for pid in "$@"; do
		# Fields 14 and 15 of /proc/PID/stat, counted after the command
		# name, which is in parentheses and may hold spaces.
		f=$(sed 's/.*) //' "/proc/$pid/stat")
		t=$((t + $(echo "$f" | awk '{ print $12 + $13 }')))
	done
	echo "$t"
}
hz=$(getconf CLK_TCK)

# bench NAME PORT TEST P ROUND PIDS: runs redis-benchmark once and records
# a "name test P round rps p50 p99 cpu-us-per-request" line in
# $work/results; PIDS (space-separated) are the target's processes.
bench() {
	local name=$1 port=$2 test=$3 p=$4 round=$5 procs=$6 before after
	# shellcheck disable=SC2086 # PIDS is a list
	before=$(cputicks $procs)
	# A target that does not serve the test (bench/bare has no HSET) makes
	# redis-benchmark fail: it then has no line for it.
	{ redis-benchmark -p "$port" -t "$test" -c 50 -n "$requests" -d 100 -r 100000 -P "$p" --csv 2>/dev/null || true; } |
		tail -n +2 | tr -d '"' >"$work/run.csv"
	# shellcheck disable=SC2086
	after=$(cputicks $procs)
	awk -F, -v name="$name" -v p="$p" -v r="$round" -v cpu="$(((after - before) * 1000000 / hz))" -v n="$requests" \
		'{ printf "%s %s %s %s %s %s %s %.1f\n", name, $1, p, r, $2, $5, $7, cpu / n }' "$work/run.csv" >>"$work/results"
}

stop_last() {
	kill "${pids[-1]}"
	wait "${pids[-1]}" 2>/dev/null || true
	unset 'pids[-1]'
}

# rss PORT: the resident memory in bytes of the process serving PORT.
rss() {
	local pid
	pid=$(redis-cli -p "$1" INFO server | tr -d '\r' | sed -n 's/^process_id://p')
	echo $(($(ps -o rss= -p "$pid") * 1024))
}

# fill PORT COMMAND KEY N [VALUE]: adds N elements "m<i>" (with VALUE, as
# hash fields) to KEY with COMMAND (SADD or HSET), 100 per command, through
# redis-cli --pipe.
fill() {
	awk -v cmd="$2" -v key="$3" -v n="$4" -v val="${5:-}" 'BEGIN {
		for (i = 0; i < n; i += 100) {
			m = (n - i < 100) ? n - i : 100
			printf "*%d\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", 2 + m * (val == "" ? 1 : 2), length(cmd), cmd, length(key), key
			for (j = i; j < i + m; j++) {
				e = "m" j
				printf "$%d\r\n%s\r\n", length(e), e
				if (val != "") printf "$%d\r\n%s\r\n", length(val), val
			}
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}

# load PORT KEYS: writes KEYS distinct keys of 100 bytes through redis-cli --pipe.
load() {
	awk -v n="$2" 'BEGIN {
		v = sprintf("%0100d", 0)
		for (i = 0; i < n; i++) {
			k = "key:" i
			printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n", length(k), k, v
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}

port=$((10000 + RANDOM % 20000)) # below the ephemeral range (32768+)
redis-server --port "$port" --save "" --appendonly yes --appendfsync everysec \
	--dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_ping "$port"
redis_port=$port redis_pid=${pids[-1]}

# The ceiling: a redcon server over a map (bench/bare), nothing stored or
# replicated; how close a Go server with a goroutine per connection gets.
port=$((port + 10))
"$work/bare" -addr "127.0.0.1:$port" >"$work/bare.log" 2>&1 &
pids+=($!)
wait_ping "$port"
bare_port=$port bare_pid=${pids[-1]}

# node ID PORT FSYNC [SEED]: writes a config for a dynakv node and starts it;
# with SEED (a gossip address) it joins that node's cluster. Every node of
# one run has the same cluster name: gossip refuses nodes of another.
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
name = "bench-$$"
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
one_port=$port one_pid=${pids[-1]}

port=$((port + 10))
node a1 "$port" always
always_port=$port always_pid=${pids[-1]}

# A 3-node cluster (N=3, R=2, W=2), driven through its first node.
base=$((port + 10))
node c1 "$base" everysec
node c2 "$((base + 3))" everysec "127.0.0.1:$((base + 2))"
node c3 "$((base + 6))" everysec "127.0.0.1:$((base + 2))"
three_pids="${pids[-3]} ${pids[-2]} ${pids[-1]}"
# settled PORT: the node's ring has three members, each owning partitions,
# and no ownership change under way (DYN.RING then lists an id and a
# partition count per node: seven lines with the epoch).
settled() {
	local ring
	ring=$(redis-cli -p "$1" DYN.RING 2>/dev/null) || return 1
	[ "$(echo "$ring" | wc -l)" -eq 7 ] && [ "$(echo "$ring" | sed -n '3p;5p;7p' | grep -c '^[1-9]')" -eq 3 ]
}
# Benchmarking a ring still forming would measure fewer replicas than three.
ok=""
for _ in $(seq 300); do
	if settled "$base" && settled "$((base + 3))" && settled "$((base + 6))" &&
		[ "$(for p in "$base" "$((base + 3))" "$((base + 6))"; do redis-cli -p "$p" DYN.RING | head -1; done | sort -u | wc -l)" -eq 1 ]; then
		ok=1
		break
	fi
	sleep 0.1
done
if [ -z "$ok" ]; then
	echo "the 3-node ring did not settle within 30 s:" >&2
	for p in "$base" "$((base + 3))" "$((base + 6))"; do
		echo "port $p: ring $(redis-cli -p "$p" DYN.RING | tr '\n' ' '); members $(redis-cli -p "$p" DYN.MEMBERS | tr '\n' ' ')" >&2
	done
	tail -n 5 "$work"/c?/log >&2
	exit 1
fi

# The rounds: every test at every depth against each target in turn.
targets=("redis-server $redis_port $redis_pid" "bare-redcon $bare_port $bare_pid" "dynakv-1node $one_port $one_pid"
	"dynakv-always $always_port $always_pid" "dynakv-3nodes $base $three_pids")
for round in $(seq "$rounds"); do
	order=("${targets[@]}")
	if [ $((round % 2)) -eq 0 ]; then
		order=()
		for ((i = ${#targets[@]} - 1; i >= 0; i--)); do order+=("${targets[i]}"); done
	fi
	for p in $pipelines; do
		for test in ${tests//,/ }; do
			for target in "${order[@]}"; do
				read -r name tport tpids <<<"$target"
				[ "$name" = dynakv-always ] && [ "$p" != "$maxp" ] && continue
				bench "$name" "$tport" "$test" "$p" "$round" "$tpids"
			done
		done
	done
done
# Whole-container reads: a 1 000-field hash and a 10 000-member set, one
# client, each read 200 times; the reply's size from redis-cli.
if [ -n "$containers" ]; then
	for target in "${targets[@]}"; do
		read -r name tport tpids <<<"$target"
		[ "$name" = dynakv-always ] || [ "$name" = bare-redcon ] && continue
		fill "$tport" HSET bench:hash 1000 "$(printf '%050d' 0)"
		fill "$tport" SADD bench:set 10000
		for cmd in "HGETALL bench:hash" "SMEMBERS bench:set"; do
			# shellcheck disable=SC2086 # cmd is the command's words
			bytes=$(redis-cli -p "$tport" --no-raw $cmd | wc -c)
			# shellcheck disable=SC2086
			rps=$(redis-benchmark -p "$tport" -c 1 -n 200 --csv $cmd 2>/dev/null | tail -n 1 | tr -d '"' | cut -d, -f2)
			echo "$name ${cmd%% *} $rps $bytes" >>"$work/containers"
		done
	done
fi
while [ ${#pids[@]} -gt 0 ]; do stop_last; done

# One set of -M members in fresh processes: memory, and dynakv's disk.
if [ "$setmembers" -gt 0 ]; then
	port=$((base + 40))
	mkdir -p "$work/redis-set"
	redis-server --port "$port" --save "" --appendonly yes --appendfsync everysec \
		--dir "$work/redis-set" --daemonize no >"$work/redis-set.log" 2>&1 &
	pids+=($!)
	wait_ping "$port"
	before=$(rss "$port")
	fill "$port" SADD bench:set "$setmembers"
	echo "redis-server $(rss "$port") $before $(redis-cli -p "$port" SCARD bench:set) $(du -sb "$work/redis-set" | cut -f1)" >"$work/setmem"
	stop_last
	port=$((port + 10))
	node s1 "$port" everysec
	before=$(rss "$port")
	fill "$port" SADD bench:set "$setmembers"
	sleep 2 # the last second's WAL sync
	echo "dynakv-1node $(rss "$port") $before $(redis-cli -p "$port" SCARD bench:set) $(du -sb "$work/s1/data" | cut -f1)" >>"$work/setmem"
	stop_last
fi

# Memory: fresh processes, resident memory before and after loading.
if [ "$memkeys" -gt 0 ]; then
	port=$((base + 20))
	mkdir -p "$work/redis-mem"
	redis-server --port "$port" --save "" --appendonly yes --appendfsync everysec \
		--dir "$work/redis-mem" --daemonize no >"$work/redis-mem.log" 2>&1 &
	pids+=($!)
	wait_ping "$port"
	before=$(rss "$port")
	load "$port" "$memkeys"
	echo "redis-server $(rss "$port") $before" >"$work/memory"
	stop_last
	port=$((port + 10))
	node m1 "$port" everysec
	before=$(rss "$port")
	load "$port" "$memkeys"
	echo "dynakv-1node $(rss "$port") $before" >>"$work/memory"
	stop_last
fi

# The table: medians over the rounds, and the median and range of the
# rounds' ratios (each round's figure over redis-server's, or for the
# always line below the table, over the 1-node everysec figure, of the
# same test, depth and round).
awk -v rounds="$rounds" '
	function median(a, n,    i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	# ratios NAME TEST P BASE: fills r[1..n] with NAME over BASE per round; returns n.
	function ratios(name, test, p, base,    i, n) {
		n = 0
		for (i = 1; i <= rounds; i++)
			if ((name, test, p, i) in rps && (base, test, p, i) in rps && rps[base, test, p, i] > 0)
				r[++n] = rps[name, test, p, i] / rps[base, test, p, i]
		return n
	}
	function ratiotext(n,    m) {
		if (n == 0) return "-"
		m = median(r, n)
		return n > 1 ? sprintf("%.2f (%.2f-%.2f)", m, r[1], r[n]) : sprintf("%.2f", m)
	}
	{
		k = $1 SUBSEP $2 SUBSEP $3
		if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
		rps[$1, $2, $3, $4] = $5; p50[$1, $2, $3, $4] = $6; p99[$1, $2, $3, $4] = $7; cpu[$1, $2, $3, $4] = $8
	}
	END {
		printf "%-14s %-5s %3s %12s %8s %8s %10s  %s\n", "target", "test", "P", "requests/s", "p50 ms", "p99 ms", "CPU us/req", "ratio (range)"
		for (i = 1; i <= nk; i++) {
			split(keys[i], f, SUBSEP)
			n = 0
			for (j = 1; j <= rounds; j++)
				if ((f[1], f[2], f[3], j) in rps) { n++; a[n] = rps[f[1], f[2], f[3], j]; b[n] = p50[f[1], f[2], f[3], j]; c[n] = p99[f[1], f[2], f[3], j]; d[n] = cpu[f[1], f[2], f[3], j] }
			ratio = f[1] == "redis-server" ? "1" : ratiotext(ratios(f[1], f[2], f[3], "redis-server"))
			printf "%-14s %-5s %3s %12.0f %8.3f %8.3f %10.1f  %s\n", f[1], f[2], f[3], median(a, n), median(b, n), median(c, n), median(d, n), ratio
		}
		for (i = 1; i <= nk; i++) {
			split(keys[i], f, SUBSEP)
			if (f[1] == "dynakv-always")
				printf "fsync always / everysec, 1 node, %s -P %s: %s\n", f[2], f[3], ratiotext(ratios("dynakv-always", f[2], f[3], "dynakv-1node"))
		}
		printf "(medians of %d rounds)\n", rounds
	}' "$work/results"
if [ -f "$work/memory" ]; then
	echo
	awk -v keys="$memkeys" '{
		per = ($2 - $3) / keys
		printf "%-14s resident %4.0f MB empty, %5.0f MB after %d keys of 100 B: %4.0f bytes per key, %4.0f beyond the value\n", $1, $3 / 1048576, $2 / 1048576, keys, per, per - 100
	}' "$work/memory"
fi
if [ -f "$work/containers" ]; then
	echo
	awk '{ printf "%-14s %-8s %8.3f ms per read, %8d reply bytes\n", $1, $2, 1000 / $3, $4 }' "$work/containers"
fi
if [ -f "$work/setmem" ]; then
	echo
	awk '{ n = $4; printf "%-14s one set of %d members: resident %4.0f MB (%3.0f bytes per member), disk %4.0f MB (%3.0f bytes per member)\n", $1, n, ($2 - $3) / 1048576, ($2 - $3) / n, $5 / 1048576, $5 / n }' "$work/setmem"
fi

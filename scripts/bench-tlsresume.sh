#!/usr/bin/env bash
# Resumable TLS (tlsresume, issue 20) beside plain crypto/tls:
#
#   flock /tmp/bench.lock scripts/bench-tlsresume.sh
#
# 1. Throughput: tlsresume's BenchmarkThroughput, 64 MiB from server to
#    client over loopback per transfer, the server and the client in two
#    processes (TestBenchServer and the benchmark, TLSRESUME_BENCH_*),
#    plain crypto/tls and the resumable mode run alternately RUNS times
#    each (default 8), each run BENCHTIME transfers (default 10x; Go's
#    benchmark runs one more first, on a connection of its own), in each
#    placement of PIN: 0 unpinned, 1 the client on CPU 0 and the server on
#    CPU 1 with taskset (Go then runs one P per process), default "0 1".
#    Prints each run's MB/s and each process's CPU seconds (user+system)
#    per GiB moved, then per placement the medians with their ranges and
#    the ratios resumable/plain (DEVELOPERS.md: on the shared VMs only
#    interleaved runs compare).
# 2. Reconnection: BenchmarkReconnect, RECONNECTS times (default 20) at a
#    10 ms round trip through internal/netsim: from the path's return to
#    the first byte the client reads after a blackhole, in ms and round
#    trips (the goal: at most 3 round trips plus 10 ms); RECONNECTS=0
#    skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-8}"
benchtime="${BENCHTIME:-10x}"
reconnects="${RECONNECTS:-20}"
read -r -a pins <<<"${PIN:-0 1}"
work="$(mktemp -d /tmp/rsftp-tlsbench.XXXXXX)"
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
for pin in "${pins[@]}"; do
	case $pin in
	0) ;;
	1) command -v taskset >/dev/null || { echo "PIN=1 needs taskset" >&2; exit 1; } ;;
	*) echo "PIN: 0 (unpinned) or 1 (pinned), or both: \"0 1\"" >&2; exit 1 ;;
	esac
done
go test -c -o "$work/tlsresume.test" ./tlsresume
# Transfers per run: BENCHTIME's count and the benchmark's first run of 1.
transfers=$((${benchtime%x} + 1))
gib=$(awk -v t="$transfers" 'BEGIN {print t * 64 / 1024}')

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) m = v[(NR+1)/2]; else m = (v[NR/2]+v[NR/2+1])/2; printf "%.3f (%.3f-%.3f)\n", m, v[1], v[NR]}'; }
mid() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# run PIN MODE I: one run of one mode, a server process and a client.
run() {
	local pin=$1 mode=$2 i=$3 dir="$work/p$1.$2.$3"
	local on_client=() on_server=()
	[ "$pin" = 1 ] && on_client=(taskset -c 0) on_server=(taskset -c 1)
	mkdir "$dir"
	TLSRESUME_BENCH_SERVE=$mode TLSRESUME_BENCH_DIR=$dir "${on_server[@]}" /usr/bin/time -f '%U %S' -o "$dir/server.time" \
		"$work/tlsresume.test" -test.run '^TestBenchServer$' >"$dir/server.txt" 2>&1 &
	server_pid=$!
	TLSRESUME_BENCH_DIR=$dir "${on_client[@]}" /usr/bin/time -f '%U %S' -o "$dir/client.time" \
		"$work/tlsresume.test" -test.run '^$' -test.bench "^BenchmarkThroughput/$mode\$" \
		-test.benchtime "$benchtime" >"$dir/client.txt" 2>&1 || { cat "$dir/client.txt"; exit 1; }
	# The server is the time process's child: signal it, and time reports.
	pkill -TERM -P "$server_pid" || true
	wait "$server_pid" || { cat "$dir/server.txt"; exit 1; }
	server_pid=
	local mbs ccpu scpu
	mbs=$(awk '/MB\/s/ {for (f = 1; f <= NF; f++) if ($f == "MB/s") print $(f-1)}' "$dir/client.txt" | tail -1)
	[ -n "$mbs" ] || { cat "$dir/client.txt"; exit 1; }
	ccpu=$(tail -1 "$dir/client.time" | awk -v g="$gib" '{printf "%.3f", ($1 + $2) / g}')
	scpu=$(tail -1 "$dir/server.time" | awk -v g="$gib" '{printf "%.3f", ($1 + $2) / g}')
	echo "$mbs" >>"$work/p$pin.$mode.mbs"
	echo "$ccpu" >>"$work/p$pin.$mode.ccpu"
	echo "$scpu" >>"$work/p$pin.$mode.scpu"
	printf '  run %2d  %-9s  %8.1f MB/s  client %6s s/GiB  server %6s s/GiB\n' "$i" "$mode" "$mbs" "$ccpu" "$scpu"
}

echo "throughput: 64 MiB per transfer over loopback, client and server in two processes, $runs runs of $transfers transfers each, alternating"
echo "(CPU: user+system seconds per GiB moved, each process's own)"
for pin in "${pins[@]}"; do
	[ "$pin" = 1 ] && echo "== pinned (client on CPU 0, server on CPU 1)" || echo "== unpinned"
	for i in $(seq "$runs"); do
		for mode in plain resumable; do
			run "$pin" "$mode" "$i"
		done
	done
	for mode in plain resumable; do
		printf '  median (range)  %-9s  %s MB/s  client %s s/GiB  server %s s/GiB\n' "$mode" \
			"$(median <"$work/p$pin.$mode.mbs")" "$(median <"$work/p$pin.$mode.ccpu")" "$(median <"$work/p$pin.$mode.scpu")"
	done
	paste "$work/p$pin.resumable.mbs" "$work/p$pin.plain.mbs" | awk '{print $1 / $2}' >"$work/p$pin.ratio"
	awk -v r="$(mid <"$work/p$pin.resumable.mbs")" -v p="$(mid <"$work/p$pin.plain.mbs")" \
		-v rc="$(mid <"$work/p$pin.resumable.ccpu")" -v pc="$(mid <"$work/p$pin.plain.ccpu")" \
		-v rs="$(mid <"$work/p$pin.resumable.scpu")" -v ps="$(mid <"$work/p$pin.plain.scpu")" 'BEGIN {
		printf "  ratio resumable/plain: throughput of the medians %.3f (goal >= 0.97); CPU per byte client %.3f, server %.3f\n", r / p, rc / pc, rs / ps }'
	printf '  ratio of each run to the plain run beside it: median (range) %s\n' "$(median <"$work/p$pin.ratio")"
done
[ "$reconnects" -gt 0 ] || exit 0
echo
echo "reconnection at a 10 ms round trip ($reconnects outages, netsim):"
"$work/tlsresume.test" -test.run '^$' -test.bench '^BenchmarkReconnect$' -test.benchtime "${reconnects}x" 2>&1 |
	awk '/^BenchmarkReconnect/ {for (f = 1; f <= NF; f++) { if ($f == "ms/reconnect") ms = $(f-1); if ($f == "rtts-median") r = $(f-1) }
		printf "  mean %.1f ms from the path'"'"'s return to the first byte read; median %.2f round trips (goal <= 3 round trips + 10 ms = 40 ms)\n", ms, r }'

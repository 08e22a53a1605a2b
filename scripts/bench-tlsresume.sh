#!/usr/bin/env bash
# Resumable TLS (tlsresume, issue 20) beside plain crypto/tls:
#
#   scripts/bench-tlsresume.sh
#
# 1. Throughput: tlsresume's BenchmarkThroughput, 64 MiB from server to
#    client over loopback, plain crypto/tls and the resumable mode run
#    alternately RUNS times each (default 8), each run BENCHTIME
#    transfers (default 10x), as separate processes, one sub-benchmark
#    at a time (DEVELOPERS.md: on the shared VMs only interleaved runs
#    compare). Prints each run's MB/s and CPU seconds (user+system of the
#    process, client and server both), the medians and their ratios.
# 2. Reconnection: BenchmarkReconnect, RECONNECTS times (default 20) at a
#    10 ms round trip through internal/netsim: from the path's return to
#    the first byte the client reads after a blackhole, in ms and round
#    trips (the goal: at most 3 round trips plus 10 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-8}"
benchtime="${BENCHTIME:-10x}"
reconnects="${RECONNECTS:-20}"
work="$(mktemp -d /tmp/rsftp-tlsbench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/tlsresume.test" ./tlsresume

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }

echo "throughput: 64 MiB per transfer over loopback, $runs runs of $benchtime each, alternating"
for i in $(seq "$runs"); do
	for mode in plain resumable; do
		out="$work/$mode.$i"
		/usr/bin/time -f '%U %S' -o "$out.time" "$work/tlsresume.test" -test.run '^$' \
			-test.bench "^BenchmarkThroughput/$mode\$" -test.benchtime "$benchtime" >"$out.txt" 2>&1
		mbs=$(awk '/MB\/s/ {for (f = 1; f <= NF; f++) if ($f == "MB/s") print $(f-1)}' "$out.txt" | tail -1)
		cpu=$(awk '{printf "%.2f", $1 + $2}' "$out.time")
		[ -n "$mbs" ] || { cat "$out.txt"; exit 1; }
		echo "$mbs" >>"$work/$mode.mbs"
		echo "$cpu" >>"$work/$mode.cpu"
		printf '  run %2d  %-9s  %8.1f MB/s  %6s s CPU\n' "$i" "$mode" "$mbs" "$cpu"
	done
done
pm=$(median <"$work/plain.mbs") rm_=$(median <"$work/resumable.mbs")
pc=$(median <"$work/plain.cpu") rc=$(median <"$work/resumable.cpu")
printf 'median      plain %8.1f MB/s %6.2f s CPU; resumable %8.1f MB/s %6.2f s CPU\n' "$pm" "$pc" "$rm_" "$rc"
awk -v p="$pm" -v r="$rm_" -v pc="$pc" -v rc="$rc" 'BEGIN {
	printf "ratio       throughput resumable/plain %.3f (goal >= 0.97); CPU per byte resumable/plain %.3f\n", r / p, (rc / r) / (pc / p) }'

echo
echo "reconnection at a 10 ms round trip ($reconnects outages, netsim):"
"$work/tlsresume.test" -test.run '^$' -test.bench '^BenchmarkReconnect$' -test.benchtime "${reconnects}x" 2>&1 |
	awk '/^BenchmarkReconnect/ {for (f = 1; f <= NF; f++) { if ($f == "ms/reconnect") ms = $(f-1); if ($f == "rtts-median") r = $(f-1) }
		printf "  mean %.1f ms from the path'"'"'s return to the first byte read; median %.2f round trips (goal <= 3 round trips + 10 ms = 40 ms)\n", ms, r }'

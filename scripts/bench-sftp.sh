#!/usr/bin/env bash
# Side-by-side SFTP throughput on loopback: rsftp and OpenSSH, clients and
# servers crossed, 1 GiB from the page cache each way, per cipher, beside
# the limit: a plain TCP copy of the same file from the page cache into a
# file on loopback (socat -b 262144; issue 17's "close to the limit").
#
#   scripts/bench-sftp.sh [size_MiB]      (default 1024)
#
# Environment: RUNS (runs per cell, default 3; the table shows medians),
# WARMUP (transfers per direction before the measured ones, default 1,
# not counted: on these VMs the first writes of a fresh gigabyte touch
# memory the guest gave back to the host and run far slower, which hit
# whichever pair came first, usually OpenSSH's),
# CIPHERS, DIRS and PAIRS (space-separated subsets; pairs as rsftp:serve,
# rsftpnr:serve (rsftp --no-resume: resumption's cost), openssh:serve,
# rsftp:sshd), RSFTP_FLAGS (extra flags for
# the rsftp client, e.g. --no-resume), PIN (which placements to run, in
# turn: 0 unpinned, 1 clients on CPU 0 and servers on CPU 1 with taskset,
# as two one-core hosts would run them, Go then running one P per
# process; default "0 1", both in one run; README.md reports unpinned as
# the result).
#
# Needs OpenSSH's sshd, sftp, sftp-server and ssh-keygen (.ci/run installs
# them), and socat for the plain copy (apt-get install socat; without it
# the plain copy is internal/wanrelay's get and put, which use sendfile and
# splice and so run faster than socat's read and write). Runs as any user;
# sshd gets a private config on a free port. Prints, per placement, MB/s
# per pair and direction, the ratio to OpenSSH sftp -> sshd, the share of
# the plain copy's rate, and the peak RSS of rsftp serve over its runs
# (VmHWM, reset before each transfer); then the CPU time (user + system)
# per GiB of each client and, for rsftp serve and the plain copy, of the
# server: it moves far less with the machine's load than MB/s does.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-1024}"
work="$(mktemp -d /tmp/rsftp-bench.XXXXXX)"
sshd_pid='' serve_pid='' plain_pid=''
stop_servers() {
	for p in "$sshd_pid" "$serve_pid" "$plain_pid"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	sshd_pid='' serve_pid='' plain_pid=''
}
cleanup() {
	stop_servers
	rm -rf "$work"
}
trap cleanup EXIT

sshd_bin=/usr/sbin/sshd
sftp_server=/usr/lib/openssh/sftp-server
for b in "$sshd_bin" "$sftp_server" "$(command -v sftp)" "$(command -v ssh-keygen)"; do
	[ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done
mkdir -p /run/sshd 2>/dev/null || true
pins=(${PIN:-0 1})
for pin in "${pins[@]}"; do
	case $pin in
	0) ;;
	1) command -v taskset >/dev/null || { echo "PIN=1 needs taskset" >&2; exit 1; } ;;
	*) echo "PIN: 0 (unpinned) or 1 (pinned), or both: \"0 1\"" >&2; exit 1 ;;
	esac
done

go build -o "$work/rsftp" ./cmd/rsftp
socat="$(command -v socat || true)"
if [ -n "$socat" ]; then
	plain="socat -b 262144"
else
	plain="internal/wanrelay get/put (no socat)"
	go build -o "$work/wanrelay" ./internal/wanrelay
fi
mkdir -p "$work/srv" "$work/cli"
ssh-keygen -q -t ed25519 -N '' -f "$work/id" -C bench
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd_hk" -C bench-sshd
cp "$work/id.pub" "$work/authorized_keys"
chmod 600 "$work/authorized_keys"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sshd_port="$(free_port)"
serve_port="$(free_port)"

cat > "$work/sshd_config" <<CFG
Port $sshd_port
ListenAddress 127.0.0.1
HostKey $work/sshd_hk
AuthorizedKeysFile $work/authorized_keys
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
Subsystem sftp $sftp_server
CFG

listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# start_servers: sshd and rsftp serve on their ports, on the servers' CPU.
start_servers() {
	"${on_server[@]}" "$sshd_bin" -D -e -f "$work/sshd_config" 2>>"$work/sshd.log" &
	sshd_pid=$!
	"${on_server[@]}" "$work/rsftp" serve --listen "127.0.0.1:$serve_port" --root "$work/srv" \
		--host-key "$work/serve_hk" --authorized-keys "$work/authorized_keys" 2>>"$work/serve.log" &
	serve_pid=$!
	for i in $(seq 100); do
		if [ -f "$work/serve_hk.pub" ] && listening "$sshd_port" && listening "$serve_port"; then return; fi
		sleep 0.1
	done
	echo "the servers did not start (see $work/sshd.log, $work/serve.log)" >&2
	exit 1
}

echo "making a ${size_mb} MiB file..." >&2
head -c "$((size_mb << 20))" /dev/urandom > "$work/srv/big"
cp "$work/srv/big" "$work/cli/big"
cat "$work/srv/big" "$work/cli/big" > /dev/null # into the page cache

ssh_opts=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none
	-o "UserKnownHostsFile=$work/known_hosts" -o StrictHostKeyChecking=yes -i "$work/id")
# ResumeHelper=no: rsftp -> sshd is stock sshd's own SFTP server, as the
# table has always measured it (the resume helper's path has
# scripts/bench-helper.sh); against rsftp serve it changes nothing.
rsftp_opts=(${RSFTP_FLAGS:-} -q -F none -o BatchMode=yes -o "UserKnownHostsFile=$work/known_hosts"
	-o StrictHostKeyChecking=yes -i "$work/id" -o ResumeHelper=no)

now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$size_mb*1.048576/($2-$1):.0f}')"; }
# timed: run a command under GNU time, its user + system seconds (its
# children's included) to $work/cpu.out; the command alone without it.
timed() {
	if [ -x /usr/bin/time ]; then /usr/bin/time -f '%U %S' -o "$work/cpu.out" "$@"
	else rm -f "$work/cpu.out"; "$@"; fi
}
cpu_out() { [ -s "$work/cpu.out" ] && awk '{print $1 + $2}' "$work/cpu.out" || echo -; }
# proc_cpu pid: user + system seconds of a running process so far.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12 + $13) / hz}' "/proc/$1/stat"; }
# note_cpu key client server: one run's CPU seconds, kept per placement.
note_cpu() { echo "$1|$2|$3" >> "$work/cpu.$pin"; }

# plain_one direction -> prints MB/s: the plain TCP copy, timed from the
# client's start until both ends are done (the file written and closed).
plain_one() {
	local dir=$1 port t0 t1
	port="$(free_port)"
	rm -f "$work/cli/dl" "$work/srv/big.up"
	if [ -z "$socat" ]; then
		"${on_server[@]}" "$work/wanrelay" serve -listen "127.0.0.1:$port" -dir "$work/srv" >/dev/null &
	elif [ "$dir" = get ]; then
		"${on_server[@]}" socat -b 262144 -u "OPEN:$work/srv/big,rdonly" "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" &
	else
		"${on_server[@]}" socat -b 262144 -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "CREATE:$work/srv/big.up" &
	fi
	plain_pid=$!
	local s0=0
	[ -n "$socat" ] || s0=$(proc_cpu "$plain_pid")
	for i in $(seq 100); do listening "$port" && break; sleep 0.05; done
	# The CPU time of this shell's children so far, before the client
	# starts (bash may reap the server as soon as it ends, before the wait
	# below).
	times > "$work/times.before"
	t0=$(now)
	local scpu
	if [ -z "$socat" ]; then
		# A put is answered once the file is written and closed.
		if [ "$dir" = get ]; then timed "${on_client[@]}" "$work/wanrelay" get -addr "127.0.0.1:$port" big "$work/cli/dl"
		else timed "${on_client[@]}" "$work/wanrelay" put -addr "127.0.0.1:$port" "$work/cli/big" big.up; fi
		t1=$(now)
		scpu=$(python3 -c "print($(proc_cpu "$plain_pid") - $s0)")
		kill "$plain_pid"
		wait "$plain_pid" 2>/dev/null || true
	else
		if [ "$dir" = get ]; then timed "${on_client[@]}" socat -b 262144 -u "TCP:127.0.0.1:$port" "CREATE:$work/cli/dl"
		else timed "${on_client[@]}" socat -b 262144 -u "OPEN:$work/cli/big,rdonly" "TCP:127.0.0.1:$port"; fi
		wait "$plain_pid" # a put's server has closed the file
		t1=$(now)
		# The server's CPU time: what this shell's children took since
		# the client started, less the client's (times writes to a file:
		# in a pipe or $(...) it would run in a subshell, which has no
		# children of its own).
		times > "$work/times.after"
		scpu=$(python3 -c "
import re,sys
def secs(t): return sum(float(m)*60+float(s) for m,s in re.findall(r'(\d+)m([\d.]+)s', t))
print(max(0, secs(sys.argv[2]) - secs(sys.argv[1]) - float(sys.argv[3])))" \
			"$(tail -1 "$work/times.before")" "$(tail -1 "$work/times.after")" "$(cpu_out | sed 's/^-$/0/')")
	fi
	plain_pid=''
	note_cpu "$dir plain" "$(cpu_out)" "$scpu"
	check "$dir" plain
	mbps "$t0" "$t1"
}

check() {
	if [ "$1" = get ]; then cmp -s "$work/cli/dl" "$work/srv/big" || { echo "MISMATCH $2 $1" >&2; exit 1; }
	else cmp -s "$work/srv/big.up" "$work/cli/big" || { echo "MISMATCH $2 $1" >&2; exit 1; }; fi
}

# run_one client server direction cipher -> prints MB/s
run_one() {
	local client=$1 server=$2 dir=$3 cipher=$4 port rpath t0 t1
	[ "$client" = plain ] && { plain_one "$dir"; return; }
	if [ "$server" = sshd ]; then port=$sshd_port; rpath="$work/srv/big"; else port=$serve_port; rpath=big; fi
	local up_target="$rpath.up"
	rm -f "$work/cli/dl" "$work/srv/big.up"
	# The peak RSS of this transfer alone (Linux: 5 resets VmHWM).
	local s0=- scpu=-
	if [ "$server" = serve ]; then
		{ echo 5 > "/proc/$serve_pid/clear_refs"; } 2>/dev/null || true
		s0=$(proc_cpu "$serve_pid")
	fi
	t0=$(now)
	if [ "$client" = openssh ]; then
		if [ "$dir" = get ]; then cmd="get $rpath $work/cli/dl"; else cmd="put $work/cli/big $up_target"; fi
		echo "$cmd" | timed "${on_client[@]}" sftp -q -b - "${ssh_opts[@]}" -c "$cipher" -P "$port" 127.0.0.1 >/dev/null
	else
		# rsftpnr: rsftp with --no-resume, for issue 17's "resumption
		# costs nothing" (the same client, the extension refused).
		local nr=()
		[ "$client" = rsftpnr ] && nr=(--no-resume)
		if [ "$dir" = get ]; then
			timed "${on_client[@]}" "$work/rsftp" get "${rsftp_opts[@]}" "${nr[@]}" -c "$cipher" -P "$port" "127.0.0.1:$rpath" "$work/cli/dl"
		else
			timed "${on_client[@]}" "$work/rsftp" put "${rsftp_opts[@]}" "${nr[@]}" -c "$cipher" -P "$port" "$work/cli/big" "127.0.0.1:$up_target"
		fi
	fi
	t1=$(now)
	if [ "$server" = serve ]; then
		awk '/VmHWM/ {printf "%.1f\n", $2/1024}' "/proc/$serve_pid/status" >> "$work/rss.$pin"
		scpu=$(python3 -c "print($(proc_cpu "$serve_pid") - $s0)")
	fi
	note_cpu "$dir $client $server $cipher" "$(cpu_out)" "$scpu"
	check "$dir" "$client $server"
	mbps "$t0" "$t1"
}

ciphers=(${CIPHERS:-chacha20-poly1305@openssh.com aes128-gcm@openssh.com})
dirs=(${DIRS:-get put})
runs=${RUNS:-3}
pairs=("openssh sshd" "rsftp serve" "rsftpnr serve" "openssh serve" "rsftp sshd")
if [ -n "${PAIRS:-}" ]; then # e.g. PAIRS="rsftp:serve"; OpenSSH's pair always runs
	pairs=("openssh sshd")
	for p in $PAIRS; do pairs+=("${p/:/ }"); done
fi

median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.0f}")' "$@"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }
share() { python3 -c "print(f'{100*$1/$2:.0f}%')"; }

# run_placement pin: every pair runs $runs times, rounds interleaved so
# that a slow minute of this shared machine hits all pairs alike, the
# plain copy once per round and direction (it has no cipher); the table
# shows medians.
run_placement() {
	local pin=$1 name
	on_client=() on_server=()
	[ "$pin" = 1 ] && on_client=(taskset -c 0) on_server=(taskset -c 1)
	start_servers
	{
		echo "[127.0.0.1]:$sshd_port $(cut -d' ' -f1,2 "$work/sshd_hk.pub")"
		echo "[127.0.0.1]:$serve_port $(cut -d' ' -f1,2 "$work/serve_hk.pub")"
	} > "$work/known_hosts"
	declare -A got=()
	: > "$work/rss.$pin"
	: > "$work/cpu.$pin"
	for dir in "${dirs[@]}"; do
		for w in $(seq "${WARMUP:-1}"); do
			run_one openssh sshd "$dir" "${ciphers[0]}" > /dev/null
		done
		for r in $(seq "$runs"); do
			got["$dir plain"]+="$(run_one plain - "$dir" -) "
			for c in "${ciphers[@]}"; do
				for pair in "${pairs[@]}"; do
					set -- $pair
					got["$dir $pair $c"]+="$(run_one "$1" "$2" "$dir" "$c") "
				done
			done
		done
	done
	stop_servers

	if [ "$pin" = 1 ]; then echo "== pinned (PIN=1: clients on CPU 0, servers on CPU 1)"; else echo "== unpinned"; fi
	printf '%-34s %-4s' "client -> server" dir
	for c in "${ciphers[@]}"; do printf ' %10s %6s %5s' "${c%%[-@]*}" ratio plain; done
	echo
	for dir in "${dirs[@]}"; do
		p=$(median ${got["$dir plain"]})
		printf '%-34s %-4s' "plain copy (${plain%% (*})" "$dir"
		for c in "${ciphers[@]}"; do printf ' %10s %6s %5s' "$p" "" "100%"; done
		echo
		for pair in "${pairs[@]}"; do
			set -- $pair
			case $1 in
			openssh) name="OpenSSH sftp -> ${2/serve/rsftp serve}" ;;
			rsftpnr) name="rsftp --no-resume -> ${2/serve/rsftp serve}" ;;
			*) name="rsftp -> ${2/serve/rsftp serve}" ;;
			esac
			printf '%-34s %-4s' "$name" "$dir"
			for c in "${ciphers[@]}"; do
				v=$(median ${got["$dir $pair $c"]})
				b=$(median ${got["$dir openssh sshd $c"]})
				printf ' %10s %6s %5s' "$v" "$(ratio "$v" "$b")" "$(share "$v" "$p")"
			done
			echo
		done
	done
	if [[ " ${pairs[*]} " == *" rsftpnr serve "* && " ${pairs[*]} " == *" rsftp serve "* ]]; then
		printf 'resumption on / off (rsftp -> rsftp serve against --no-resume, medians):'
		for dir in "${dirs[@]}"; do for c in "${ciphers[@]}"; do
			on=$(median ${got["$dir rsftp serve $c"]}) off=$(median ${got["$dir rsftpnr serve $c"]})
			printf ' %s %s %s' "$dir" "${c%%[-@]*}" "$(python3 -c "print(f'{$on/$off:.2f}')")"
		done; done
		echo
	fi
	echo "runs per cell: $runs (median shown), after ${WARMUP:-1} warm-up transfer(s) per direction; all runs, MB/s:"
	for dir in "${dirs[@]}"; do
		printf '  %-4s %-14s %-30s %s\n' "$dir" "plain" "$plain" "${got["$dir plain"]}"
		for pair in "${pairs[@]}"; do for c in "${ciphers[@]}"; do
			printf '  %-4s %-14s %-30s %s\n' "$dir" "$pair" "$c" "${got["$dir $pair $c"]}"
		done; done
	done
	python3 - "$work/cpu.$pin" "$size_mb" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(lambda: ([], []))
for line in open(sys.argv[1]):
    key, c, s = line.rstrip("\n").split("|")
    for i, v in enumerate((c, s)):
        if v not in ("", "-"):
            runs[key][i].append(float(v))
gib = int(sys.argv[2]) / 1024
print("CPU seconds per GiB, user + system (medians; client / server, server only for rsftp serve and the plain copy):")
for key, (c, s) in runs.items():
    f = lambda v: f"{statistics.median(v) / gib:.2f}" if v else "-"
    print(f"  {key:<60} {f(c):>6} / {f(s)}")
PY
	if [ -s "$work/rss.$pin" ]; then
		echo "rsftp serve peak RSS: $(sort -g "$work/rss.$pin" | tail -1) MiB, the largest of its $(wc -l < "$work/rss.$pin") transfers (each, MiB: $(tr '\n' ' ' < "$work/rss.$pin"))"
	fi
	echo
}

for pin in "${pins[@]}"; do run_placement "$pin"; done
echo "(MB/s = 10^6 bytes per second; ratio: against OpenSSH sftp -> sshd with the same cipher; plain: share of the plain copy's rate)"

#!/usr/bin/env bash
# Sessions through a stock sshd with rsftp's helper (issue 19,
# docs/PROTOCOL.helper.md), side by side in one run:
#
#   scripts/bench-helper.sh
#
# Rows:
#   reconnect: the time from a link's loss to the first resumed byte,
#     through Debian's sshd behind a relay (internal/wanrelay) that delays
#     each direction by half of RTT. rsftp get with the helper (a file
#     paced at RATE so that it lasts) is made to reconnect CUTS times
#     (SIGUSR2: the connection is dropped and the link is back at once);
#     each "resumed" event's offline_ms is the whole reconnection: a new
#     TCP connection, sshd's key exchange and login, the exec of "rsftp
#     attach", the inner key exchange and RESUME_REQUEST/ACCEPT. Beside
#     it, what OpenSSH does instead: a new "sftp -b" whose batch is one
#     reget of a file whose last byte is missing (the whole command,
#     start to exit: connection, login, SFTP, the stat, open and read).
#     Also rsftp get against rsftp serve (the extension in band, the
#     same relay) for reference.
#   throughput: rsftp get of SIZE MiB from sshd on loopback (no relay:
#     where CPU bounds it and the inner connection's encryption shows
#     most), with the helper and without it (-o ResumeHelper=no), RUNS
#     times each, interleaved; medians and their ratio.
#
# Environment: RTT (ms, default 10), RATE (the reconnect row's pace,
# default 20MB), CUTS (default 8), SIZE (MiB, default 1024), RUNS
# (default 5), ROWS (default "reconnect throughput"), KEEP=1 keeps the
# work directory, PIN=1 runs sshd with all it starts (the helper,
# sftp-server) on CPU 1, for both rows, and the throughput row's client
# on CPU 0: what two hosts would see (on loopback the two sides
# otherwise share both cores). The throughput row also prints the client's CPU time per GiB
# (user and system, summed over the runs). The server side's is not
# printed: the helper and sftp-server can outlive the sshd process that
# started them, so sshd's reaped children's times do not hold them; use
# perf stat -p on each process instead (docs/PROTOCOL.helper.md
# section 10).
#
# Needs OpenSSH's sshd, sftp, sftp-server and ssh-keygen, and python3.
# The helper's cache goes into the work directory (RSFTP_HELPER_DIR),
# never into the real home of the user sshd runs it as. As root (with
# useradd), both tools log in as a user the script creates with a home
# from /etc/skel (BENCH_USER=self logs in as root instead): sshd runs
# every command and subsystem through the user's shell, and a heavy
# ~/.bashrc (bash reads it for sshd's commands) is paid by each
# reconnection and each new OpenSSH session alike (on the development VM
# root's, with pyenv, costs about 200 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
rtt="${RTT:-10}"
rate="${RATE:-20MB}"
cuts="${CUTS:-8}"
size_mb="${SIZE:-1024}"
runs="${RUNS:-5}"
rows=" ${ROWS:-reconnect throughput} "
work="$(mktemp -d /tmp/rsftp-helper-bench.XXXXXX)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

sshd_bin=/usr/sbin/sshd
sftp_server=/usr/lib/openssh/sftp-server
for b in "$sshd_bin" "$sftp_server" "$(command -v sftp)" "$(command -v ssh-keygen)" "$(command -v python3)"; do
	[ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done
mkdir -p /run/sshd 2>/dev/null || true

go build -o "$work/rsftp" ./cmd/rsftp
go build -o "$work/wanrelay" ./internal/wanrelay
mkdir -p "$work/srv" "$work/cli"
ssh-keygen -q -t ed25519 -N '' -f "$work/id" -C bench
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd_hk" -C bench-sshd
cp "$work/id.pub" "$work/authorized_keys"
chmod 600 "$work/authorized_keys"
export RSFTP_HELPER_DIR="$work/helper"
login_user="$(id -un)"
if [ "$(id -u)" = 0 ] && [ "${BENCH_USER:-new}" != self ] && command -v useradd > /dev/null; then
	login_user="rsftpb$$"
	useradd -m -d "$work/home" -k /etc/skel -s /bin/bash "$login_user"
	usermod -p '*' "$login_user" # no password, not locked: sshd refuses locked accounts
	chmod 644 "$work/authorized_keys"
	trap 'cleanup; userdel "$login_user" 2>/dev/null || true' EXIT
	chmod 755 "$work"
	mkdir -p "$RSFTP_HELPER_DIR"
	chown "$login_user" "$RSFTP_HELPER_DIR" "$work/srv"
	chmod 755 "$work/srv"
fi

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
MaxStartups 100
Subsystem sftp $sftp_server
CFG
cli_pin=() srv_pin=()
if [ "${PIN:-0}" = 1 ]; then cli_pin=(taskset -c 0) srv_pin=(taskset -c 1); fi
"${srv_pin[@]}" "$sshd_bin" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
pids+=($!)
"$work/rsftp" serve --listen "127.0.0.1:$serve_port" --root "$work/srv" \
	--host-key "$work/serve_hk" --authorized-keys "$work/authorized_keys" 2>"$work/serve.log" &
pids+=($!)
for i in $(seq 100); do
	if [ -f "$work/serve_hk.pub" ] && (exec 3<>"/dev/tcp/127.0.0.1/$sshd_port") 2>/dev/null &&
		(exec 3<>"/dev/tcp/127.0.0.1/$serve_port") 2>/dev/null; then break; fi
	sleep 0.1
done
echo "[127.0.0.1]:$sshd_port $(cut -d' ' -f1,2 "$work/sshd_hk.pub")" >> "$work/known_hosts"

# relay NAME TO: a delaying relay to 127.0.0.1:TO, its port in relay_port.
declare -A relay_port=()
relay() {
	local half
	half="$(python3 -c "print(f'{$rtt/2}ms')")"
	"$work/wanrelay" relay -listen 127.0.0.1:0 -to "127.0.0.1:$2" -delay "$half" -rate "$rate" \
		> "$work/relay-$1.addr" 2>>"$work/relay.err" &
	pids+=($!)
	for i in $(seq 50); do [ -s "$work/relay-$1.addr" ] && break; sleep 0.1; done
	local a
	a="$(cat "$work/relay-$1.addr")"
	relay_port[$1]="${a##*:}"
}

ssh_opts=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none
	-o "UserKnownHostsFile=$work/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -i "$work/id")
ssh_opts+=(-o "User=$login_user")
rsftp_opts=(-q -F none -o BatchMode=yes -o "UserKnownHostsFile=$work/known_hosts"
	-o StrictHostKeyChecking=yes -i "$work/id" -o "User=$login_user")
now() { date +%s.%N; }
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.1f} (range {min(v):.1f}-{max(v):.1f}, n={len(v)})")' "$@"; }

if [[ "$rows" == *" reconnect "* ]]; then
	relay sshd "$sshd_port"
	relay serve "$serve_port"
	echo "[127.0.0.1]:${relay_port[sshd]} $(cut -d' ' -f1,2 "$work/sshd_hk.pub")" >> "$work/known_hosts"
	echo "[127.0.0.1]:${relay_port[serve]} $(cut -d' ' -f1,2 "$work/serve_hk.pub")" >> "$work/known_hosts"
	# Long enough for CUTS reconnections 1.5 s apart at RATE.
	mb="$(python3 -c "
r='$rate'.upper(); m={'K':1e3,'M':1e6,'G':1e9}
n=float(r.rstrip('B').rstrip('KMG') or 0)*m.get(r.rstrip('B')[-1:],1)
print(int(n*1.5*($cuts+3)/1048576)+1)")"
	head -c "$((mb << 20))" /dev/urandom > "$work/srv/paced"
	# The helper is installed before the measured run.
	"$work/rsftp" get "${rsftp_opts[@]}" -P "${relay_port[sshd]}" "127.0.0.1:$work/srv/paced" "$work/cli/warm" 2>/dev/null || true
	rm -f "$work/cli/warm"
	for target in sshd serve; do
		ev="$work/events-$target"
		src="$work/srv/paced" as=()
		# rsftp serve logs in the user running it, whatever the key.
		[ "$target" = serve ] && src=paced as=(-o "User=$(id -un)")
		"$work/rsftp" get "${as[@]}" "${rsftp_opts[@]}" -P "${relay_port[$target]}" --events "$ev" "127.0.0.1:$src" "$work/cli/paced-$target" &
		p=$!
		sleep 2
		for i in $(seq "$cuts"); do
			kill -USR2 "$p" 2>/dev/null || break
			sleep 1.5
		done
		wait "$p"
		cmp "$work/srv/paced" "$work/cli/paced-$target"
		mapfile -t off < <(python3 -c '
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "resumed":
        print(e["offline_ms"])' "$ev")
		if [ "${#off[@]}" = 0 ]; then echo "no resumption against $target" >&2; exit 1; fi
		label="rsftp get, sshd + helper"
		[ "$target" = serve ] && label="rsftp get, rsftp serve  "
		echo "reconnect at ${rtt} ms RTT, $label: $(median "${off[@]}") ms, link loss to first resumed byte"
	done
	# OpenSSH: a new connection and reget of the missing last byte.
	head -c $((1 << 20)) /dev/urandom > "$work/srv/small"
	times=()
	for i in $(seq "$cuts"); do
		head -c $(((1 << 20) - 1)) "$work/srv/small" > "$work/cli/small"
		echo "reget $work/srv/small $work/cli/small" > "$work/batch"
		t0=$(now)
		sftp -q "${ssh_opts[@]}" -P "${relay_port[sshd]}" -b "$work/batch" 127.0.0.1 > /dev/null
		t1=$(now)
		cmp "$work/srv/small" "$work/cli/small"
		times+=("$(python3 -c "print(($t1-$t0)*1000)")")
	done
	echo "reconnect at ${rtt} ms RTT, OpenSSH sftp + reget : $(median "${times[@]}") ms, the whole new command"
fi

if [[ "$rows" == *" throughput "* ]]; then
	echo "making a ${size_mb} MiB file..." >&2
	head -c "$((size_mb << 20))" /dev/urandom > "$work/srv/big"
	cat "$work/srv/big" > /dev/null
	declare -A rate_of=() cli_cpu=()
	for mode in auto no; do rate_of[$mode]="" cli_cpu[$mode]=0; done
	# A warm-up of each, not counted.
	for mode in auto no; do
		"${cli_pin[@]}" "$work/rsftp" get "${rsftp_opts[@]}" -P "$sshd_port" -o "ResumeHelper=$mode" "127.0.0.1:$work/srv/big" "$work/cli/big" 2>/dev/null
		rm -f "$work/cli/big"
	done
	for r in $(seq "$runs"); do
		for mode in auto no; do
			t0=$(now)
			/usr/bin/time -f "%U %S" -o "$work/cli.time" "${cli_pin[@]}" "$work/rsftp" get "${rsftp_opts[@]}" -P "$sshd_port" -o "ResumeHelper=$mode" "127.0.0.1:$work/srv/big" "$work/cli/big"
			t1=$(now)
			cli_cpu[$mode]=$(python3 -c "print(${cli_cpu[$mode]} + sum(map(float, open('$work/cli.time').read().split())))")
			cmp "$work/srv/big" "$work/cli/big"
			rm -f "$work/cli/big"
			rate_of[$mode]+=" $(python3 -c "print($size_mb*1.048576/($t1-$t0))")"
		done
	done
	echo "throughput, rsftp get ${size_mb} MiB from sshd, with the helper   : $(median ${rate_of[auto]}) MB/s"
	echo "throughput, rsftp get ${size_mb} MiB from sshd, without the helper: $(median ${rate_of[no]}) MB/s"
	python3 -c '
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
print(f"throughput ratio, with / without the helper: {statistics.median(a)/statistics.median(b):.2f}")' "${rate_of[auto]}" "${rate_of[no]}"
	for mode in auto no; do
		python3 -c "
gib = $runs * $size_mb / 1024
print(f'client CPU per GiB, ResumeHelper=$mode: {${cli_cpu[$mode]}/gib:.2f} s')"
	done
fi

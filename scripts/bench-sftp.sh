#!/usr/bin/env bash
# Side-by-side SFTP throughput on loopback: rsftp and OpenSSH, clients and
# servers crossed, 1 GiB from the page cache each way, per cipher.
#
#   scripts/bench-sftp.sh [size_MiB]      (default 1024)
#
# Environment: RUNS (runs per cell, default 3; the table shows medians),
# WARMUP (transfers per direction before the measured ones, default 1,
# not counted: on these VMs the first writes of a fresh gigabyte touch
# memory the guest gave back to the host and run far slower, which hit
# whichever pair came first, usually OpenSSH's),
# CIPHERS, DIRS and PAIRS (space-separated subsets; pairs as rsftp:serve,
# openssh:serve, rsftp:sshd), RSFTP_FLAGS (extra flags for
# the rsftp client, e.g. --no-resume), PIN=1 (clients on CPU 0 and servers
# on CPU 1 with taskset, as two one-core hosts would run them; Go then
# runs one P per process. Unpinned is the default and what README.md
# reports as the result).
#
# Needs OpenSSH's sshd, sftp, sftp-server and ssh-keygen (.ci/run installs
# them). Runs as any user; sshd gets a private config on a free port.
# Prints MB/s per pair and direction, the ratio to OpenSSH sftp -> sshd,
# and the peak RSS of rsftp serve.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-1024}"
work="$(mktemp -d /tmp/rsftp-bench.XXXXXX)"
cleanup() {
	[ -n "${sshd_pid:-}" ] && kill "$sshd_pid" 2>/dev/null || true
	[ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

sshd_bin=/usr/sbin/sshd
sftp_server=/usr/lib/openssh/sftp-server
for b in "$sshd_bin" "$sftp_server" "$(command -v sftp)" "$(command -v ssh-keygen)"; do
	[ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done
mkdir -p /run/sshd 2>/dev/null || true
on_client=() on_server=()
if [ "${PIN:-0}" = 1 ]; then
	command -v taskset >/dev/null || { echo "PIN=1 needs taskset" >&2; exit 1; }
	on_client=(taskset -c 0) on_server=(taskset -c 1)
fi

go build -o "$work/rsftp" ./cmd/rsftp
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
"${on_server[@]}" "$sshd_bin" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
sshd_pid=$!
"${on_server[@]}" "$work/rsftp" serve --listen "127.0.0.1:$serve_port" --root "$work/srv" \
	--host-key "$work/serve_hk" --authorized-keys "$work/authorized_keys" 2>"$work/serve.log" &
serve_pid=$!
for i in $(seq 100); do
	if [ -f "$work/serve_hk.pub" ] && (exec 3<>"/dev/tcp/127.0.0.1/$sshd_port") 2>/dev/null &&
		(exec 3<>"/dev/tcp/127.0.0.1/$serve_port") 2>/dev/null; then break; fi
	sleep 0.1
done
{
	echo "[127.0.0.1]:$sshd_port $(cut -d' ' -f1,2 "$work/sshd_hk.pub")"
	echo "[127.0.0.1]:$serve_port $(cut -d' ' -f1,2 "$work/serve_hk.pub")"
} > "$work/known_hosts"

echo "making a ${size_mb} MiB file..." >&2
head -c "$((size_mb << 20))" /dev/urandom > "$work/srv/big"
cp "$work/srv/big" "$work/cli/big"
cat "$work/srv/big" "$work/cli/big" > /dev/null # into the page cache

ssh_opts=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none
	-o "UserKnownHostsFile=$work/known_hosts" -o StrictHostKeyChecking=yes -i "$work/id")
rsftp_opts=(${RSFTP_FLAGS:-} -q -F none -o BatchMode=yes -o "UserKnownHostsFile=$work/known_hosts"
	-o StrictHostKeyChecking=yes -i "$work/id")

now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$size_mb*1.048576/($2-$1):.0f}')"; }

# run_one client server direction cipher -> prints MB/s
run_one() {
	local client=$1 server=$2 dir=$3 cipher=$4 port rpath t0 t1
	if [ "$server" = sshd ]; then port=$sshd_port; rpath="$work/srv/big"; else port=$serve_port; rpath=big; fi
	local up_target="$rpath.up"
	rm -f "$work/cli/dl" "$work/srv/big.up"
	t0=$(now)
	if [ "$client" = openssh ]; then
		if [ "$dir" = get ]; then cmd="get $rpath $work/cli/dl"; else cmd="put $work/cli/big $up_target"; fi
		echo "$cmd" | "${on_client[@]}" sftp -q -b - "${ssh_opts[@]}" -c "$cipher" -P "$port" 127.0.0.1 >/dev/null
	else
		if [ "$dir" = get ]; then
			"${on_client[@]}" "$work/rsftp" get "${rsftp_opts[@]}" -c "$cipher" -P "$port" "127.0.0.1:$rpath" "$work/cli/dl"
		else
			"${on_client[@]}" "$work/rsftp" put "${rsftp_opts[@]}" -c "$cipher" -P "$port" "$work/cli/big" "127.0.0.1:$up_target"
		fi
	fi
	t1=$(now)
	if [ "$dir" = get ]; then cmp -s "$work/cli/dl" "$work/srv/big" || { echo "MISMATCH $client $server $dir" >&2; exit 1; }
	else cmp -s "$work/srv/big.up" "$work/cli/big" || { echo "MISMATCH $client $server $dir" >&2; exit 1; }; fi
	mbps "$t0" "$t1"
}

ciphers=(${CIPHERS:-chacha20-poly1305@openssh.com aes128-gcm@openssh.com})
dirs=(${DIRS:-get put})
runs=${RUNS:-3}
pairs=("openssh sshd" "rsftp serve" "openssh serve" "rsftp sshd")
if [ -n "${PAIRS:-}" ]; then # e.g. PAIRS="rsftp:serve"; OpenSSH's pair always runs
	pairs=("openssh sshd")
	for p in $PAIRS; do pairs+=("${p/:/ }"); done
fi

# Every pair runs $runs times, rounds interleaved so that a slow minute of
# this shared machine hits all pairs alike; the table shows medians.
median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.0f}")' "$@"; }
declare -A got=()
for dir in "${dirs[@]}"; do
	for w in $(seq "${WARMUP:-1}"); do
		run_one openssh sshd "$dir" "${ciphers[0]}" > /dev/null
	done
	for r in $(seq "$runs"); do
		for c in "${ciphers[@]}"; do
			for pair in "${pairs[@]}"; do
				set -- $pair
				got["$dir $pair $c"]+="$(run_one "$1" "$2" "$dir" "$c") "
			done
		done
	done
done

hdr=("client -> server" dir)
for c in "${ciphers[@]}"; do hdr+=("${c%%[-@]*}" ratio); done
printf '%-30s %-6s' "${hdr[0]}" "${hdr[1]}"; printf ' %10s %6s' "${hdr[@]:2}"; echo
for dir in "${dirs[@]}"; do
	for pair in "${pairs[@]}"; do
		set -- $pair
		[ "$1" = openssh ] && name="OpenSSH sftp -> ${2/serve/rsftp serve}" || name="rsftp -> ${2/serve/rsftp serve}"
		printf '%-30s %-6s' "$name" "$dir"
		for c in "${ciphers[@]}"; do
			v=$(median ${got["$dir $pair $c"]})
			b=$(median ${got["$dir openssh sshd $c"]})
			printf ' %10s %6s' "$v" "$(python3 -c "print(f'{$v/$b:.2f}x')")"
		done
		echo
	done
done
echo "runs per cell: $runs (median shown), after ${WARMUP:-1} warm-up transfer(s) per direction; all runs, MB/s:"
for dir in "${dirs[@]}"; do for pair in "${pairs[@]}"; do for c in "${ciphers[@]}"; do
	printf '  %-4s %-14s %-30s %s\n' "$dir" "$pair" "$c" "${got["$dir $pair $c"]}"
done; done; done
echo "rsftp serve peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$serve_pid/status)"
echo "(MB/s = 10^6 bytes per second; ratios against OpenSSH sftp -> sshd with the same cipher)"

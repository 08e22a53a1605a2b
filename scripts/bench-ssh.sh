#!/usr/bin/env bash
# Interactive SSH side by side with OpenSSH in one run (issue 18): rsftp
# ssh against rsftp serve --shell, and OpenSSH's ssh against sshd.
#
#   scripts/bench-ssh.sh
#
# Rows:
#   echo: keystroke to echo through a pty at each RTT in ECHO_RTTS (ms,
#     default "10 100"): internal/ptybench types KEYS keys one at a time
#     into the client's terminal; the remote side is cat (its output to
#     /dev/null) on a pty, whose line discipline echoes. Median and spread, and rsftp minus OpenSSH.
#   bulk: SIZE MiB (default 1024) of output through a remote pty
#     (`-tt ... cat FILE`, the client's stdout to /dev/null) and through
#     a -L forward (a plain TCP download through the tunnel); loopback,
#     no relay: MB/s and rsftp over OpenSSH.
#   outage: rsftp ssh only (OpenSSH's session ends): a remote loop prints
#     a numbered line every 10 ms; the link (a relay at OUTAGE_RTT ms,
#     default 10) is blackholed CUTS times (default 3) for DOWN (default
#     3s), then new connections pass again. With the notice a new address
#     gives (rsftp's reconnection signal at the return) and without (the
#     client's own retries): time from the return to the first line after
#     the cut on the screen; every line checked once, in order.
#
# Environment: ROWS ("echo bulk outage"), RUNS (default 3, interleaved,
# medians and ranges), KEYS (default 100), SIZE, BULK ("pty forward": the
# bulk rows to run), ECHO_RTTS, OUTAGE_RTT, CUTS, DOWN, CIPHER (both
# tools), PIN (placements of the echo and bulk rows, in turn each round:
# 0 unpinned, 1 each client on CPU 0 and each server, with what it
# starts, on CPU 1 (taskset), as two one-core hosts would run them;
# default 0; "0 1" runs both), HELPER=1 (the echo row also for rsftp ssh
# through Debian's sshd with the resume helper, -o ResumeHelper=yes: the
# inner connection rides on an exec channel, where sshd leaves Nagle on),
# KEEP=1 keeps the work directory.
#
# Needs OpenSSH's sshd, ssh and ssh-keygen (.ci/run installs them); Linux
# (pseudo-terminals). Runs as any user; sshd gets a private config on a
# free port.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=" ${ROWS:-echo bulk outage} "
runs="${RUNS:-3}"
keys="${KEYS:-100}"
size_mb="${SIZE:-1024}"
bulk_kinds=(${BULK:-pty forward})
pins=(${PIN:-0})
for pin in "${pins[@]}"; do
	case $pin in
	0) ;;
	1) command -v taskset >/dev/null || { echo "PIN=1 needs taskset" >&2; exit 1; } ;;
	*) echo "PIN: 0 (unpinned) or 1 (pinned), or both: \"0 1\"" >&2; exit 1 ;;
	esac
done
echo_rtts=(${ECHO_RTTS:-10 100})
outage_rtt="${OUTAGE_RTT:-10}"
cuts="${CUTS:-3}"
down="${DOWN:-3s}"
work="$(mktemp -d /tmp/rsftp-sshbench.XXXXXX)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

for b in /usr/sbin/sshd "$(command -v ssh)" "$(command -v ssh-keygen)"; do
	[ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done
mkdir -p /run/sshd 2>/dev/null || true

go build -o "$work/rsftp" ./cmd/rsftp
go build -o "$work/ptybench" ./internal/ptybench
go build -o "$work/wanrelay" ./internal/wanrelay
have_rsftp_ssh=1
"$work/rsftp" ssh -h >/dev/null 2>&1 || have_rsftp_ssh=0
[ "$have_rsftp_ssh" = 1 ] || echo "rsftp ssh is not built yet: OpenSSH rows only" >&2

mkdir -p "$work/srv"
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
AllowTcpForwarding yes
PrintMotd no
PrintLastLog no
CFG
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
pids+=($!)
"$work/rsftp" serve --listen "127.0.0.1:$serve_port" --root "$work/srv" --shell --forwarding local \
	--host-key "$work/serve_hk" --authorized-keys "$work/authorized_keys" 2>"$work/serve.log" &
pids+=($!)
"$work/wanrelay" serve -listen 127.0.0.1:0 -dir "$work/srv" > "$work/plain.addr" 2>"$work/plain.log" &
pids+=($!)
for i in $(seq 100); do
	if [ -s "$work/plain.addr" ] && (exec 3<>"/dev/tcp/127.0.0.1/$sshd_port") 2>/dev/null; then
		if [ "$have_rsftp_ssh" = 0 ] || { [ -f "$work/serve_hk.pub" ] && (exec 3<>"/dev/tcp/127.0.0.1/$serve_port") 2>/dev/null; }; then break; fi
	fi
	sleep 0.1
done
plain_port="$(sed 's/.*://' "$work/plain.addr")"

# place PIN: the servers (with the sessions and programs they start
# from now on) on CPU 1 and the clients started after it (through $on_client)
# on CPU 0, or both anywhere. sshd forks each connection's process from
# the listener, so it inherits the listener's CPUs; rsftp serve's threads
# are all moved.
server_pids=("${pids[0]}")
[ "$have_rsftp_ssh" = 1 ] && server_pids+=("${pids[1]}")
on_client=()
place() {
	local cpus=0-$(($(nproc) - 1)) p
	on_client=()
	if [ "$1" = 1 ]; then cpus=1 on_client=(taskset -c 0); fi
	for p in "${server_pids[@]}"; do taskset -a -c -p "$cpus" "$p" > /dev/null; done
}

# Every port a client may reach a server by (directly or through a
# ptybench relay, whose port is not known in advance) is in
# known_hosts by a wildcard on 127.0.0.1, one key per server: the two
# servers are told apart by HostKeyAlias.
echo "sshd-bench $(cut -d' ' -f1,2 "$work/sshd_hk.pub")" >> "$work/known_hosts"
[ -f "$work/serve_hk.pub" ] && echo "serve-bench $(cut -d' ' -f1,2 "$work/serve_hk.pub")" >> "$work/known_hosts"

common_opts=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none
	-o "UserKnownHostsFile=$work/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
	-i "$work/id")
if [ -n "${CIPHER:-}" ]; then common_opts+=(-c "$CIPHER"); fi
ossh=(ssh "${common_opts[@]}" -o HostKeyAlias=sshd-bench)
rssh=("$work/rsftp" ssh "${common_opts[@]}" -o HostKeyAlias=serve-bench)
rhelp=("$work/rsftp" ssh "${common_opts[@]}" -o HostKeyAlias=sshd-bench -o ResumeHelper=yes)

results="$work/results"
: > "$results"
rec() { echo "$1 $2" >> "$results"; }

echo_cell() { # CLIENT RTT PIN
	local client=$1 rtt=$2 pin=$3 half out
	half="$(python3 -c "print(f'{$rtt/2}ms')")"
	if [ "$client" = openssh ]; then
		out="$("${on_client[@]}" "$work/ptybench" echo -n "$keys" -to "127.0.0.1:$sshd_port" -delay "$half" -- \
			"${ossh[@]}" -tt -p %PORT% 127.0.0.1 'echo READY; exec cat >/dev/null')"
	elif [ "$client" = helper ]; then
		out="$(RSFTP_HELPER_DIR="$work/helper" "${on_client[@]}" "$work/ptybench" echo -n "$keys" -to "127.0.0.1:$sshd_port" -delay "$half" -- \
			"${rhelp[@]}" -tt -p %PORT% 127.0.0.1 'echo READY; exec cat >/dev/null')"
	else
		out="$("${on_client[@]}" "$work/ptybench" echo -n "$keys" -to "127.0.0.1:$serve_port" -delay "$half" -- \
			"${rssh[@]}" -tt -p %PORT% 127.0.0.1 'echo READY; exec cat >/dev/null')"
	fi
	echo "  echo $client ${rtt}ms pin=$pin: $out" >&2
	rec "echo,$client,$rtt,$pin" "$(sed -n 's/.*median \([0-9.]*\)ms.*/\1/p' <<<"$out")"
}

bulk_cell() { # CLIENT KIND PIN
	local client=$1 kind=$2 pin=$3 t0 t1 port cmd
	if [ "$client" = openssh ]; then cmd=("${ossh[@]}"); port=$sshd_port; else cmd=("${rssh[@]}"); port=$serve_port; fi
	if [ "$kind" = pty ]; then
		t0=$(date +%s.%N)
		"${on_client[@]}" "${cmd[@]}" -tt -p "$port" 127.0.0.1 "cat $work/srv/big" > /dev/null < /dev/null
		t1=$(date +%s.%N)
	else
		local lport
		lport="$(free_port)"
		"${on_client[@]}" "${cmd[@]}" -N -L "127.0.0.1:$lport:127.0.0.1:$plain_port" -p "$port" 127.0.0.1 < /dev/null &
		local fpid=$!
		for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$lport") 2>/dev/null && break; sleep 0.05; done
		t0=$(date +%s.%N)
		"$work/wanrelay" get -addr "127.0.0.1:$lport" big "$work/got"
		t1=$(date +%s.%N)
		kill "$fpid" 2>/dev/null || true
		wait "$fpid" 2>/dev/null || true
		cmp -s "$work/got" "$work/srv/big" || { echo "bulk $client $kind: the copy differs" >&2; exit 1; }
		rm -f "$work/got"
	fi
	local mbs
	mbs="$(python3 -c "print(f'{$size_mb*1048576/1e6/($t1-$t0):.1f}')")"
	echo "  bulk $client $kind pin=$pin: $mbs MB/s" >&2
	rec "bulk,$client,$kind,$pin" "$mbs"
}

outage_cell() { # SIGNAL(yes|no)
	local sig=$1 half out sigarg=()
	half="$(python3 -c "print(f'{$outage_rtt/2}ms')")"
	[ "$sig" = yes ] && sigarg=(-signal USR2)
	out="$("$work/ptybench" outage -cuts "$cuts" -down "$down" "${sigarg[@]}" -to "127.0.0.1:$serve_port" -delay "$half" -- \
		"${rssh[@]}" -tt -p %PORT% 127.0.0.1 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done')"
	echo "  outage signal=$sig: $out" >&2
	rec "outage,$sig" "$(sed -n 's/.*median \([0-9.]*\)ms.*/\1/p' <<<"$out")"
}

clients=(openssh)
[ "$have_rsftp_ssh" = 1 ] && clients+=(rsftp)
echo_only=()
[ "$have_rsftp_ssh" = 1 ] && [ "${HELPER:-0}" = 1 ] && echo_only=(helper)
if [[ "$rows" == *" bulk "* ]]; then
	echo "making a ${size_mb} MiB file..." >&2
	head -c "$((size_mb << 20))" /dev/urandom > "$work/srv/big"
	cat "$work/srv/big" > /dev/null
fi
for r in $(seq "$runs"); do
	echo "round $r of $runs" >&2
	for pin in "${pins[@]}"; do
		place "$pin"
		if [[ "$rows" == *" echo "* ]]; then
			for rtt in "${echo_rtts[@]}"; do for c in "${clients[@]}" "${echo_only[@]}"; do echo_cell "$c" "$rtt" "$pin"; done; done
		fi
		if [[ "$rows" == *" bulk "* ]]; then
			for kind in "${bulk_kinds[@]}"; do for c in "${clients[@]}"; do bulk_cell "$c" "$kind" "$pin"; done; done
		fi
	done
	place 0
	if [[ "$rows" == *" outage "* ]] && [ "$have_rsftp_ssh" = 1 ]; then
		outage_cell yes
		outage_cell no
	fi
done

python3 - "$results" <<'PY'
import sys, statistics
cells = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 2:
        cells.setdefault(f[0], []).append(float(f[1]))
def cell(k):
    v = cells.get(k)
    if not v:
        return None, ""
    m = statistics.median(v)
    return m, f"{m:.2f} ({min(v):.2f}-{max(v):.2f})" if len(v) > 1 else f"{m:.2f}"
pins = sorted({k.split(",")[-1] for k in cells if k.startswith(("echo,", "bulk,"))})
where = {"0": "unpinned", "1": "pinned: client on CPU 0, server on CPU 1"}
for pin in pins:
    title = f", {where.get(pin, pin)}" if len(pins) > 1 or pin != "0" else ""
    rtts = sorted({int(k.split(",")[2]) for k in cells if k.startswith("echo,") and k.endswith("," + pin)})
    helper = any(k.startswith("echo,helper,") for k in cells)
    if rtts:
        print()
        extra = " rsftp ssh -> sshd, resume helper | helper - OpenSSH |" if helper else ""
        print(f"| keystroke echo, ms (median of each run's median; range){title} | OpenSSH ssh -> sshd | rsftp ssh -> rsftp serve | rsftp - OpenSSH |{extra}")
        print("|---|---|---|---|" + ("---|---|" if helper else ""))
    for rtt in rtts:
        o, os_ = cell(f"echo,openssh,{rtt},{pin}")
        r, rs = cell(f"echo,rsftp,{rtt},{pin}")
        d = f"{r - o:+.2f}" if o is not None and r is not None else ""
        extra = ""
        if helper:
            h, hs = cell(f"echo,helper,{rtt},{pin}")
            extra = f" {hs} | {h - o:+.2f} |" if o is not None and h is not None else " | |"
        print(f"| {rtt} ms round trip | {os_} | {rs} | {d} |{extra}")
    if not any(k.startswith("bulk,") and k.endswith("," + pin) for k in cells):
        continue
    print()
    print(f"| bulk, MB/s (median; range){title} | OpenSSH | rsftp | rsftp / OpenSSH |")
    print("|---|---|---|---|")
    for kind, name in (("pty", "output through a pty (-tt cat)"), ("forward", "a -L forward (TCP download)")):
        o, os_ = cell(f"bulk,openssh,{kind},{pin}")
        r, rs = cell(f"bulk,rsftp,{kind},{pin}")
        ratio = f"{r / o:.2f}" if o and r is not None else ""
        if o is not None:
            print(f"| {name} | {os_} | {rs} | {ratio} |")
if any(k.startswith("outage,") for k in cells):
    print()
    print("| outage: link back to first line on screen, ms (median over cuts and runs' medians; range) | rsftp ssh |")
    print("|---|---|")
    for sig, name in (("yes", "with the new-address notice (reconnection signal at the return)"), ("no", "without (the client's own retries)")):
        _, s = cell(f"outage,{sig}")
        print(f"| {name} | {s} |")
PY

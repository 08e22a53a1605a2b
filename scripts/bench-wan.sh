#!/usr/bin/env bash
# rsftp and OpenSSH across a long, fat link, side by side in one run
# (issue 17): every connection goes through a user-space relay
# (internal/wanrelay) that delays each direction by half the round trip
# and paces it at RATE; every TCP hop is loopback, so what bounds a
# transfer is each program's own window over the round trip. The relay
# charges TCP's handshake (one round trip) as a real link would.
#
#   scripts/bench-wan.sh
#
# The rows (ROWS, default all: "bulk resume rt"):
#   bulk: get and put of one SIZE MiB file at each RTT, for a plain TCP
#     copy through the same relay (the ceiling), OpenSSH sftp -> sshd,
#     rsftp -> rsftp serve, rsftp -> sshd (and, in PAIRS, OpenSSH sftp ->
#     rsftp serve): MB/s of the whole command, % of the plain copy, the
#     ratio to OpenSSH sftp -> sshd, and the same rate and % net of what
#     the same command costs for a 3-byte file at that RTT (connecting,
#     authenticating, opening: round trips, not bandwidth), which is the
#     rate of the link the transfer itself reached.
#   resume: the bulk row of rsftp -> rsftp serve with the link cut once in
#     the middle: its relay resets each connection once it carried 60% of
#     SIZE (wanrelay -cut-after), and the session resumes on a new
#     connection, which carries the rest.
#   rt: whole commands (start to exit) at RT_RTT: one 3-byte file, and a
#     tree of TREES files of 4 KiB with -r, get and put, for OpenSSH sftp,
#     scp, rsftp -> rsftp serve, rsftp -> sshd: the wall time divided by
#     the round trip (round trips), and OpenSSH sftp's over rsftp's.
#
# Environment: SIZE (MiB, default 256), RTTS (ms, default "100 200"),
# RATE (each direction, default 100MB: 10^6 bytes/s; see wanrelay's
# -rate), RT_RTT (ms, default 100), TREES (default "100 1000"; "" none),
# ROWS, DIRS ("get put"), RUNS (default 3: every cell runs RUNS times,
# rounds interleaved across all cells so that a busy spell of a shared
# machine hits them alike; medians and ranges shown), SLOW_RUNS (default
# 1: OpenSSH's bulk cells and its trees, which its 2 MiB window and one
# file at a time make slow (62 s for 1 GiB, 430 s for 1,000 files at
# 100 ms) and steady, run in the first SLOW_RUNS rounds only), PAIRS
# (bulk pairs, default "plain openssh:sshd rsftp:serve rsftp:sshd"; add
# openssh:serve, or rsftp:helper: rsftp through sshd with its resume
# helper, ResumeHelper=auto, where rsftp:sshd says ResumeHelper=no to
# measure sshd's own SFTP server), RT_CLIENTS (default "sftp scp
# rsftp:serve rsftp:sshd"; rsftp:helper too),
# BIG_TREE_CLIENTS (trees of 1,000 files or more, default "sftp
# rsftp:serve rsftp:sshd"), RSFTP_FLAGS (extra flags for rsftp, e.g.
# --no-resume), CIPHER (for both tools; default each one's own),
# RELAY_LOG=1 (the relay logs each delivery into the work directory,
# kept: KEEP=1 keeps it all), QUICK=1 (a preset of a few minutes: SIZE
# 256, RUNS 1, TREES 100, unless set).
#
# Every row of issue 17's goals in one run: SIZE=1024 RUNS=3 takes about
# 40 minutes here (2 cores); QUICK=1 about 8.
#
# Needs OpenSSH's sshd, sftp, scp, sftp-server and ssh-keygen (.ci/run
# installs them). Runs as any user; sshd gets a private config on a free
# port.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${QUICK:-0}" = 1 ]; then
	: "${SIZE:=256}" "${RUNS:=1}" "${TREES=100}"
fi
size_mb="${SIZE:-256}"
rtts=(${RTTS:-100 200})
rate="${RATE:-100MB}"
rt_rtt="${RT_RTT:-100}"
trees=(${TREES-100 1000})
rows=" ${ROWS:-bulk resume rt} "
dirs=(${DIRS:-get put})
runs="${RUNS:-3}"
slow_runs="${SLOW_RUNS:-1}"
pairs=(${PAIRS:-plain openssh:sshd rsftp:serve rsftp:sshd})
rt_clients=(${RT_CLIENTS:-sftp scp rsftp:serve rsftp:sshd})
big_tree_clients=" ${BIG_TREE_CLIENTS:-sftp rsftp:serve rsftp:sshd} "
work="$(mktemp -d /tmp/rsftp-wan.XXXXXX)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ] || [ "${RELAY_LOG:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

sshd_bin=/usr/sbin/sshd
sftp_server=/usr/lib/openssh/sftp-server
for b in "$sshd_bin" "$sftp_server" "$(command -v sftp)" "$(command -v scp)" "$(command -v ssh-keygen)"; do
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
"$sshd_bin" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
pids+=($!)
"$work/rsftp" serve --listen "127.0.0.1:$serve_port" --root "$work/srv" \
	--host-key "$work/serve_hk" --authorized-keys "$work/authorized_keys" 2>"$work/serve.log" &
pids+=($!)
"$work/wanrelay" serve -listen 127.0.0.1:0 -dir "$work/srv" > "$work/plain.addr" 2>"$work/plain.log" &
pids+=($!)
for i in $(seq 100); do
	if [ -f "$work/serve_hk.pub" ] && [ -s "$work/plain.addr" ] && (exec 3<>"/dev/tcp/127.0.0.1/$sshd_port") 2>/dev/null &&
		(exec 3<>"/dev/tcp/127.0.0.1/$serve_port") 2>/dev/null; then break; fi
	sleep 0.1
done

# One relay per server and round trip; known_hosts names each relay's
# port with the key behind it.
declare -A relay=()
all_rtts=("${rtts[@]}")
[[ "$rows" == *" rt "* ]] && all_rtts+=("$rt_rtt")
for rtt in $(printf '%s\n' "${all_rtts[@]}" | sort -un); do
	half="$(python3 -c "print(f'{$rtt/2}ms')")"
	for srv in sshd serve plain cut; do
		cutarg=()
		case $srv in
		sshd) to="127.0.0.1:$sshd_port" ;;
		serve) to="127.0.0.1:$serve_port" ;;
		plain) to="$(cat "$work/plain.addr")" ;;
		cut)
			# rsftp serve behind a link that fails once in a transfer.
			[[ "$rows" == *" resume "* ]] || continue
			to="127.0.0.1:$serve_port" cutarg=(-cut-after "$((size_mb * 1048576 * 6 / 10))") ;;
		esac
		logarg=()
		[ "${RELAY_LOG:-0}" = 1 ] && logarg=(-log "$work/relay-$srv-$rtt.log")
		"$work/wanrelay" relay -listen 127.0.0.1:0 -to "$to" -delay "$half" -rate "$rate" "${cutarg[@]}" "${logarg[@]}" \
			> "$work/relay-$srv-$rtt.addr" 2>>"$work/relay.err" &
		pids+=($!)
		for i in $(seq 50); do [ -s "$work/relay-$srv-$rtt.addr" ] && break; sleep 0.1; done
		a="$(cat "$work/relay-$srv-$rtt.addr")"
		relay[$srv,$rtt]="${a##*:}"
		case $srv in
		sshd) echo "[127.0.0.1]:${a##*:} $(cut -d' ' -f1,2 "$work/sshd_hk.pub")" >> "$work/known_hosts" ;;
		serve | cut) echo "[127.0.0.1]:${a##*:} $(cut -d' ' -f1,2 "$work/serve_hk.pub")" >> "$work/known_hosts" ;;
		esac
	done
done

ssh_opts=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none
	-o "UserKnownHostsFile=$work/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -i "$work/id")
rsftp_opts=(${RSFTP_FLAGS:-} -q -F none -o BatchMode=yes -o "UserKnownHostsFile=$work/known_hosts"
	-o StrictHostKeyChecking=yes -i "$work/id")
if [ -n "${CIPHER:-}" ]; then ssh_opts+=(-c "$CIPHER"); rsftp_opts+=(-c "$CIPHER"); fi

# The files: a big one each side, a 3-byte one, trees of 4 KiB files.
if [[ "$rows" == *" bulk "* || "$rows" == *" resume "* ]]; then
	echo "making a ${size_mb} MiB file..." >&2
	head -c "$((size_mb << 20))" /dev/urandom > "$work/srv/big"
	cp "$work/srv/big" "$work/cli/big"
	cat "$work/srv/big" "$work/cli/big" > /dev/null
fi
printf 'hi\n' > "$work/srv/tiny"
cp "$work/srv/tiny" "$work/cli/tiny"
for n in "${trees[@]}"; do
	mkdir -p "$work/srv/tree$n"
	python3 - "$work/srv/tree$n" "$n" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:04d}"), "wb") as f:
        f.write(os.urandom(4096))
PY
	cp -r "$work/srv/tree$n" "$work/cli/tree$n"
done

now() { date +%s.%N; }

# remote SERVER NAME: the path of a file in srv/ as the server names it
# (rsftp serve's root is srv/).
remote() { if [ "$1" = sshd ] || [ "$1" = helper ]; then echo "$work/srv/$2"; else echo "$2"; fi; }

# xfer CLIENT SERVER DIR RTT SRC DST [-r]: one whole command. SRC and DST
# are names in srv/ (remote) and cli/ (local): get copies srv/SRC to
# cli/DST, put cli/SRC to srv/DST.
xfer() {
	local client=$1 server=$2 dir=$3 rtt=$4 src=$5 dst=$6 rec=${7:-}
	local port rsrc rdst hopt=()
	# rsftp -> sshd is stock sshd's SFTP server: ResumeHelper=no. The
	# pair rsftp:helper lets rsftp run its resume helper through sshd
	# (ResumeHelper's default, auto; docs/PROTOCOL.helper.md).
	case $server in
	sshd) hopt=(-o ResumeHelper=no) ;;
	helper) server=sshd ;;
	esac
	port=${relay[$server,$rtt]}
	if [ "$dir" = get ]; then rsrc=$(remote "$server" "$src"); else rdst=$(remote "$server" "$dst"); fi
	case $client in
	plain)
		if [ "$dir" = get ]; then "$work/wanrelay" get -addr "127.0.0.1:$port" "$src" "$work/cli/$dst"
		else "$work/wanrelay" put -addr "127.0.0.1:$port" "$work/cli/$src" "$dst"; fi ;;
	sftp)
		if [ "$dir" = get ]; then cmd="get $rec $rsrc $work/cli/$dst"; else cmd="put $rec $work/cli/$src $rdst"; fi
		echo "$cmd" | sftp -q -b - "${ssh_opts[@]}" -P "$port" 127.0.0.1 > /dev/null ;;
	scp)
		if [ "$dir" = get ]; then scp -q $rec "${ssh_opts[@]}" -P "$port" "127.0.0.1:$rsrc" "$work/cli/$dst"
		else scp -q $rec "${ssh_opts[@]}" -P "$port" "$work/cli/$src" "127.0.0.1:$rdst"; fi ;;
	rsftp)
		if [ "$dir" = get ]; then "$work/rsftp" get $rec "${rsftp_opts[@]}" "${hopt[@]}" -P "$port" "127.0.0.1:$rsrc" "$work/cli/$dst"
		else "$work/rsftp" put $rec "${rsftp_opts[@]}" "${hopt[@]}" -P "$port" "$work/cli/$src" "127.0.0.1:$rdst"; fi ;;
	esac
}

# check DIR SRC DST: the copy is whole.
check() {
	local a b
	if [ "$1" = get ]; then a="$work/srv/$2" b="$work/cli/$3"; else a="$work/cli/$2" b="$work/srv/$3"; fi
	if [ -d "$a" ]; then diff -r -q "$a" "$b" > /dev/null; else cmp -s "$a" "$b"; fi
}

clear_dst() { if [ "$1" = get ]; then rm -rf "$work/cli/$2"; else rm -rf "$work/srv/$2"; fi; }

results="$work/results"
: > "$results"
# measure KEY CLIENT SERVER DIR RTT SRC DST [-r]: runs one command, checks
# the copy and records KEY's seconds.
measure() {
	local key=$1 t0 t1
	shift
	clear_dst "$3" "$6"
	t0=$(now)
	if ! xfer "$@"; then echo "FAILED: $key" >&2; exit 1; fi
	t1=$(now)
	check "$3" "$5" "$6" || { echo "MISMATCH: $key" >&2; exit 1; }
	echo "$key $(python3 -c "print($t1-$t0)")" >> "$results"
	clear_dst "$3" "$6"
}

# The cells, run round by round. A bulk cell's "tiny" twin is the same
# command for a 3-byte file: what the command costs besides the data.
cells=()
if [[ "$rows" == *" bulk "* ]]; then
	for rtt in "${rtts[@]}"; do for dir in "${dirs[@]}"; do for p in "${pairs[@]}"; do
		cells+=("bulk|$rtt|$dir|$p" "tiny|$rtt|$dir|$p")
	done; done; done
fi
if [[ "$rows" == *" resume "* ]]; then
	for rtt in "${rtts[@]}"; do for dir in "${dirs[@]}"; do
		cells+=("resume|$rtt|$dir|rsftp:cut")
		[[ " ${pairs[*]} " == *" rsftp:serve "* ]] || cells+=("tiny|$rtt|$dir|rsftp:serve")
	done; done
fi
if [[ "$rows" == *" rt "* ]]; then
	for what in tiny "${trees[@]/#/tree}"; do for dir in "${dirs[@]}"; do for c in "${rt_clients[@]}"; do
		if [ "$what" != tiny ] && [ "${what#tree}" -ge 1000 ] && [[ "$big_tree_clients" != *" $c "* ]]; then continue; fi
		cells+=("rt|$rt_rtt|$dir|$c|$what")
	done; done; done
fi

# slow CELL: whether it runs in the first SLOW_RUNS rounds only.
slow() {
	case $1 in
	bulk\|*\|openssh:*) return 0 ;;
	rt\|*\|sftp\|tree* | rt\|*\|scp\|tree*) return 0 ;;
	esac
	return 1
}

run_cell() {
	local kind rtt dir p what client server src dst rec=
	IFS='|' read -r kind rtt dir p what <<< "$1"
	client=${p%%:*} server=${p#*:}
	case $client in plain) server=plain ;; sftp | scp | openssh) server=sshd ;; esac
	[ "$client" = openssh ] && client=sftp
	case $kind in
	bulk | resume) src=big dst=big.copy ;;
	tiny) src=tiny dst=tiny.copy ;;
	*)
		src=$what dst=$what.copy
		[ "$what" != tiny ] && rec=-r ;;
	esac
	measure "$1" "$client" "$server" "$dir" "$rtt" "$src" "$dst" $rec
}

if [[ "$rows" == *" bulk "* || "$rows" == *" resume "* ]] && [ "${WARMUP:-1}" -gt 0 ]; then
	for dir in "${dirs[@]}"; do xfer plain plain "$dir" "${rtts[0]}" big big.copy; done
fi
for r in $(seq "$runs"); do
	echo "round $r of $runs ($(date -u +%H:%M:%S) UTC)..." >&2
	for cell in "${cells[@]}"; do
		if [ "$r" -gt "$slow_runs" ] && slow "$cell"; then continue; fi
		run_cell "$cell"
	done
done
if [[ "$rows" == *" resume "* ]]; then
	# Each resumed transfer was cut at least once: count the sessions
	# the server saw resumed.
	echo "rsftp serve's log: $(grep -c -i 'resumed' "$work/serve.log" || true) lines about resumed sessions" >&2
fi

python3 - "$results" "$size_mb" "$rate" "$runs" <<'PY'
import collections, statistics, sys
path, size_mb, rate, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
got = collections.defaultdict(list)
order = []
for line in open(path):
    key, secs = line.rsplit(" ", 1)
    if key not in got:
        order.append(key)
    got[key].append(float(secs))

names = {"plain": "plain TCP copy", "openssh:sshd": "OpenSSH sftp -> sshd", "rsftp:serve": "rsftp -> rsftp serve",
         "rsftp:sshd": "rsftp -> sshd", "rsftp:helper": "rsftp -> sshd, helper", "openssh:serve": "OpenSSH sftp -> rsftp serve",
         "sftp": "OpenSSH sftp", "scp": "scp"}

bulk = [k for k in order if k.startswith(("bulk|", "resume|"))]
if bulk:
    mb = size_mb * 1048576 / 1e6
    med = lambda k: statistics.median(got[k])
    rtts = list(dict.fromkeys(k.split("|")[1] for k in bulk))
    dirs = list(dict.fromkeys(k.split("|")[2] for k in bulk))
    pairs = list(dict.fromkeys(k.split("|")[3] for k in bulk if k.startswith("bulk|")))
    rows = [("bulk", p) for p in pairs] + [("resume", "rsftp:cut")]
    names["rsftp:cut"] = "rsftp -> serve, link cut once"
    def net(kind, rtt, d, p):
        # seconds of the transfer itself: the command's less the same
        # command's for a 3-byte file.
        tp = "rsftp:serve" if p == "rsftp:cut" else p
        k, t = f"{kind}|{rtt}|{d}|{p}", f"tiny|{rtt}|{d}|{tp}"
        if k not in got or t not in got:
            return None
        return med(k) - med(t)
    for rtt in rtts:
        print(f"\n{size_mb} MiB at {rtt} ms RTT, {rate}/s each way: MB/s of the whole command, median (min-max) of its runs; "
              f"% of the plain copy; x OpenSSH sftp -> sshd; net: MB/s and % of the plain copy's, less each command's time for a 3-byte file")
        hdr = f"{'':30}"
        for d in dirs:
            hdr += f" {d + ' MB/s':>22} {'%plain':>7} {'xOpenSSH':>8} {'net MB/s':>9} {'net%':>5}"
        print(hdr)
        for kind, p in rows:
            line = f"{names.get(p, p):30}"
            any_ = False
            for d in dirs:
                k = f"{kind}|{rtt}|{d}|{p}"
                if k not in got:
                    line += f" {'':>22} {'':>7} {'':>8} {'':>9} {'':>5}"
                    continue
                any_ = True
                v = [mb / s for s in got[k]]
                m = mb / med(k)
                cell = f"{m:.1f} ({min(v):.1f}-{max(v):.1f})"
                base = got.get(f"bulk|{rtt}|{d}|plain")
                pct = f"{100 * m / (mb / statistics.median(base)):.0f}%" if base else ""
                o = got.get(f"bulk|{rtt}|{d}|openssh:sshd")
                x = f"{m / (mb / statistics.median(o)):.2f}x" if o else ""
                n, nb = net(kind, rtt, d, p), net("bulk", rtt, d, "plain")
                nm = f"{mb / n:.1f}" if n and n > 0 else ""
                npct = f"{100 * nb / n:.0f}%" if n and nb and n > 0 else ""
                line += f" {cell:>22} {pct:>7} {x:>8} {nm:>9} {npct:>5}"
            if any_:
                print(line)
        tl = [f"{names.get(p, p)} {d} {med(k) * 1000 / float(rtt):.1f}"
              for p in pairs for d in dirs for k in [f"tiny|{rtt}|{d}|{p}"] if k in got]
        if tl:
            print("  a 3-byte file, round trips: " + ", ".join(tl))

rt = [k for k in order if k.startswith("rt|")]
if rt:
    rtt = float(rt[0].split("|")[1])
    whats = list(dict.fromkeys(k.split("|")[4] for k in rt))
    dirs = list(dict.fromkeys(k.split("|")[2] for k in rt))
    clients = list(dict.fromkeys(k.split("|")[3] for k in rt))
    print(f"\nround trips at {rtt:g} ms (whole command, start to exit: wall time / RTT), median (min-max) of {runs}; x = OpenSSH sftp's over rsftp -> rsftp serve's")
    hdr = f"{'':34}" + "".join(f" {names.get(c, c):>20}" for c in clients) + f" {'x':>6}"
    print(hdr)
    for w in whats:
        for d in dirs:
            label = "one 3-byte file" if w == "tiny" else f"{w[4:]} files of 4 KiB (-r)"
            line = f"{label + ', ' + d:34}"
            meds = {}
            for c in clients:
                k = f"rt|{rt[0].split('|')[1]}|{d}|{c}|{w}"
                v = [s * 1000 / rtt for s in got.get(k, [])]
                if not v:
                    line += f" {'':>20}"
                    continue
                meds[c] = statistics.median(v)
                line += f" {f'{meds[c]:.1f} ({min(v):.1f}-{max(v):.1f})':>20}"
            x = f"{meds['sftp'] / meds['rsftp:serve']:.2f}" if "sftp" in meds and "rsftp:serve" in meds else ""
            print(line + f" {x:>6}")
print("\nall runs, seconds:")
for k in order:
    print(f"  {k:40} " + " ".join(f"{s:.3f}" for s in got[k]))
PY

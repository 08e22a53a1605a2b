#!/usr/bin/env bash
# Runs, on Linux under Wine, the Windows tests that Wine can host: the
# netwatch decoders and the Windows watcher's bookkeeping, named pipes
# (internal/winpipe), the agent over a pipe (auth), the reconnect event,
# a ProxyCommand through cmd.exe and the ssh_config ACL check (cmd/rsftp).
# Not part of CI: it needs Wine and MinGW (about 1 GB of Debian packages):
#   apt-get install wine64 gcc-mingw-w64-x86-64-win32
#   scripts/wine-tests.sh
# What Wine 8 (Debian 12) cannot show: it lacks bcryptprimitives.dll,
# which Go's runtime loads for ProcessPrng (a stand-in is built here with
# MinGW over RtlGenRandom); its NotifyIpInterfaceChange and the like
# succeed but never call back, so no change notice is seen; and its
# sockets lack SIO_UDP_CONNRESET, so net.DialUDP fails and SourceFor and
# PathChanged cannot run (netwatch_test.go's tests of them are left out).
set -euo pipefail
cd "$(dirname "$0")/.."
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
[ -x "$wine" ] || { echo "wine64 not found (apt-get install wine64)"; exit 1; }
command -v x86_64-w64-mingw32-gcc >/dev/null || { echo "x86_64-w64-mingw32-gcc not found (apt-get install gcc-mingw-w64-x86-64-win32)"; exit 1; }
export WINEDEBUG=-all WINEPREFIX="${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/rsftp-wine}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
	"$wine" cmd /c exit >/dev/null 2>&1 || true # creates the prefix
	cat >"$work/bcp.c" <<'C'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n)) return FALSE;
		data += n; len -= n;
	}
	return TRUE;
}
C
	x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" "$work/bcp.c" -ladvapi32
fi

# package and the tests of it that run under Wine
runs=(
	"internal/netwatch ^(TestMib|TestRt|TestRoundup|TestChangeString|TestCloseTwice|TestWindowsWatchersShare|FuzzMibChange|FuzzRtChanges)"
	"internal/winpipe ."
	"auth ^(TestAgentOverNamedPipe|TestDefaultAgentSocketWindows)$"
	"cmd/rsftp ^(TestReconnect|TestWindowsLoginName|TestProxyCommandWindows|TestCheckConfigPermWindows)"
)
failed=0
for r in "${runs[@]}"; do
	pkg=${r%% *} pat=${r#* }
	exe="$work/$(echo "$pkg" | tr / _).test.exe"
	GOOS=windows GOARCH=amd64 go test -c -o "$exe" "./$pkg"
	if out=$(cd "$pkg" && timeout 300 "$wine" "$exe" -test.run "$pat" -test.v 2>&1); then
		printf 'ok   %-18s %s tests passed\n' "$pkg" "$(grep -c '^--- PASS' <<<"$out")"
	else
		printf 'FAIL %-18s\n' "$pkg"
		sed 's/^/    /' <<<"$out"
		failed=1
	fi
done
exit $failed

#!/usr/bin/env bash
# Cross-compiles and vets the module, tests included, for every platform
# rsftp supports besides this one (issue 23):
#   scripts/cross.sh [GOOS/GOARCH ...]
# go vet type-checks each package's tests as well, so a test that names
# something a system lacks (syscall.SIGUSR2 on Windows, Setsid...) fails
# here. What is OS-independent about the other systems, the decoding of
# their network change notices (internal/netwatch: rtmsg.go for macOS and
# FreeBSD routing messages, mibnotify.go for Windows'), is tested and
# fuzzed by go test ./... and scripts/fuzz-ci.sh on this machine; the
# glue and the rest run only on the systems themselves (README.md says
# what was run where; scripts/wine-tests.sh runs the Windows tests it can
# under Wine).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
	targets=(darwin/amd64 darwin/arm64 windows/amd64 windows/arm64 freebsd/amd64 linux/arm64)
fi
start=$SECONDS
failed=0
for t in "${targets[@]}"; do
	t0=$SECONDS
	goos=${t%/*} goarch=${t#*/}
	if out=$(GOOS=$goos GOARCH=$goarch go build ./... 2>&1 && GOOS=$goos GOARCH=$goarch go vet ./... 2>&1); then
		printf 'ok   %-15s build and vet %3ds\n' "$t" $((SECONDS - t0))
	else
		printf 'FAIL %-15s\n' "$t"
		printf '%s\n' "$out" | sed 's/^/    /'
		failed=1
	fi
done
echo "${#targets[@]} targets in $((SECONDS - start))s"
exit $failed

#!/usr/bin/env bash
# Runs every fuzz target in the module for a while each (default 30s):
#   fuzz/run.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-30s}"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $target"
		go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$t"
	done
done

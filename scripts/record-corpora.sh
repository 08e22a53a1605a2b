#!/usr/bin/env bash
# Records real SSH sessions (rsftp with itself, with OpenSSH's ssh, sftp,
# sshd, ssh-agent, ssh-keyscan and ssh-keygen) and rewrites the rec-*
# seed files in every fuzz target's testdata/fuzz/<Target>/ directory:
#   scripts/record-corpora.sh            # into the module
#   scripts/record-corpora.sh /tmp/out   # into /tmp/out/<pkg>/testdata/fuzz/...
# Needs OpenSSH (ssh, sftp, sshd, sftp-server, ssh-agent, ssh-add,
# ssh-keyscan, ssh-keygen). Other seed files are left alone. See
# fuzz/corpus/record_test.go. A relative output directory is taken from
# the module root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
	export RSFTP_CORPUS_OUT="$1"
fi
RSFTP_RECORD_CORPUS=1 exec go test -count=1 -timeout 10m -run '^TestRecordFuzzCorpora$' -v ./fuzz/corpus

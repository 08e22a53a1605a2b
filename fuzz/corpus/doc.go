// Package corpus records the rec-* seed files of the module's fuzz targets
// from real SSH sessions: rsftp with itself and with OpenSSH's ssh, sftp,
// sshd, ssh-agent, ssh-keyscan and ssh-keygen. It has no code of its own:
// TestRecordFuzzCorpora (record_test.go) runs the sessions, seal_test.go
// re-seals recorded payloads for the packet decoder, and seeds_test.go
// maps the recordings onto each target's input format and writes them into
// <package>/testdata/fuzz/<Target>/ across the module. The test skips
// unless asked; scripts/record-corpora.sh runs it (needs OpenSSH; only
// when a target's input format changes, since keys differ on every run).
package corpus

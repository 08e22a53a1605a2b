// Package e2e holds the end-to-end tests of the whole stack, as
// golang.org/x/crypto keeps ssh/test: our client and server through
// [github.com/rsftp/rsftp]'s public API over real sockets, and both against
// OpenSSH and golang.org/x/crypto/ssh. It has no code of its own; its test
// files are
//
//   - resume_test.go, resume_pressure_test.go: resumption across cuts, with
//     full buffers, during rekeys, falling back to plain SSH (its helpers,
//     newRig, signer, testServerConfig, randomFile, openSFTP, are shared by
//     the other files);
//   - conformance_test.go: raw peers that send messages out of order to our
//     client and server;
//   - limits_test.go, limits_resume_test.go, limits_memory_test.go: a test
//     per server limit and per memory budget (docs/HARDENING.md lists them);
//   - load_test.go: many clients with cuts (BenchmarkLoad for the figures);
//   - interop_test.go, interop_rtt_test.go, xcrypto_test.go: OpenSSH's ssh,
//     sftp and sshd, found through internal/sshtest (they skip without
//     them, and fail under CI=true), and golang.org/x/crypto/ssh;
//   - interop_asyncssh_test.go, interop_dropbear_test.go: asyncssh (SFTP
//     client and server) and dropbear (server and dbclient) the same way,
//     with key re-exchanges in the middle of transfers;
//   - bench_*_test.go: throughput, resumption, latency and idle-memory
//     benchmarks.
//
// Its benchmarks run from the module root with the package's path, as in
//
//	go test -run '^$' -bench Upload -benchtime 3x ./internal/e2e
//
// The package examples and the unit tests of package rsftp stay in the
// module root.
package e2e

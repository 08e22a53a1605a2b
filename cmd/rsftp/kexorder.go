package main

import (
	"slices"

	"github.com/rsftp/rsftp/kex"
)

// helperReconnectKex is the key exchange order of the helper's
// reconnections to sshd when the user chose none (KexAlgorithms): ours,
// with sntrup761x25519 after curve25519. Against an sshd without ML-KEM
// (OpenSSH 9.0 to 9.8) sntrup761x25519 costs the reconnection about 10 ms
// of sshd's time, and buys little there: every byte of the session rides
// the inner connection, whose own exchange with the helper is
// mlkem768x25519, end to end; the outer connection of a reconnection
// carries only the login and the channel to the helper's socket. The
// first connection keeps the usual order, since it may end as plain SSH
// (docs/PROTOCOL.helper.md section 5).
func helperReconnectKex() []string {
	var first, sntrup []string
	for _, m := range kex.SupportedMethods() {
		if m == kex.SNTRUP761X25519SHA512 || m == kex.SNTRUP761X25519SHA512OpenSSH {
			sntrup = append(sntrup, m)
		} else {
			first = append(first, m)
		}
	}
	return slices.Concat(first, sntrup)
}

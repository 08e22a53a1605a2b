package main

import (
	"slices"
	"testing"

	"github.com/rsftp/rsftp/kex"
)

func TestHelperReconnectKex(t *testing.T) {
	got := helperReconnectKex()
	want := []string{kex.MLKEM768X25519SHA256, kex.Curve25519SHA256, kex.Curve25519SHA256LibSSH,
		kex.SNTRUP761X25519SHA512, kex.SNTRUP761X25519SHA512OpenSSH}
	if !slices.Equal(got, want) {
		t.Fatalf("helperReconnectKex() = %v, want %v", got, want)
	}
	// Nothing lost, nothing added.
	all := slices.Clone(kex.SupportedMethods())
	slices.Sort(all)
	slices.Sort(got)
	if !slices.Equal(all, got) {
		t.Fatalf("the reconnection's list %v is not a reordering of %v", got, all)
	}
}

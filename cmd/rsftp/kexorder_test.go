package main

import (
	"context"
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

// The helper's reconnection logs in with helperReconnectKex's order,
// unless the configuration names KexAlgorithms.
func TestHelperLoginKexOrder(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   []string
	}{
		{"", helperReconnectKex()},
		{"KexAlgorithms sntrup761x25519-sha512,curve25519-sha256\n", []string{kex.SNTRUP761X25519SHA512, kex.Curve25519SHA256}},
	} {
		hc, err := resolveIn(t, tc.config, lookupRequest{hostArg: "h"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := &helperRun{rt: &route{hc: hc}, log: &logger{}}
		cfg, err := h.login(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Transport.KexAlgorithms; !slices.Equal(got, tc.want) {
			t.Errorf("config %q: the reconnection offers %v, want %v", tc.config, got, tc.want)
		}
	}
}

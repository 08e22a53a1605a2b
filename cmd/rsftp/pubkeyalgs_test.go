package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// TestPubkeyAcceptedAlgorithms: the keyword (or its old name) is applied
// to ssh's default list as ssh applies it, names rsftp lacks (ssh-rsa)
// are left out and said at -v, and a list that leaves nothing is an
// error.
func TestPubkeyAcceptedAlgorithms(t *testing.T) {
	def := auth.DefaultPublicKeyAlgorithms()
	for _, c := range []struct {
		conf string
		want []string
		note string // in the -v output
	}{
		{"", nil, ""},
		{"PubkeyAcceptedAlgorithms +ssh-rsa,ssh-rsa-cert-v01@openssh.com", def, "ssh-rsa,ssh-rsa-cert-v01@openssh.com not supported"},
		{"PubkeyAcceptedKeyTypes rsa-sha2-256,ssh-ed25519", []string{kex.SigAlgoRSASHA256, kex.KeyAlgoED25519}, ""},
		{"PubkeyAcceptedAlgorithms ^rsa-sha2-256", append([]string{kex.SigAlgoRSASHA256}, slices.DeleteFunc(slices.Clone(def), func(a string) bool { return a == kex.SigAlgoRSASHA256 })...), ""},
		{"PubkeyAcceptedAlgorithms -*-cert-v01@openssh.com,ssh-dss", slices.DeleteFunc(slices.Clone(def), func(a string) bool { return strings.HasSuffix(a, "-cert-v01@openssh.com") }), ""},
		{"PubkeyAcceptedAlgorithms ssh-ed25519*,ssh-rsa", []string{kex.CertAlgoED25519, kex.KeyAlgoED25519}, "ssh-rsa not supported"},
	} {
		hc, err := resolveIn(t, c.conf+"\n", lookupRequest{hostArg: "x"}, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.conf, err)
		}
		if len(hc.cfg.warnings) != 0 {
			t.Errorf("%s: warnings %q", c.conf, hc.cfg.warnings)
		}
		var out bytes.Buffer
		got, err := pubkeyAlgorithms(hc.cfg, &logger{level: 4, w: &out})
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.conf, got, err, c.want)
		}
		if c.note != "" && !strings.Contains(out.String(), c.note) {
			t.Errorf("%s: -v said %q, want %q", c.conf, out.String(), c.note)
		}
	}
	for _, bad := range []string{"PubkeyAcceptedAlgorithms ssh-rsa", "PubkeyAcceptedAlgorithms -*"} {
		hc, err := resolveIn(t, bad+"\n", lookupRequest{hostArg: "x"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pubkeyAlgorithms(hc.cfg, &logger{}); err == nil || !strings.Contains(err.Error(), "leaves no algorithm") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

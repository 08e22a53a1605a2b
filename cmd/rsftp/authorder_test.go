package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// methodNames names the auth methods authMethods built, by their types
// (auth's publicKeyMethod, keyboardInteractiveMethod, passwordMethod).
func methodNames(t *testing.T, options ...string) ([]string, error) {
	t.Helper()
	cfg := newSSHConfig()
	for _, o := range append(options, "IdentityAgent=none") {
		if err := cfg.parseOption(o); err != nil {
			t.Fatal(err)
		}
	}
	batch := yes(cfg.getDefault("batchmode", "no"))
	ms, err := authMethods(context.Background(), cfg, "h", "u", 22, batch, &logger{})
	var names []string
	for _, m := range ms {
		n := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", m), "*auth."), "Method")
		if len(names) == 0 || names[len(names)-1] != n {
			names = append(names, n)
		}
	}
	return names, err
}

// TestPreferredAuthentications: the methods tried and their order follow
// PreferredAuthentications (ssh's default order without the methods rsftp
// lacks), and PubkeyAuthentication, KbdInteractiveAuthentication (or its
// old name ChallengeResponseAuthentication), PasswordAuthentication and
// BatchMode turn theirs off.
func TestPreferredAuthentications(t *testing.T) {
	for _, c := range []struct {
		opts []string
		want string
	}{
		{nil, "publicKey keyboardInteractive password"},
		{[]string{"PreferredAuthentications=password,publickey"}, "password publicKey"},
		{[]string{"PreferredAuthentications=keyboard-interactive"}, "keyboardInteractive"},
		{[]string{"PreferredAuthentications=gssapi-with-mic,hostbased,password,keyboard-interactive"}, "password keyboardInteractive"},
		{[]string{"PreferredAuthentications=password,password"}, "password"},
		{[]string{"KbdInteractiveAuthentication=no"}, "publicKey password"},
		{[]string{"ChallengeResponseAuthentication=no"}, "publicKey password"},
		{[]string{"PasswordAuthentication=no"}, "publicKey keyboardInteractive"},
		{[]string{"PubkeyAuthentication=no", "PreferredAuthentications=publickey,password"}, "password"},
		{[]string{"BatchMode=yes"}, "publicKey"},
		{[]string{"BatchMode=yes", "PreferredAuthentications=password"}, ""},
	} {
		got, err := methodNames(t, c.opts...)
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%q: %q, %v; want %q", c.opts, got, err, c.want)
		}
	}
	if _, err := methodNames(t, "PreferredAuthentications=gssapi-with-mic,hostbased"); err == nil || !strings.Contains(err.Error(), "names none of the methods rsftp has") {
		t.Errorf("a list without rsftp's methods: %v", err)
	}
	cfg := newSSHConfig()
	for _, bad := range []string{"KbdInteractiveAuthentication=maybe", "PreferredAuthentications=a b"} {
		if err := cfg.parseOption(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

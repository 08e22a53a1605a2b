package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// A server with ed25519, ECDSA and RSA host keys, and a known_hosts that
// holds only its ECDSA key: the tool offers the known type first, as ssh
// does, and gets in (issue 16; it used to fail with "no ED25519 key ...
// keys of other types are known for this host"). HostKeyAlgorithms, from
// -o or a config file, is applied: a list in full or with "^" is offered
// as given, and one with "+" or "-" is still ordered by known_hosts.
func TestE2EHostKeyAlgorithmsFromKnownHosts(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(key + ".pub")
	hkDir := t.TempDir()
	ecdsaKey := sshtest.KeyGen(t, hkDir, "ecdsa", 256)
	rsaKey := sshtest.KeyGen(t, hkDir, "rsa", 2048)
	sshd := sshtest.StartSshd(t, string(pub), "HostKey "+ecdsaKey, "HostKey "+rsaKey)
	ecPub, _ := os.ReadFile(ecdsaKey + ".pub")
	f := strings.Fields(string(ecPub))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", sshd.Port, f[0], f[1])), 0o600)
	remote := filepath.Join(dir, "remote.bin")
	want := e2eRandFile(t, remote, 100<<10)
	opts := append(e2eOpts(key, kh, sshd.Port), "-o", "User="+sshtest.User(t))
	get := func(t *testing.T, extra ...string) e2eResult {
		t.Helper()
		local := filepath.Join(t.TempDir(), "local.bin")
		args := append(append(append([]string{"get"}, opts...), extra...), "127.0.0.1:"+remote, local)
		r := e2eRun(t, args...)
		if r.code == 0 {
			if got, err := os.ReadFile(local); err != nil || string(got) != string(want) {
				t.Fatalf("downloaded file differs (%v)", err)
			}
		}
		return r
	}
	conf := filepath.Join(dir, "config")
	os.WriteFile(conf, []byte("Host *\n  HostKeyAlgorithms ssh-ed25519,rsa-sha2-512\n"), 0o600)

	for _, c := range []struct {
		name  string
		extra []string
		fail  string // in stderr if the connection must fail
	}{
		{"default", nil, ""},
		{"plus", []string{"-o", "HostKeyAlgorithms=+ssh-ed25519"}, ""},
		{"minus", []string{"-o", "HostKeyAlgorithms=-rsa-sha2-256"}, ""},
		// Without the ECDSA algorithm the server presents its ed25519 key.
		{"minus-ecdsa", []string{"-o", "HostKeyAlgorithms=-ecdsa-sha2-nistp256"}, "no ED25519 key"},
		{"full-list", []string{"-o", "HostKeyAlgorithms=ssh-ed25519,ecdsa-sha2-nistp256"}, "no ED25519 key"},
		{"caret", []string{"-o", "HostKeyAlgorithms=^rsa-sha2-512"}, "no RSA key"},
		{"full-list-known", []string{"-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256"}, ""},
		{"config-file", []string{"-F", conf}, "no ED25519 key"},
		{"unsupported", []string{"-o", "HostKeyAlgorithms=ssh-dss"}, "Bad SSH2 host key spec"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := get(t, c.extra...)
			switch {
			case c.fail == "" && r.code != 0:
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			case c.fail != "" && (r.code == 0 || !strings.Contains(r.stderr, c.fail)):
				t.Fatalf("exit %d, stderr %q; want a failure with %q", r.code, r.stderr, c.fail)
			}
		})
	}
}

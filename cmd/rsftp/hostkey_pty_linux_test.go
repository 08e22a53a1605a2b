package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// TestE2EHostKeyPromptAsksAgain: at the prompt for an unknown host key,
// typed on a terminal, an answer that is neither yes, no nor the
// fingerprint asks again, as ssh does ("Please type 'yes', 'no' or the
// fingerprint: "); the fingerprint then accepts and records the key, and
// "no" refuses in one line.
func TestE2EHostKeyPromptAsksAgain(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hi\n"), 0o644)
	port, kh := e2eServe(t, root, key+".pub")
	pub, err := os.ReadFile(filepath.Join(filepath.Dir(kh), "hk.pub"))
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, err := auth.ParsePublicKeyFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	fp := kex.FingerprintSHA256(hostKey)
	args := func(known string) []string {
		return []string{"ls", "-F", "none", "-o", "IdentityAgent=none", "-o", "UserKnownHostsFile=" + known,
			"-o", "GlobalKnownHostsFile=/dev/null", "-i", key, "-P", fmt.Sprint(port), "127.0.0.1:"}
	}

	known := filepath.Join(dir, "known_hosts")
	p := startPTY(t, dir, args(known)...)
	p.expect(fp)
	p.expect("Are you sure you want to continue connecting (yes/no/[fingerprint])? ")
	p.typeKeys("maybe\r")
	p.expect("Please type 'yes', 'no' or the fingerprint: ")
	p.typeKeys("SHA256:notit\r")
	p.expect("Please type 'yes', 'no' or the fingerprint: ")
	p.typeKeys(fp + "\r")
	p.expect("Permanently added")
	p.expect("hello.txt")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if b, _ := os.ReadFile(known); !strings.Contains(string(b), fmt.Sprintf("[127.0.0.1]:%d ", port)) {
		t.Errorf("known_hosts does not hold the accepted key: %q", b)
	}

	p = startPTY(t, dir, args(filepath.Join(dir, "known_hosts2"))...)
	p.expect("(yes/no/[fingerprint])? ")
	p.typeKeys("nope\r")
	p.expect("Please type 'yes', 'no' or the fingerprint: ")
	p.typeKeys("no\r")
	out := p.expect("Host key verification failed: the host key of [127.0.0.1]")
	if code := p.wait(); code != 1 {
		t.Errorf("refused: exit %d", code)
	}
	if strings.Contains(out, "hello.txt") {
		t.Error("listed the directory after the host key was refused")
	}
	if _, err := os.Stat(filepath.Join(dir, "known_hosts2")); err == nil {
		t.Error("a refused key was recorded")
	}
}

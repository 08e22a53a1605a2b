package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// TestE2EHelperAfterPrompt: a login that asked on the terminal (an
// identity file's passphrase) is not repeated silently. Under
// ResumeHelper=auto the command runs over plain SSH and says why; under
// ResumeHelper=yes it takes the helper, and a reconnection (SIGUSR2)
// asks the passphrase again, once, and resumes.
func TestE2EHelperAfterPrompt(t *testing.T) {
	r := newHelperRig(t)
	// A key with a passphrase, in sshd's authorized_keys beside the
	// rig's.
	kdir := filepath.Join(r.dir, "enc")
	os.Mkdir(kdir, 0o700)
	key := filepath.Join(kdir, "id")
	if out, err := exec.Command(sshtest.Binary(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "sesame", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	ak := filepath.Join(r.sshd.Dir, "authorized_keys")
	f, err := os.OpenFile(ak, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(pub)
	f.Close()
	want := e2eRandFile(t, filepath.Join(r.remote, "f"), 64<<20)
	args := func(mode, local string, extra ...string) []string {
		a := []string{"get", "-F", "none", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + r.kh,
			"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i", key, "-P", strconv.Itoa(r.sshd.Port),
			"-o", "User=" + sshtest.User(t), "-o", "ResumeHelper=" + mode}
		return append(append(a, extra...), "127.0.0.1:"+filepath.Join(r.remote, "f"), local)
	}

	local := filepath.Join(r.dir, "auto")
	p := startPTY(t, r.dir, args("auto", local, "-v")...)
	p.expect("Enter passphrase")
	p.typeKeys("sesame\r")
	// Said with -v only (a note for every password login otherwise).
	p.expect("the login asked on the terminal")
	if code := p.wait(); code != 0 {
		t.Fatalf("auto: exit %d\n%s", code, p.all())
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, want) {
		t.Fatal("auto: the file differs")
	}

	local = filepath.Join(r.dir, "yes")
	events := filepath.Join(r.dir, "events")
	p = startPTY(t, r.dir, args("yes", local, "-q", "-l", "40000", "--events", events)...)
	p.expect("Enter passphrase")
	p.typeKeys("sesame\r")
	if !waitSize(local, 4<<20, 60*time.Second) {
		t.Fatalf("yes: the transfer did not start:\n%s", p.all())
	}
	signalReconnect(p.cmd.Process)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.all(), "Enter passphrase") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(p.all(), "Enter passphrase"); n != 2 {
		t.Fatalf("yes: the passphrase was asked %d times, want once more for the reconnection:\n%s", n, p.all())
	}
	p.typeKeys("sesame\r")
	if !waitResumed(events, 1, 30*time.Second) {
		t.Fatalf("yes: no resumption after the passphrase:\n%s", p.all())
	}
	if code := p.wait(); code != 0 {
		t.Fatalf("yes: exit %d\n%s", code, p.all())
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, want) {
		t.Fatal("yes: the file differs")
	}
}

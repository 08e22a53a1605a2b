package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// TestKnownHostsFilesWithBlanks: UserKnownHostsFile, GlobalKnownHostsFile
// and RevokedHostKeys take each (quoted) argument as one file, blanks
// and all, with ~ and tokens expanded in each, from a file and from -o.
func TestKnownHostsFilesWithBlanks(t *testing.T) {
	hc, err := resolveIn(t, `
Host web
  UserKnownHostsFile "~/my hosts/kh" ~/plain "/abs/%h hosts"
  GlobalKnownHostsFile "/etc/global hosts" /etc/other
  RevokedHostKeys "~/revoked keys"
`, lookupRequest{hostArg: "web"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	home := hc.env.home
	for _, c := range []struct {
		key  string
		want []string
	}{
		{"userknownhostsfile", []string{home + "/my hosts/kh", home + "/plain", "/abs/web hosts"}},
		{"globalknownhostsfile", []string{"/etc/global hosts", "/etc/other"}},
		{"revokedhostkeys", []string{home + "/revoked keys"}},
	} {
		if got := hc.cfg.all(c.key); !slices.Equal(got, c.want) {
			t.Errorf("%s %q, want %q", c.key, got, c.want)
		}
	}
	files, user := knownHostsFiles(hc.cfg)
	if want := []string{home + "/my hosts/kh", home + "/plain", "/abs/web hosts", "/etc/global hosts", "/etc/other"}; !slices.Equal(files, want) || user != 3 {
		t.Errorf("knownHostsFiles %q (%d the user's)", files, user)
	}

	// -o, whose value is split as a line of the file is.
	hc, err = resolveIn(t, "", lookupRequest{hostArg: "web", options: []string{`UserKnownHostsFile="/a b/kh" /c`}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hc.cfg.all("userknownhostsfile"); !slices.Equal(got, []string{"/a b/kh", "/c"}) {
		t.Errorf("-o: %q", got)
	}
	// The first line wins, as for every keyword.
	hc, err = resolveIn(t, "Host *\n  UserKnownHostsFile /first\n  UserKnownHostsFile /second\n", lookupRequest{hostArg: "web"}, nil)
	if err != nil || !slices.Equal(hc.cfg.all("userknownhostsfile"), []string{"/first"}) {
		t.Errorf("first value: %q, %v", hc.cfg.all("userknownhostsfile"), err)
	}
}

// TestE2EKnownHostsFileWithBlanks: a known_hosts file in a directory
// whose name has a blank, named with quotes, is the one read.
func TestE2EKnownHostsFileWithBlanks(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	port, kh := e2eServe(t, root, key+".pub")
	spaced := filepath.Join(dir, "my hosts", "known hosts")
	os.Mkdir(filepath.Dir(spaced), 0o700)
	b, _ := os.ReadFile(kh)
	os.WriteFile(spaced, b, 0o600)
	r := e2eRun(t, "ls", "-F", "none", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", fmt.Sprintf("UserKnownHostsFile=%q", spaced), "-i", key, "-P", fmt.Sprint(port), "127.0.0.1:")
	if r.code != 0 || !strings.Contains(r.stdout, "f") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOptionBundling(t *testing.T) {
	f, rest, err := parseFlags([]string{"-rp", "-P22", "-o", "User=bob", "-oPort=23", "-i", "k1", "-ik2", "src", "-q", "dst"}, "PicFoqprav")
	if err != nil {
		t.Fatal(err)
	}
	if !f.recursive || !f.preserve || f.port != "22" || f.quiet {
		t.Fatalf("flags %+v", f)
	}
	if !slices.Equal(f.options, []string{"User=bob", "Port=23"}) || !slices.Equal(f.identities, []string{"k1", "k2"}) {
		t.Fatalf("options %v identities %v", f.options, f.identities)
	}
	// Parsing stops at the first operand, as in OpenSSH.
	if !slices.Equal(rest, []string{"src", "-q", "dst"}) {
		t.Fatalf("rest %v", rest)
	}
	if _, _, err := parseFlags([]string{"-Z"}, "PicFoqprav"); err == nil {
		t.Fatal("unknown flag accepted")
	}
	if _, _, err := parseFlags([]string{"-P"}, "PicFoqprav"); err == nil {
		t.Fatal("missing value accepted")
	}
	if _, rest, _ := parseFlags([]string{"--", "-r"}, "PicFoqprav"); !slices.Equal(rest, []string{"-r"}) {
		t.Fatalf("-- not honoured: %v", rest)
	}
}

func TestRemoteSpec(t *testing.T) {
	for _, c := range []struct {
		in               string
		user, host, path string
		ok               bool
	}{
		{"host:/a/b", "", "host", "/a/b", true},
		{"bob@host:x", "bob", "host", "x", true},
		{"bob@[::1]:p", "bob", "::1", "p", true},
		{"[fe80::1]:", "", "fe80::1", "", true},
		{"host:", "", "host", "", true},
		{"./a:b", "", "", "", false},
		{"/abs/path", "", "", "", false},
		{"plain", "", "", "", false},
		{":x", "", "", "", false},
	} {
		r, ok := parseRemote(c.in)
		if ok != c.ok || (ok && (r.user != c.user || r.host != c.host || r.path != c.path)) {
			t.Errorf("parseRemote(%q) = %+v %v", c.in, r, ok)
		}
	}
}

func TestConfigBlocks(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "extra.conf")
	os.WriteFile(inc, []byte("Host inc-*\n  User included\n"), 0o600)
	cfgPath := filepath.Join(dir, "config")
	os.WriteFile(cfgPath, []byte(`# comment
Include `+inc+`
Host web !web-private
  HostName 198.18.0.10
  Port 2201
  IdentityFile ~/.ssh/web_key
Host *
  User everyone
  IdentityFile ~/.ssh/default_key
  Port 22
`), 0o600)

	c := newSSHConfig()
	if err := c.parseOption("Port=2999"); err != nil {
		t.Fatal(err)
	}
	if err := readOne(t, c, cfgPath, "web"); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.get("hostname"); v != "198.18.0.10" {
		t.Errorf("hostname %q", v)
	}
	if v, _ := c.get("port"); v != "2999" {
		t.Errorf("-o must win over the file: port %q", v)
	}
	if v, _ := c.get("user"); v != "everyone" {
		t.Errorf("user %q", v)
	}
	if ids := c.all("identityfile"); len(ids) != 2 || !strings.HasSuffix(ids[0], "web_key") {
		t.Errorf("identity files accumulate in order: %v", ids)
	}

	// Negation excludes a host that a later pattern would match.
	c2 := newSSHConfig()
	readOne(t, c2, cfgPath, "web-private")
	if _, ok := c2.get("hostname"); ok {
		t.Error("negated host matched")
	}
	c3 := newSSHConfig()
	readOne(t, c3, cfgPath, "inc-1")
	if v, _ := c3.get("user"); v != "included" {
		t.Errorf("Include: user %q", v)
	}

	// A misspelt keyword is an error naming file and line; a valid one
	// rsftp does not implement is a warning.
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("Host *\n  Portt 22\n"), 0o600)
	if err := readOne(t, newSSHConfig(), bad, "x"); err == nil || !strings.Contains(err.Error(), "bad line 2") || !strings.Contains(err.Error(), "Bad configuration option") {
		t.Errorf("misspelt keyword: %v", err)
	}
	c4 := newSSHConfig()
	if err := c4.parseOption("ControlMaster auto"); err != nil || len(c4.warnings) != 1 {
		t.Errorf("unsupported keyword: %v %v", err, c4.warnings)
	}
	if err := newSSHConfig().parseOption("Port=notanumber"); err == nil {
		t.Error("invalid port accepted")
	}
}

// testEnv is a configEnv that reads nothing of the machine: home, ~/.ssh
// and /etc/ssh are dir, Match exec runs no command (a command is true if
// it says "true"), names do not resolve.
func testEnv(dir string) *configEnv {
	return &configEnv{
		home: dir, userDir: dir, systemDir: dir, localUser: "tester", uid: "1000", thisHost: "here.example",
		exec:   func(cmd string) (bool, error) { return strings.Contains(cmd, "true"), nil },
		getenv: func(string) (string, bool) { return "", false },
	}
}

// readOne reads one file for host, a first pass.
func readOne(t *testing.T, c *sshConfig, path, host string) error {
	return c.readFile(path, &pass{env: testEnv(filepath.Dir(path)), hostArg: host, host: host}, true, true, false)
}

// TestConfigRefusesUnsafeIgnores: a keyword whose omission would send
// the connection elsewhere or check the host less than asked is an error,
// not a warning.
func TestConfigRefusesUnsafeIgnores(t *testing.T) {
	for _, opt := range []string{"KnownHostsCommand /bin/true",
		"BindInterface eth0", "ProxyUseFDPass yes", "RequiredRSASize 3072"} {
		c := newSSHConfig()
		if err := c.parseOption(opt); err == nil || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("%s: err %v, warnings %v", opt, err, c.warnings)
		}
	}
	for _, opt := range []string{"RevokedHostKeys none", "KnownHostsCommand none", "ProxyUseFDPass no", "RequiredRSASize 1024"} {
		if err := newSSHConfig().parseOption(opt); err != nil {
			t.Errorf("%s: %v", opt, err)
		}
	}
	// An unknown Match criterion is an error, as in ssh.
	dir := t.TempDir()
	p := filepath.Join(dir, "config")
	os.WriteFile(p, []byte("Match nosuchthing x\n  ProxyJump bastion\n"), 0o600)
	if err := readOne(t, newSSHConfig(), p, "x"); err == nil || !strings.Contains(err.Error(), "Unsupported Match attribute") {
		t.Errorf("unknown Match criterion: %v", err)
	}
}

func TestAlgorithmSpec(t *testing.T) {
	def := []string{"a", "b", "c"}
	for _, c := range []struct {
		spec string
		want []string
	}{
		{"b", []string{"b"}}, {"+c", def}, {"-b", []string{"a", "c"}}, {"^c", []string{"c", "a", "b"}},
		{"-?", nil}, {"-z,a", []string{"b", "c"}}, {"c,a*", []string{"c", "a"}},
	} {
		got, err := algorithmList(c.spec, def, "cipher")
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %v %v", c.spec, got, err)
		}
	}
	if _, err := algorithmList("z", def, "cipher"); err == nil {
		t.Error("unknown algorithm accepted")
	}
}

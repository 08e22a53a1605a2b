package main

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// resolveIn resolves host with config text in a hermetic environment
// (testEnv: no command runs, nothing resolves unless lookup is given).
func resolveIn(t *testing.T, config string, req lookupRequest, tweak func(*configEnv)) (*hostConfig, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := testEnv(dir)
	if tweak != nil {
		tweak(env)
	}
	req.configFile = path
	return resolveHost(req, env)
}

func TestConfigTokens(t *testing.T) {
	hc, err := resolveIn(t, `
Host web
  HostName %h.example
  User alice
  Port 2200
  ProxyJump jump1,bob@jump2:2022
  IdentityFile ~/keys/%h-%r-%p-%u-%n-%d-%i-%l-%L-%k-%j-%%
  IdentityFile ${KEYDIR}/k
  UserKnownHostsFile %d/kh/%C
  IdentityAgent ~/agent.%h
`, lookupRequest{hostArg: "web"}, func(e *configEnv) {
		e.getenv = func(k string) (string, bool) { return "/env/" + k, k == "KEYDIR" }
	})
	if err != nil {
		t.Fatal(err)
	}
	home := hc.env.home
	ids := hc.cfg.all("identityfile")
	want := home + "/keys/web.example-alice-2200-tester-web-" + home + "-1000-here.example-here-web-jump2-%"
	if len(ids) != 2 || ids[0] != want || ids[1] != "/env/KEYDIR/k" {
		t.Errorf("identity files %q, want %q and /env/KEYDIR/k", ids, want)
	}
	sum := sha1.Sum([]byte("here.example" + "web.example" + "2200" + "alice" + "jump2"))
	if kh := hc.cfg.getDefault("userknownhostsfile", ""); kh != home+"/kh/"+hex.EncodeToString(sum[:]) {
		t.Errorf("UserKnownHostsFile %q (%%C is SHA-1 of %%l%%h%%p%%r%%j)", kh)
	}
	if a := hc.cfg.getDefault("identityagent", ""); a != home+"/agent.web.example" {
		t.Errorf("IdentityAgent %q", a)
	}
	if !slices.Equal(hc.identityFiles, []string{"~/keys/%h-%r-%p-%u-%n-%d-%i-%l-%L-%k-%j-%%", "${KEYDIR}/k"}) {
		t.Errorf("identity files as written: %q", hc.identityFiles)
	}

	// An unknown token, a lone % or an unset variable is an error.
	for _, bad := range []string{"IdentityFile ~/%z", "IdentityFile ~/50%", "UserKnownHostsFile ${NOPE}/kh", "HostName %r.example"} {
		if _, err := resolveIn(t, bad+"\n", lookupRequest{hostArg: "x"}, nil); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	// ProxyCommand takes %h %n %p %r (and %k), not the others.
	rt := func(pc string) (*route, error) {
		hc, err := resolveIn(t, "Host x\n  HostName real\n  ProxyCommand "+pc+"\n", lookupRequest{hostArg: "x", user: "u"}, nil)
		if err != nil {
			return nil, err
		}
		return newRoute(t.Context(), hc, &logger{}, 0)
	}
	if r, err := rt("nc %h %p %n %r %k %%"); err != nil || r.command != "nc real 22 x u x %" {
		t.Errorf("ProxyCommand expansion: %+v %v", r, err)
	}
	if _, err := rt("nc %u %h"); err == nil {
		t.Error("ProxyCommand took %u")
	}
}

func TestConfigMatchCriteria(t *testing.T) {
	cfg := `
Match tagged prod
  Port 1
Match localnetwork 192.0.2.0/24
  User onnet
Match version OpenSSH_*
  IdentityFile /for-openssh
Match command sftp sessiontype subsystem
  IdentityFile /for-sftp
Match host=web
  Port 2
Match exec "true %h"
  IdentityFile /exec-true
Match exec "false" exec "true"
  IdentityFile /never
`
	hc, err := resolveIn(t, cfg, lookupRequest{hostArg: "web", options: []string{"Tag prod"}}, func(e *configEnv) {
		e.addrs = func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, nil }
	})
	if err != nil {
		t.Fatal(err)
	}
	if hc.port != 1 || hc.user != "onnet" {
		t.Errorf("port %d user %q", hc.port, hc.user)
	}
	if got := hc.cfg.all("identityfile"); !slices.Equal(got, []string{"/for-sftp", "/exec-true"}) {
		t.Errorf("identity files %q", got)
	}
	for _, bad := range []string{"Match", "Match all host x", "Match host", "Match exec", "Match bogus x", "Match localnetwork nonsense"} {
		if _, err := resolveIn(t, bad+"\n  Port 3\n", lookupRequest{hostArg: "x"}, nil); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	// A Match exec after a failed criterion does not run; in an Include
	// of an inactive block none runs.
	var ran []string
	_, err = resolveIn(t, "Match host other exec \"a\"\nMatch host x exec \"b\"\nHost other\n  Include inc\n", lookupRequest{hostArg: "x"}, func(e *configEnv) {
		e.exec = func(cmd string) (bool, error) { ran = append(ran, cmd); return true, nil }
		os.WriteFile(filepath.Join(e.userDir, "inc"), []byte("Match exec \"c\"\n"), 0o600)
	})
	if err != nil || !slices.Equal(ran, []string{"b"}) {
		t.Errorf("commands run: %q (%v)", ran, err)
	}
	// A command that cannot tell (killed) is an error.
	_, err = resolveIn(t, "Match exec boom\n", lookupRequest{hostArg: "x"}, func(e *configEnv) {
		e.exec = func(string) (bool, error) { return false, errors.New("signal: killed") }
	})
	if err == nil {
		t.Error("a failing Match exec passed")
	}
}

func TestConfigCanonicalize(t *testing.T) {
	names := map[string]string{"db.corp.example.": "db.corp.example.", "web.corp.example.": "lb-7.cdn.example."}
	lookup := func(e *configEnv) {
		e.lookup = func(n string) (string, error) {
			if c, ok := names[n]; ok {
				return c, nil
			}
			return "", errors.New("no such host")
		}
	}
	cfg := `
CanonicalizeHostname yes
CanonicalDomains other.example corp.example
CanonicalizePermittedCNAMEs *.corp.example:*.cdn.example
Host db.corp.example
  User dbadmin
Host lb-7.cdn.example
  Port 2222
Match canonical host *.corp.example
  IdentityFile /corp
Host db
  IdentityFile /first
`
	hc, err := resolveIn(t, cfg, lookupRequest{hostArg: "db"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	// "Host db" applies in the first pass only, the canonical name's
	// blocks in the final one.
	if hc.hostname != "db.corp.example" || hc.user != "dbadmin" || !slices.Equal(hc.cfg.all("identityfile"), []string{"/first", "/corp"}) {
		t.Errorf("db: hostname %q user %q ids %q", hc.hostname, hc.user, hc.cfg.all("identityfile"))
	}
	hc, err = resolveIn(t, cfg, lookupRequest{hostArg: "web"}, lookup)
	if err != nil || hc.hostname != "lb-7.cdn.example" || hc.port != 2222 {
		t.Errorf("web (CNAME followed): %+v %v", hc, err)
	}
	// More dots than CanonicalizeMaxDots: not canonicalized.
	if hc, err := resolveIn(t, cfg, lookupRequest{hostArg: "a.b.c"}, lookup); err != nil || hc.hostname != "a.b.c" {
		t.Errorf("a.b.c: %v %v", hc, err)
	}
	// Not found: kept, unless CanonicalizeFallbackLocal no.
	if hc, err := resolveIn(t, cfg, lookupRequest{hostArg: "nowhere"}, lookup); err != nil || hc.hostname != "nowhere" {
		t.Errorf("nowhere: %v %v", hc, err)
	}
	if _, err := resolveIn(t, "CanonicalizeFallbackLocal no\n"+cfg, lookupRequest{hostArg: "nowhere"}, lookup); err == nil {
		t.Error("CanonicalizeFallbackLocal no: an unresolved name passed")
	}
	// Proxied connections are canonicalized only with "always".
	if hc, err := resolveIn(t, cfg, lookupRequest{hostArg: "db", jump: "bastion"}, lookup); err != nil || hc.hostname != "db" {
		t.Errorf("db through a jump host: %v %v", hc, err)
	}
	if hc, err := resolveIn(t, strings.Replace(cfg, "yes", "always", 1), lookupRequest{hostArg: "db", jump: "bastion"}, lookup); err != nil || hc.hostname != "db.corp.example" {
		t.Errorf("db through a jump host, always: %v %v", hc, err)
	}
}

func TestConfigIncludeAndPermissions(t *testing.T) {
	dir := t.TempDir()
	env := testEnv(dir)
	env.checkPerm = checkConfigPerm
	// A relative Include of a user file is under ~/.ssh (env.userDir).
	os.WriteFile(filepath.Join(dir, "conf.d-a"), []byte("Port 2001\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "config"), []byte("Host x\n  Include conf.d-*\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "conf.d-dir"), 0o755) // matched by the glob: no lines
	env.userDir = dir
	hc, err := resolveHost(lookupRequest{hostArg: "x"}, env)
	if err != nil || hc.port != 2001 {
		t.Fatalf("relative Include: %v %v", hc, err)
	}
	// An included file others may write is refused: it could run
	// commands.
	os.Chmod(filepath.Join(dir, "conf.d-a"), 0o666)
	if _, err := resolveHost(lookupRequest{hostArg: "x"}, env); err == nil || !strings.Contains(err.Error(), "Bad owner or permissions") {
		t.Errorf("world-writable include: %v", err)
	}
	// An Include in an inactive block is still checked for misspelt
	// keywords.
	os.Chmod(filepath.Join(dir, "conf.d-a"), 0o600)
	os.WriteFile(filepath.Join(dir, "conf.d-a"), []byte("Portt 2001\n"), 0o600)
	if _, err := resolveHost(lookupRequest{hostArg: "y"}, env); err == nil {
		t.Error("misspelt keyword in an Include of an inactive block passed")
	}
}

func TestJumpSpecs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []jumpHop
	}{
		{"h", []jumpHop{{host: "h"}}},
		{"u@h:2", []jumpHop{{"u", "h", "2"}}},
		{"a,u@b:3", []jumpHop{{host: "a"}, {"u", "b", "3"}}},
		{"[::1]:22,u@[fe80::1]", []jumpHop{{host: "::1", port: "22"}, {user: "u", host: "fe80::1"}}},
		{"ssh://u@h:2022", []jumpHop{{"u", "h", "2022"}}},
		{"a@b@c", []jumpHop{{"a@b", "c", ""}}},
	} {
		got, err := parseJumpList(c.in, false)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %+v %v", c.in, got, err)
		}
	}
	for _, bad := range []string{"", "u@", "@h", "h:0", "h:x", "a,,b", "[::1"} {
		if _, err := parseJumpList(bad, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// -J refuses what would be unsafe in a shell, as ssh does.
	if _, err := parseJumpList("h;rm -rf", true); err == nil {
		t.Error("-J with shell characters accepted")
	}
	if _, err := resolveIn(t, "", lookupRequest{hostArg: "a;b"}, nil); err == nil {
		t.Error("destination with ; accepted")
	}
	// -J and -o ProxyCommand together are an error, as in ssh.
	if _, err := resolveIn(t, "", lookupRequest{hostArg: "x", jump: "j", options: []string{"ProxyCommand nc %h %p"}}, nil); err == nil {
		t.Error("-J with ProxyCommand accepted")
	}
}

// TestJumpRouteShape: the hops of -J or ProxyJump are visited in order;
// the first hop's own ProxyJump (or ProxyCommand) applies, as with ssh's
// chain of ssh -W, while a later hop's does not (the list says how to
// reach it); each hop takes the user and port the list gives, else its
// own configuration's. A loop of ProxyJumps is an error, not a hang.
func TestJumpRouteShape(t *testing.T) {
	cfg := `
Host j0
  HostName 10.0.0.0
Host j1
  HostName 10.0.0.1
  ProxyJump j0
Host j2
  HostName 10.0.0.2
  User j2user
  Port 2202
  ProxyJump nowhere
Host target
  HostName 10.0.0.9
  ProxyJump j1,bob@j2
Host pc
  HostName 10.0.0.8
  ProxyJump viacmd
Host viacmd
  ProxyCommand nc %h %p
Host loop-a
  ProxyJump loop-b
Host loop-b
  ProxyJump loop-a
Host *
  IdentityAgent none
  IdentityFile /nonexistent
`
	route := func(host string) (*route, error) {
		hc, err := resolveIn(t, cfg, lookupRequest{hostArg: host}, nil)
		if err != nil {
			return nil, err
		}
		return newRoute(t.Context(), hc, &logger{}, 0)
	}
	r, err := route("target")
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for x := r; x != nil && x.hop != nil; x = x.hop {
		path = append(path, x.hopName+"="+x.hopCfg.User+"@"+x.hopAddr)
	}
	if want := []string{"bob@j2=bob@10.0.0.2:2202", "j1=tester@10.0.0.1:22", "j0=tester@10.0.0.0:22"}; !slices.Equal(path, want) {
		t.Errorf("route to target: %q, want %q", path, want)
	}
	if r.describe() == "" {
		t.Error("no description of the route")
	}
	// The first hop's own ProxyCommand applies too.
	r, err = route("pc")
	if err != nil || r.hop == nil {
		t.Fatalf("pc: %+v %v", r, err)
	}
	if r.hop.command != "nc viacmd 22" {
		t.Errorf("ProxyCommand of the jump host: %q (its own %%h)", r.hop.command)
	}
	if _, err := route("loop-a"); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("ProxyJump loop: %v", err)
	}
}

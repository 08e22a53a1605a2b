package main

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// sshG runs ssh -G -F config args... and returns its keywords' values
// (a keyword given several times, as identityfile, has several).
func sshG(t *testing.T, ssh, config string, args ...string) map[string][]string {
	t.Helper()
	out, err := exec.Command(ssh, append([]string{"-G", "-F", config}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ssh -G %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("ssh -G %v: %v", args, err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok {
			m[k] = append(m[k], v)
		}
	}
	return m
}

// sshGEnv is the machine's configEnv as ssh sees it: ssh takes ~ and %d
// from the password database, not $HOME; names under .invalid never
// resolve (RFC 6761), so canonicalization looks nothing up.
func sshGEnv(t *testing.T) *configEnv {
	env := realEnv()
	if u, err := user.Current(); err == nil {
		env.home = u.HomeDir
		env.userDir = filepath.Join(u.HomeDir, ".ssh")
	}
	env.lookup = func(name string) (string, error) { return "", errors.New("no such host") }
	return env
}

// TestConfigAgainstSSHG resolves configurations with Host, Match (host,
// originalhost, user, localuser, exec true and false, negation, all,
// canonical, final), HostName with %h, first-value-wins ProxyJump and
// ProxyCommand, -J, user@host and %-tokens, and compares what rsftp
// resolves with what OpenSSH's ssh -G prints for the same file and
// destination: hostname, user, port, identityfile (as written),
// proxyjump, proxycommand, userknownhostsfile (expanded).
func TestConfigAgainstSSHG(t *testing.T) {
	ssh := sshtest.Binary(t, "ssh")
	dir := t.TempDir()
	me := localUser()
	inc := filepath.Join(dir, "included.conf")
	os.WriteFile(inc, []byte("Host inc-*\n  User included\n  Port 2022\nMatch originalhost inc-b\n  IdentityFile ~/.ssh/inc_b\n"), 0o600)
	cases := []struct {
		name   string
		config string
		args   []string // ssh's destination and options: [-J x] [user@]host
		jump   string
	}{
		{"host-hostname-tokens", `
Host web
  HostName %h.internal.invalid
  Port 2201
  IdentityFile ~/.ssh/id_%h_%r_%p
  IdentityFile %d/keys/%u-%n
  UserKnownHostsFile ~/kh/%h:%p %d/kh2/%C %d/%l/%L/%i/%k/%n/%r/%u/%%
Host *
  User everyone
`, []string{"web"}, ""},
		{"host-negation", `
Host web-* !web-private
  Port 1
Host *
  Port 2
`, []string{"web-private"}, ""},
		{"host-case", `
Host alias
  Port 1
Host ALIAS
  Port 2
`, []string{"ALIAS"}, ""},
		{"match-host-after-hostname", `
Host short
  HostName Long.Example.Invalid
Match host long.example.invalid
  Port 2200
Match host *.invalid user ` + me + `
  User matched-by-localname
`, []string{"short"}, ""},
		{"match-user-from-command-line", `
Match user bob
  Port 2300
Match user !bob,*
  Port 2301
`, []string{"bob@x"}, ""},
		{"match-originalhost-list-negation", `
Host a1
  HostName b1
Match originalhost a*,!a2 !host b2
  User orig
Match !originalhost a1
  Port 9
`, []string{"a1"}, ""},
		{"match-exec", `
Match exec "test %h = web.invalid" host web.invalid
  User exec-true
Match exec false
  Port 1
Match exec true
  Port 3
Match !exec "exit 1"
  IdentityFile /negated-exec
Match host nomatch exec "touch ` + filepath.Join(dir, "must-not-run") + `"
  Port 4
`, []string{"web.invalid"}, ""},
		{"match-localuser-all", `
Match localuser ` + me + `,nobody-else
  IdentityFile /local/%u
Match !all
  Port 5
Match all
  Port 6
`, []string{"h"}, ""},
		{"match-final", `
Host alias
  HostName real.invalid
Host real.invalid
  Port 2022
Match final host real.invalid
  User final-user
Match canonical
  IdentityFile /canonical
`, []string{"alias"}, ""},
		{"canonicalize-fallback", `
CanonicalizeHostname yes
CanonicalDomains example.invalid
Host short
  IdentityFile /first-pass
Host SHORT
  Port 11
Host short
  Port 12
`, []string{"SHORT"}, ""},
		{"proxyjump-first-wins", `
Host t
  ProxyJump bob@bastion.invalid:2222,second.invalid
  ProxyCommand nc %h %p
Host *
  ProxyJump other
`, []string{"t"}, ""},
		{"proxycommand-first-wins", `
Host t
  ProxyCommand ssh -W %h:%p gw.invalid
Host *
  ProxyJump other
`, []string{"t"}, ""},
		{"proxycommand-none-blocks-jump", `
Host t
  ProxyCommand none
Host *
  ProxyJump other
`, []string{"t"}, ""},
		{"proxyjump-none-then-command", `
Host t
  ProxyJump none
Host *
  ProxyCommand nc %h %p
  ProxyJump other
`, []string{"t"}, ""},
		{"dash-J-overrides", `
Host t
  ProxyCommand nc %h %p
  ProxyJump other
`, []string{"-J", "a@b.invalid:3,c.invalid", "t"}, "a@b.invalid:3,c.invalid"},
		{"include", `
Include ` + inc + `
Host *
  User fallback
`, []string{"inc-b"}, ""},
		{"quotes-and-equals", `
Host="q1" q2
  HostName = "quoted.invalid"
  IdentityFile "/path with space/key"
  User="some user" # a comment
`, []string{"q2"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".conf")
			if err := os.WriteFile(path, []byte(c.config), 0o600); err != nil {
				t.Fatal(err)
			}
			args := c.args
			want := sshG(t, ssh, path, args...)
			dest := args[len(args)-1]
			req := lookupRequest{hostArg: dest, configFile: path, jump: c.jump}
			if u, h, ok := strings.Cut(dest, "@"); ok {
				req.user, req.hostArg = u, h
			}
			hc, err := resolveHost(req, sshGEnv(t))
			if err != nil {
				t.Fatalf("resolveHost: %v", err)
			}
			check := func(k string, got []string) {
				t.Helper()
				if !slices.Equal(got, want[k]) {
					t.Errorf("%s: rsftp %q, ssh -G %q", k, got, want[k])
				}
			}
			check("hostname", []string{hc.hostname})
			check("user", []string{hc.user})
			check("port", []string{strconv.Itoa(hc.port)})
			if len(hc.identityFiles) > 0 {
				check("identityfile", hc.identityFiles)
			}
			var pj, pc []string
			if hc.jump != "" {
				pj = []string{hc.jump}
			}
			if hc.proxyCommand != "" {
				pc = []string{hc.proxyCommand}
			}
			check("proxyjump", pj)
			check("proxycommand", pc)
			kh := strings.Join(hc.cfg.all("userknownhostsfile"), " ") // as ssh -G prints the list
			if kh == "" {
				kh = filepath.Join(hc.env.home, ".ssh/known_hosts") + " " + filepath.Join(hc.env.home, ".ssh/known_hosts2")
			}
			check("userknownhostsfile", []string{kh})
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "must-not-run")); err == nil {
		t.Error("a Match exec ran after an earlier criterion of its line failed")
	}
}

package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestE2EHelp: -h and --help of every command print its usage on stdout
// and exit 0; --version prints the version.
func TestE2EHelp(t *testing.T) {
	for _, cmd := range []string{"get", "put", "ls", "cp", "sftp", "serve", "demo"} {
		for _, h := range []string{"-h", "--help"} {
			r := e2eRun(t, cmd, h)
			if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: rsftp "+cmd) {
				t.Errorf("rsftp %s %s: exit %d, stderr %q, stdout %.80q", cmd, h, r.code, r.stderr, r.stdout)
			}
		}
	}
	// -h after other options, and ls's -h (sizes) with an operand.
	if r := e2eRun(t, "get", "-r", "-P", "22", "-h"); r.code != 0 || !strings.HasPrefix(r.stdout, "usage: rsftp get") {
		t.Errorf("get -r -P 22 -h: exit %d %q", r.code, r.stderr)
	}
	if r := e2eRun(t, "ls", "-lh", "-P", "1", "-o", "BatchMode=yes", "-F", "none", "127.0.0.1:"); r.code == 0 || strings.Contains(r.stdout, "usage") {
		t.Errorf("ls -lh host: took -h for help: exit %d %q", r.code, r.stdout)
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		if r := e2eRun(t, args...); r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "rsftp serve") {
			t.Errorf("rsftp %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := e2eRun(t, args...)
		if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "rsftp ") || !strings.Contains(r.stdout, "go1.") || strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("rsftp %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestE2EOptionErrors: a bad option value is a usage error (exit 2) on one
// line naming the option, before anything connects.
func TestE2EOptionErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "-P", "x", "127.0.0.1:f", "."}, `Bad port "x"`},
		{[]string{"get", "-P0", "127.0.0.1:f", "."}, `Bad port "0"`},
		{[]string{"get", "-P", "70000", "127.0.0.1:f", "."}, `Bad port "70000"`},
		{[]string{"get", "-P", "127.0.0.1:f", "."}, "looks like the destination"},
		{[]string{"ls", "-P"}, "option -P needs a port number"},
		{[]string{"put", "f", "-P"}, `"-P" is not a remote path`}, // an operand ends the options
		{[]string{"cp", "-P", "x", "a", "h:b"}, `Bad port "x"`},
		{[]string{"sftp", "-P", "x", "h"}, `Bad port "x"`},
		{[]string{"ls", "-o", "Ciphrs=x", "h:"}, "Bad configuration option"},
		{[]string{"ls", "-o", "Port=x", "h:"}, `invalid port "x"`},
		{[]string{"ls", "-c", "des-cbc", "h:"}, `Unknown cipher "des-cbc"`},
		{[]string{"ls", "-J", "a:b:c", "h:"}, "invalid -J argument"},
		{[]string{"get", "-l", "fast", "h:f"}, `invalid limit "fast"`},
		{[]string{"cp", "-X", "buffer=0", "a", "h:b"}, "invalid buffer size"},
		{[]string{"cp", "-l"}, "option -l needs a limit in Kbit/s"},
		{[]string{"get", "-z", "h:f"}, "unknown option -- z"},
		{[]string{"serve", "--hold", "x"}, `invalid value "x" for --hold (a duration`},
		{[]string{"serve", "--nope"}, "unknown option --nope"},
		{[]string{"demo", "-cuts", "x"}, `invalid value "x" for -cuts (a whole number)`},
	} {
		r := e2eRun(t, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "-h prints the usage") {
			t.Errorf("rsftp %q: exit %d, stderr %q (want %q on one line, exit 2)", c.args, r.code, r.stderr, c.want)
		}
	}
	if r := e2eRun(t, "frobnicate"); r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d %q", r.code, r.stderr)
	}
}

func TestWantsHelp(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		args string
		want bool
	}{
		{"get", "-h", true},
		{"get", "-rh host:f", true},
		{"get", "--help", true},
		{"get", "-P h host:f", false}, // -P's value
		{"get", "-Ph host:f", false},
		{"get", "-lh host:f", false}, // -l's value
		{"get", "host:f -h", false},  // after the operands
		{"get", "-- -h", false},
		{"get", "--events h -r host:f", false},
		{"cp", "-Xh a b", false},
		{"ls", "-h", true},
		{"ls", "-lh", true},
		{"ls", "-lh host:", false},
		{"ls", "--help host:", true},
		{"ls", "-o h host:", false},
	} {
		if got := wantsHelp(c.cmd, strings.Fields(c.args)); got != c.want {
			t.Errorf("wantsHelp(%s %s) = %v", c.cmd, c.args, got)
		}
	}
}

func TestFlagError(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("hold", 0, "")
	fs.Int("n", 0, "")
	fs.Bool("json", false, "")
	fs.String("root", "", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--hold", "soon"}, `invalid value "soon" for --hold (a duration, such as 90s, 30m or 2h)`},
		{[]string{"-n=1.5"}, `invalid value "1.5" for --n (a whole number)`},
		{[]string{"--json=maybe"}, `invalid value "maybe" for --json (true or false)`},
		{[]string{"--root"}, "option --root needs a value"},
		{[]string{"--nope"}, "unknown option --nope"},
	} {
		err := fs.Parse(c.args)
		if got := flagError(err, fs, "--").Error(); got != c.want {
			t.Errorf("%q: %q, want %q", c.args, got, c.want)
		}
	}
	var out bytes.Buffer
	if _, err := parseDemoFlags([]string{"-h"}, &out); err != flag.ErrHelp || !strings.HasPrefix(out.String(), "usage: rsftp demo") {
		t.Errorf("demo -h: %v %q", err, out.String())
	}
}

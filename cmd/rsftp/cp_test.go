package main

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/sftp"
)

func TestParseURI(t *testing.T) {
	for _, c := range []struct {
		in               string
		user, host, path string
		port             string
		ok               bool
		bad              string // part of the error, if one
	}{
		{in: "sftp://host/file", host: "host", path: "file", ok: true},
		{in: "sftp://host//abs/path", host: "host", path: "/abs/path", ok: true},
		{in: "sftp://host", host: "host", ok: true},
		{in: "sftp://host/", host: "host", ok: true},
		{in: "scp://bob@host:2222/dir/f", user: "bob", host: "host", port: "2222", path: "dir/f", ok: true},
		{in: "sftp://b%40ob;fingerprint=SHA256:x@host:22/a%20b+c%2Bd", user: "b@ob", host: "host", port: "22", path: "a b c+d", ok: true},
		{in: "sftp://[::1]:2200/x", host: "::1", port: "2200", path: "x", ok: true},
		{in: "sftp://[fe80::1]/x", host: "fe80::1", path: "x", ok: true},
		{in: "sftp://host:/x", host: "host", path: "x", ok: true},
		{in: "sftp://@host/x", bad: "user name is empty"},
		{in: "sftp://host:0/x", bad: "invalid port"},
		{in: "sftp://host:99999/x", bad: "invalid port"},
		{in: "sftp://host:ab/x", bad: "invalid port"},
		{in: "sftp:///x", bad: "no host"},
		{in: "sftp://host/%zz", bad: "bad %-escape"},
		{in: "sftp://host/a%2", bad: "middle of a %-escape"},
		{in: "sftp://host/a%00b", bad: "NUL"},
		{in: "sftp://[::1/x", bad: "no ]"},
		{in: "ssh://host/x"},
		{in: "host:path"},
		{in: "./sftp://x"},
	} {
		spec, port, ok, err := parseURI(c.in)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("parseURI(%q): %v, want an error with %q", c.in, err, c.bad)
			}
			continue
		}
		if err != nil || ok != c.ok || spec.user != c.user || spec.host != c.host || spec.path != c.path || port != c.port {
			t.Errorf("parseURI(%q) = %+v port %q ok %v err %v", c.in, spec, port, ok, err)
		}
	}
	// Operands: URIs, scp's host:path, local paths.
	for in, remote := range map[string]bool{"sftp://h/x": true, "h:x": true, "./h:x": false, "/abs": false, "rel": false, "u@[::1]:p": true} {
		ep, err := parseEndpoint(in)
		if err != nil || ep.remote != remote {
			t.Errorf("parseEndpoint(%q) = %+v, %v", in, ep, err)
		}
	}
}

// TestSplitOptions: a command's own letters (with and without values)
// are set apart from the common ones, which reach parseFlags as they
// were meant, -J among them.
func TestSplitOptions(t *testing.T) {
	args := []string{"-rpl", "800", "-P22", "-3", "-oUser=bob", "-J", "jump", "-X", "nrequests=8", "--events", "ev.json", "-qv", "src", "-r", "dst"}
	common, opts, operands, err := splitOptions(args, cpLetters, cpValLetters)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"-r", "-p", "-P", "22", "-o", "User=bob", "-J", "jump", "--events", "ev.json", "-q", "-v"}; !slices.Equal(common, want) {
		t.Fatalf("common %q, want %q", common, want)
	}
	if want := []cmdOpt{{'l', "800"}, {'3', ""}, {'X', "nrequests=8"}}; !slices.Equal(opts, want) {
		t.Fatalf("own %+v", opts)
	}
	if !slices.Equal(operands, []string{"src", "-r", "dst"}) {
		t.Fatalf("operands %q", operands)
	}
	if _, _, _, err := splitOptions([]string{"-l"}, "", "l"); err == nil {
		t.Fatal("-l without a value accepted")
	}
	if c, _, ops, _ := splitOptions([]string{"--", "-r"}, "", ""); len(c) != 0 || !slices.Equal(ops, []string{"-r"}) {
		t.Fatalf("--: %q %q", c, ops)
	}
	// What parseFlags makes of the common ones.
	f, err := parseCommon(common, clientLetters)
	if err != nil {
		t.Fatal(err)
	}
	if !f.recursive || !f.preserve || f.port != "22" || !f.quiet || f.verbose != 1 || f.events != "ev.json" || !slices.Equal(f.options, []string{"User=bob"}) {
		t.Fatalf("flags %+v", f)
	}
}

// TestCopyOptions: scp's options that map to ssh options, those that
// are accepted as irrelevant, and those refused with a reason.
func TestCopyOptions(t *testing.T) {
	req, ops, err := readCopyOptions("cp", []string{"-346ABCsTr", "-l", "8", "-X", "buffer=16384", "a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ops, []string{"a", "b"}) || req.limit != 1024 || !req.follow || len(req.clientOpt) != 2 || !req.f.recursive {
		t.Fatalf("req %+v ops %q", req, ops)
	}
	if want := []string{"AddressFamily=inet", "AddressFamily=inet6", "BatchMode=yes", "Compression=yes"}; !slices.Equal(req.f.options, want) {
		t.Fatalf("ssh options %q", req.f.options)
	}
	for args, want := range map[string]string{
		"-O":             "legacy scp protocol",
		"-R":             "through this machine",
		"-S ssh":         "-S program is not supported",
		"-D /usr/sftp":   "-D sftp_server_path is not supported",
		"-l 0":           "invalid limit",
		"-l 104857601":   "invalid limit",
		"-l x":           "invalid limit",
		"-X foo=1":       "invalid -X option",
		"-X nrequests=0": "invalid number of requests",
		"-Z":             "unknown option -- Z",
	} {
		_, _, err := readCopyOptions("cp", append(strings.Fields(args), "a", "b"))
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), want) {
			t.Errorf("cp %s: %v, want a usage error with %q", args, err, want)
		}
	}
	// get and put: -l is the limit, scp's other letters are not theirs.
	if req, _, err := readCopyOptions("get", []string{"-l100", "-a", "h:x"}); err != nil || req.limit != 12800 || !req.f.resume || req.follow {
		t.Fatalf("get -l100 -a: %+v %v", req, err)
	}
	if _, _, err := readCopyOptions("put", []string{"-3", "x", "h:"}); err == nil {
		t.Fatal("put -3 accepted")
	}
}

func TestFailureText(t *testing.T) {
	pe := &fs.PathError{Op: "open", Path: "tree/secret", Err: fs.ErrPermission}
	for _, c := range []struct {
		fl   copyFailure
		want string
	}{
		{copyFailure{path: "tree/secret", err: pe}, "tree/secret: open: permission denied"},
		{copyFailure{path: "host:tree/secret", err: pe}, "host:tree/secret: open: permission denied"},
		{copyFailure{path: "a", err: errors.New("upload a: symbolic link loop")}, "upload a: symbolic link loop"},
		{copyFailure{path: "a\x1b", err: errors.New("boom")}, "a?: boom"},
	} {
		if got := failureText(c.fl); got != c.want {
			t.Errorf("failureText = %q, want %q", got, c.want)
		}
	}
}

// TestRateLimiter: with a clock that only sleeping moves, N bytes in any
// chunks take (N - burst) / rate seconds, and the wait honours its
// context.
func TestRateLimiter(t *testing.T) {
	rate, err := parseLimit("800") // 800 Kbit/s = 102400 bytes/s
	if err != nil || rate != 102400 {
		t.Fatalf("parseLimit: %v %v", rate, err)
	}
	l, clock := fakeLimiter(rate)
	var total int
	for _, n := range []int{1, 32768, 5000, 32768, 32768, 100000, 7, 200000} {
		if err := l.wait(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	want := time.Duration(float64(total)-l.burst) * time.Second / time.Duration(rate)
	if d := clock.slept - want; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("slept %v for %d bytes at %v B/s, want %v", clock.slept, total, rate, want)
	}
	// Idle time refills only up to the burst.
	before := clock.slept
	clock.now = clock.now.Add(time.Hour)
	l.wait(context.Background(), int(l.burst))
	l.wait(context.Background(), int(rate))
	if got := clock.slept - before; got < time.Second-time.Millisecond || got > time.Second+time.Millisecond {
		t.Fatalf("after an idle hour, a second's worth past the burst slept %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	real := newRateLimiter(100)
	real.wait(ctx, 100)
	if err := real.wait(ctx, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("a canceled wait: %v", err)
	}
}

type fakeClock struct {
	now   time.Time
	slept time.Duration
}

func fakeLimiter(rate float64) (*rateLimiter, *fakeClock) {
	c := &fakeClock{now: time.Unix(1e9, 0)}
	l := newRateLimiter(rate)
	l.now = func() time.Time { return c.now }
	l.sleep = func(_ context.Context, d time.Duration) error {
		c.slept += d
		c.now = c.now.Add(d)
		return nil
	}
	return l, c
}

// TestRateLimitInCopyLoop: -l's limiter is in the loop that moves a
// file's data: a download, an upload and a copy between servers with an
// in-process server are each held to the rate (by an injected clock,
// counted, not timed).
func TestRateLimitInCopyLoop(t *testing.T) {
	root := t.TempDir()
	const size = 3<<20 + 5
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(root, "f"), data, 0o644)
	cEnd, sEnd := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sftp.Serve(ctx, sEnd, &sftp.ServerConfig{Root: root}) }()
	c, err := sftp.NewClient(context.Background(), cEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close(); cancel(); <-done }()

	rate, _ := parseLimit("1000")
	local := filepath.Join(t.TempDir(), "f")
	for name, run := range map[string]func(sftp.TransferOptions) error{
		"download":  func(o sftp.TransferOptions) error { return c.Download(context.Background(), "/f", local, o) },
		"upload":    func(o sftp.TransferOptions) error { return c.Upload(context.Background(), local, "/up", o) },
		"crossload": func(o sftp.TransferOptions) error { return sftp.Crossload(context.Background(), c, "/f", c, "/x", o) },
	} {
		if name != "download" {
			os.WriteFile(local, data, 0o644)
		}
		l, clock := fakeLimiter(rate)
		if err := run(sftp.TransferOptions{Throttle: l.wait}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := time.Duration((float64(size) - l.burst) / rate * float64(time.Second))
		if l.paid != size || clock.slept < want-time.Millisecond || clock.slept > want+time.Millisecond {
			t.Fatalf("%s: counted %d bytes and slept %v, want %d and %v", name, l.paid, clock.slept, size, want)
		}
	}
}

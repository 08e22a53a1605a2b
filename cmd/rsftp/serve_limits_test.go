package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/sftp"
)

// serveLimits is what the limit flags of rsftp serve set.
type serveLimits struct {
	loginGrace               time.Duration
	maxStartups              rsftp.MaxStartups
	perSource                int
	netBlock                 rsftp.NetBlockSize
	maxSessions, maxChannels int
	maxHandles               int
	hold, idle               time.Duration
	maxResumable, maxPerUser int
	maxRetained              int64
	maxRetainedPerSession    int
	maxWindowBytes           int64
	resumeOff                bool
	clientAlive              time.Duration
	clientAliveMax           int
}

// limitsOf reads the limits back from the configurations rsftp serve
// builds from o.
func limitsOf(o *serveOptions) serveLimits {
	cfg := o.serverConfig()
	l := serveLimits{loginGrace: cfg.LoginGraceTime, maxStartups: cfg.MaxStartups,
		perSource: cfg.PerSourceMaxStartups, netBlock: cfg.PerSourceNetBlockSize,
		maxSessions: cfg.MaxSessionsPerConn, maxChannels: cfg.MaxChannelsPerConn,
		maxHandles: o.sftpConfig(nil).MaxHandles, resumeOff: cfg.Resume == nil,
		clientAlive: cfg.ClientAliveInterval, clientAliveMax: cfg.ClientAliveCountMax,
		maxWindowBytes: cfg.MaxWindowBytes}
	if r := cfg.Resume; r != nil {
		l.hold, l.idle, l.maxResumable, l.maxPerUser, l.maxRetained = r.Hold, r.IdleTimeout, r.MaxSessions, r.MaxDetachedPerUser, r.MaxRetainedBytes
		l.maxRetainedPerSession = r.MaxRetainedPerSession
	}
	return l
}

// TestServeLimitFlagsDefaults: without flags the limits are the
// library's defaults, but for the per-source startups (5 per address, an
// IPv6 /64 as one source; docs/HARDENING.md says why), and -h shows each
// of them.
func TestServeLimitFlagsDefaults(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseServeFlags(nil, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := serveLimits{loginGrace: rsftp.DefaultLoginGraceTime, maxStartups: rsftp.DefaultMaxStartups,
		perSource: 5, netBlock: rsftp.NetBlockSize{IPv4: 32, IPv6: 64},
		maxSessions: rsftp.DefaultMaxSessionsPerConn, maxChannels: rsftp.DefaultMaxChannelsPerConn,
		maxHandles: sftp.DefaultMaxHandles, hold: time.Hour, idle: time.Minute,
		maxResumable: 4096, maxPerUser: 16, maxRetained: 1 << 30, maxRetainedPerSession: 64 << 20,
		maxWindowBytes: 1 << 30, clientAlive: time.Minute, clientAliveMax: 3}
	if got := limitsOf(o); got != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if stderr.Len() != 0 {
		t.Fatalf("parsing printed %q", stderr.String())
	}

	_, err = parseServeFlags([]string{"-h"}, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	help := stderr.String()
	for _, f := range []struct{ name, def string }{
		{"login-grace-time duration", "2m0s"},
		{"max-startups start:rate:full", "10:30:100"},
		{"per-source-max-startups N", "5"},
		{"per-source-net-block-size v4bits:v6bits", "32:64"},
		{"max-sessions int", "64"},
		{"max-channels int", "1024"},
		{"max-handles int", "256"},
		{"hold duration", "1h0m0s"},
		{"idle-timeout duration", "1m0s"},
		{"max-resumable int", "4096"},
		{"max-detached-per-user int", "16"},
		{"max-retained-bytes int", "1073741824"},
		{"max-retained-per-session int", "67108864"},
		{"max-window-bytes int", "1073741824"},
		{"client-alive-interval duration", "1m0s"},
		{"client-alive-count-max int", "3"},
	} {
		// PrintDefaults: "  -name type\n    \tusage (default x)\n".
		_, after, ok := strings.Cut(help, "  -"+f.name+"\n")
		if !ok {
			t.Fatalf("-h does not list -%s:\n%s", f.name, help)
		}
		usage, _, _ := strings.Cut(after, "\n")
		if want := "(default " + f.def + ")"; !strings.HasSuffix(usage, want) {
			t.Errorf("-h shows -%s as %q, want it to end in %q", f.name, usage, want)
		}
	}
}

// TestServeLimitFlagsSet: each limit flag reaches the server (or SFTP)
// configuration, and --hold 0 turns resumption off.
func TestServeLimitFlagsSet(t *testing.T) {
	o, err := parseServeFlags([]string{
		"--login-grace-time", "7s", "--max-startups", "3:40:30", "--per-source-max-startups", "4",
		"--per-source-net-block-size", "24:48", "--max-sessions", "5", "--max-channels", "9",
		"--max-handles", "11", "--hold", "90s", "--idle-timeout", "13s", "--max-resumable", "17",
		"--max-detached-per-user", "2", "--max-retained-bytes", "4096", "--max-retained-per-session", "2097152",
		"--max-window-bytes", "8192",
		"--client-alive-interval", "19s", "--client-alive-count-max", "6",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := serveLimits{loginGrace: 7 * time.Second, maxStartups: rsftp.MaxStartups{Start: 3, Rate: 40, Full: 30},
		perSource: 4, netBlock: rsftp.NetBlockSize{IPv4: 24, IPv6: 48}, maxSessions: 5, maxChannels: 9,
		maxHandles: 11, hold: 90 * time.Second, idle: 13 * time.Second, maxResumable: 17, maxPerUser: 2,
		maxRetained: 4096, maxRetainedPerSession: 2097152, maxWindowBytes: 8192, clientAlive: 19 * time.Second, clientAliveMax: 6}
	if got := limitsOf(o); got != want {
		t.Fatalf("set:\n got %+v\nwant %+v", got, want)
	}

	o, err = parseServeFlags([]string{"--hold", "0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !limitsOf(o).resumeOff {
		t.Fatal("--hold 0 left resumption on")
	}

	// sshd's other forms: a single number is a hard cap; "none".
	o, err = parseServeFlags([]string{"--max-startups", "64", "--per-source-max-startups", "none", "--per-source-net-block-size", "16"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if l := limitsOf(o); l.maxStartups != (rsftp.MaxStartups{Start: 64, Rate: 100, Full: 64}) || l.perSource != 0 ||
		l.netBlock != (rsftp.NetBlockSize{IPv4: 16, IPv6: 128}) {
		t.Fatalf("--max-startups 64 --per-source-max-startups none --per-source-net-block-size 16: %v, %d, %v", l.maxStartups, l.perSource, l.netBlock)
	}
	// Each reaches a server that starts.
	if _, err := rsftp.NewServer(o.serveConfig(serveTestKey(t), "u", slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
}

// TestServeLimitFlagsInvalid: a negative, zero or malformed limit is
// refused with a one-line error naming the flag, and the flag package
// prints nothing of its own.
func TestServeLimitFlagsInvalid(t *testing.T) {
	for _, args := range [][]string{
		{"--max-channels", "-1"},
		{"--max-channels", "0"},
		{"--max-retained-per-session", "262144"},
		{"--max-channels", "lots"},
		{"--max-handles", "-5"},
		{"--max-handles", "1e3"},
		{"--max-startups", "-1"},
		{"--max-startups", "0"},
		{"--max-startups", "10:30"},
		{"--max-startups", "10:0:100"},
		{"--max-startups", "10:30:5"},
		{"--max-startups", "many"},
		{"--per-source-max-startups", "0"},
		{"--per-source-max-startups", "-2"},
		{"--per-source-max-startups", "all"},
		{"--per-source-net-block-size", "33"},
		{"--per-source-net-block-size", "32:129"},
		{"--user", "a\nb"},
		{"--max-sessions", "0"},
		{"--max-resumable", "-1"},
		{"--max-detached-per-user", "-1"},
		{"--max-retained-bytes", "-1"},
		{"--max-retained-bytes", "1GiB"},
		{"--login-grace-time", "-1s"},
		{"--login-grace-time", "0"},
		{"--login-grace-time", "soon"},
		{"--idle-timeout", "-1m"},
		{"--hold", "-1h"},
		{"--client-alive-interval", "-1s"},
		{"--client-alive-count-max", "0"},
	} {
		var stderr bytes.Buffer
		_, err := parseServeFlags(args, &stderr)
		if err == nil {
			t.Errorf("%v: accepted", args)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, strings.TrimLeft(args[0], "-")) {
			t.Errorf("%v: error %q is not one line naming the flag", args, msg)
		}
		if stderr.Len() != 0 {
			t.Errorf("%v: printed %q besides the error", args, stderr.String())
		}
	}
}

//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// shellLogin logs in to the rig as userName with key.
func (r *serveRig) shellLogin(t *testing.T, userName string, key kex.Signer) *rsftp.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hk := r.hostKey.PublicKey().Marshal()
	c, err := rsftp.Dial(ctx, "tcp", r.addr, &rsftp.ClientConfig{
		User: userName,
		Auth: []auth.Method{auth.PublicKeySigners(key)},
		HostKeyCallback: func(host string, port int, k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hk) {
				return errors.New("host key mismatch")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestServeShellFlags: --shell and --accept-env as read, and what they
// refuse.
func TestServeShellFlags(t *testing.T) {
	var help bytes.Buffer
	parseServeFlags([]string{"-h"}, &help)
	for _, want := range []string{"-shell", "-accept-env", "SFTP only", "(default LANG,LC_*)"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
	for _, tc := range []struct {
		args      []string
		shell     bool
		acceptEnv string
	}{
		{nil, false, ""},
		{[]string{"--shell"}, true, "LANG LC_*"},
		{[]string{"--shell", "--accept-env", "none"}, true, ""},
		{[]string{"--shell", "--accept-env", "TZ,LC_*,COLOR?ERM"}, true, "TZ LC_* COLOR?ERM"},
	} {
		o, err := parseServeFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		cfg := o.serverConfig()
		if (cfg.Exec != nil) != tc.shell || strings.Join(cfg.AcceptEnv, " ") != tc.acceptEnv {
			t.Errorf("%q: Exec set %v, AcceptEnv %q; want %v, %q", tc.args, cfg.Exec != nil, cfg.AcceptEnv, tc.shell, tc.acceptEnv)
		}
	}
	for _, args := range [][]string{{"--shell", "--read-only"}, {"--accept-env", "A=B"}, {"--accept-env", "A,,B"}} {
		if _, err := parseServeFlags(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// TestServeShell: without --shell, rsftp serve refuses exec, shell and
// pty-req; with it, commands and terminals run as its user with the
// login environment, env passes --accept-env, and a key's command= runs
// instead of the client's command (no-pty refusing the terminal).
func TestServeShell(t *testing.T) {
	me := currentUser(t)
	key := serveTestKey(t)
	line := kex.MarshalAuthorizedKey(key.PublicKey())
	ctx := context.Background()

	r := newServeRig(t, "")
	r.writeKeys(t, line)
	c := r.shellLogin(t, me, key)
	s, _ := c.NewSession(ctx)
	if err := s.RequestPty(ctx, "xterm", 80, 24, nil); err == nil {
		t.Error("pty-req granted without --shell")
	}
	if _, err := s.Output(ctx, "echo hi"); err == nil {
		t.Error("exec run without --shell")
	}
	if err := r.sftpLogin(me, key); err != nil {
		t.Fatalf("SFTP without --shell: %v", err)
	}

	r = newServeRig(t, "", "--shell")
	r.writeKeys(t, line)
	c = r.shellLogin(t, me, key)
	s, _ = c.NewSession(ctx)
	if err := s.Setenv(ctx, "LC_TIME", "C"); err != nil {
		t.Error(err)
	}
	if err := s.Setenv(ctx, "LD_PRELOAD", "/x.so"); err == nil {
		t.Error("env LD_PRELOAD accepted")
	}
	out, err := s.Output(ctx, `echo "$LC_TIME|${LD_PRELOAD-unset}|$USER|${SSH_CONNECTION%% *}"`)
	if err != nil || strings.TrimSpace(string(out)) != "C|unset|"+loginName(me)+"|127.0.0.1" {
		t.Errorf("exec: %q %v", out, err)
	}
	s, _ = c.NewSession(ctx)
	if err := s.RequestPty(ctx, "vt100", 80, 24, nil); err != nil {
		t.Fatal(err)
	}
	out, err = s.Output(ctx, `echo "$TERM $(tty)"`)
	if err != nil || !strings.HasPrefix(string(out), "vt100 /dev/") {
		t.Errorf("exec on a terminal: %q %v", out, err)
	}
	if err := r.sftpLogin(me, key); err != nil {
		t.Fatalf("SFTP with --shell: %v", err)
	}

	r.writeKeys(t, `no-pty,command="echo forced:$SSH_ORIGINAL_COMMAND" `+line)
	c = r.shellLogin(t, me, key)
	s, _ = c.NewSession(ctx)
	if err := s.RequestPty(ctx, "xterm", 80, 24, nil); err == nil {
		t.Error("pty-req granted under no-pty")
	}
	out, err = s.Output(ctx, "rm -rf /")
	if err != nil || string(out) != "forced:rm -rf /\n" {
		t.Errorf("forced command: %q %v", out, err)
	}
}

package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// TestE2EPreferredAuthentications: against a server that takes a password
// and a keyboard-interactive code, typed on a terminal, rsftp asks first
// for what PreferredAuthentications puts first (keyboard-interactive by
// default, as ssh), never for a method it leaves out or that
// KbdInteractiveAuthentication=no turns off.
func TestE2EPreferredAuthentications(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hi\n"), 0o644)
	hkPath := filepath.Join(dir, "hk")
	o, err := parseServeFlags([]string{"--root", root, "--host-key", hkPath, "--authorized-keys", os.DevNull}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hk, _, err := loadOrCreateHostKey(hkPath)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tried []string
	note := func(m string) {
		mu.Lock()
		tried = append(tried, m)
		mu.Unlock()
	}
	cfg := o.serveConfig(hk, localUser(), slog.New(slog.DiscardHandler))
	cfg.Auth = auth.ServerConfig{
		PasswordCallback: func(user string, pw []byte) (*auth.Permissions, error) {
			note("password")
			if string(pw) != "open sesame" {
				return nil, fmt.Errorf("wrong password")
			}
			return &auth.Permissions{}, nil
		},
		KeyboardInteractiveCallback: func(user string, challenge func(string, string, []string, []bool) ([]string, error)) (*auth.Permissions, error) {
			note("keyboard-interactive")
			a, err := challenge("", "", []string{"Verification code: "}, []bool{false})
			if err != nil || len(a) != 1 || a[0] != "123456" {
				return nil, fmt.Errorf("wrong code")
			}
			return &auth.Permissions{}, nil
		},
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", port, kex.MarshalAuthorizedKey(hk.PublicKey()))), 0o600)

	run := func(t *testing.T, extra []string, prompt, answer string, code int) []string {
		mu.Lock()
		tried = nil
		mu.Unlock()
		args := append([]string{"ls", "-F", "none", "-o", "UserKnownHostsFile=" + kh, "-o", "PubkeyAuthentication=no",
			"-P", fmt.Sprint(port)}, extra...)
		p := startPTY(t, dir, append(args, "127.0.0.1:")...)
		p.expect(prompt)
		p.typeKeys(answer + "\r")
		if got := p.wait(); got != code {
			t.Fatalf("exit %d, want %d", got, code)
		}
		if code == 0 && !strings.Contains(p.all(), "hello.txt") {
			t.Errorf("no listing")
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), tried...)
	}
	t.Run("default", func(t *testing.T) {
		if got := run(t, nil, "Verification code: ", "123456", 0); strings.Join(got, ",") != "keyboard-interactive" {
			t.Errorf("tried %v", got)
		}
	})
	t.Run("password first", func(t *testing.T) {
		got := run(t, []string{"-o", "PreferredAuthentications=password,keyboard-interactive"}, "@127.0.0.1's password: ", "open sesame", 0)
		if strings.Join(got, ",") != "password" {
			t.Errorf("tried %v", got)
		}
	})
	t.Run("no keyboard-interactive", func(t *testing.T) {
		if got := run(t, []string{"-o", "KbdInteractiveAuthentication=no"}, "@127.0.0.1's password: ", "open sesame", 0); strings.Join(got, ",") != "password" {
			t.Errorf("tried %v", got)
		}
	})
	t.Run("only keyboard-interactive", func(t *testing.T) {
		got := run(t, []string{"-o", "PreferredAuthentications=keyboard-interactive"}, "Verification code: ", "wrong", 1)
		if strings.Join(got, ",") != "keyboard-interactive" {
			t.Errorf("tried %v (a password must not be asked)", got)
		}
	})
}

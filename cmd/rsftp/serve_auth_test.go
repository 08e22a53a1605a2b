package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

func serveTestKey(t *testing.T) kex.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kex.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serveRig is rsftp serve's server (serveConfig, as runServe builds it)
// on a loopback listener, with an authorized_keys file the test writes.
type serveRig struct {
	addr, root, authorizedKeys string
	hostKey                    kex.Signer
	logs                       *lockedBuffer
}

func newServeRig(t *testing.T, userName string, args ...string) *serveRig {
	t.Helper()
	dir := t.TempDir()
	r := &serveRig{root: filepath.Join(dir, "root"), authorizedKeys: filepath.Join(dir, "authorized_keys"),
		hostKey: serveTestKey(t), logs: &lockedBuffer{}}
	if err := os.Mkdir(r.root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.root, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseServeFlags(append([]string{"--root", r.root, "--authorized-keys", r.authorizedKeys}, args...), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if userName == "" {
		if userName, err = o.servingUser(); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	srv, err := rsftp.NewServer(o.serveConfig(r.hostKey, userName, log))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", r.logs.String())
		}
	})
	return r
}

func (r *serveRig) writeKeys(t *testing.T, lines ...string) {
	t.Helper()
	if err := os.WriteFile(r.authorizedKeys, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sftpLogin logs in as userName with key and reads the file f over SFTP;
// it returns the first error.
func (r *serveRig) sftpLogin(userName string, key kex.Signer) error {
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
		return err
	}
	defer c.Close()
	sc, err := c.SFTP(ctx)
	if err != nil {
		return err
	}
	defer sc.Close()
	fi, err := sc.Stat("/f")
	if err != nil {
		return err
	}
	if fi.Size != 4 {
		return errors.New("wrong size")
	}
	return nil
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Skipf("no current user: %v", err)
	}
	return u.Username
}

// TestServeHonoursKeyOptions: issue 14 item 7. rsftp serve used to let a
// key with expiry-time="20000101" log in, gave a key with
// command="/bin/false" full SFTP access, and refused every from= key
// (its callback could not see the address). Now: expired keys, forced
// commands other than the SFTP server's (and sftp-server with
// arguments, which would restrict what rsftp serve cannot), and from=
// patterns that do not admit the client are refused; the sftp forced
// commands, from= patterns that admit the client, and restrict pass.
func TestServeHonoursKeyOptions(t *testing.T) {
	me := currentUser(t)
	r := newServeRig(t, "")
	key := serveTestKey(t)
	line := kex.MarshalAuthorizedKey(key.PublicKey())
	for _, tc := range []struct {
		opts  string
		admit bool
	}{
		{"", true},
		{`expiry-time="20000101"`, false},
		{`expiry-time="29991231"`, true},
		{`command="/bin/false"`, false},
		{`command=""`, false},
		{`command="internal-sftp"`, true},
		{`command="/usr/lib/openssh/sftp-server"`, true},
		{`command="internal-sftp -R"`, false},
		{`command="/usr/lib/openssh/sftp-server -R"`, false},
		{`from="127.0.0.1"`, true},
		{`from="127.0.0.0/8,::1"`, true},
		{`from="10.0.0.0/8"`, false},
		{`from="*,!127.0.0.1"`, false},
		{`restrict`, true},
		{`restrict,command="internal-sftp",from="127.*"`, true},
	} {
		l := line
		if tc.opts != "" {
			l = tc.opts + " " + line
		}
		r.writeKeys(t, l)
		err := r.sftpLogin(me, key)
		if tc.admit && err != nil {
			t.Errorf("%s: refused: %v", l[:min(len(l), 60)], err)
		}
		if !tc.admit && err == nil {
			t.Errorf("%s: admitted, and SFTP worked", l[:min(len(l), 60)])
		}
	}
}

// TestServeUserName: issue 14 item 4. rsftp serve let one key log in
// under any name (mallory0 ... mallory399, each its own "user" for the
// per-user limits); it now refuses every name but the serving user's,
// the user running it or the one --user names.
func TestServeUserName(t *testing.T) {
	me := currentUser(t)
	key := serveTestKey(t)
	line := kex.MarshalAuthorizedKey(key.PublicKey())

	r := newServeRig(t, "")
	r.writeKeys(t, line)
	if err := r.sftpLogin(me, key); err != nil {
		t.Fatalf("as %s, the user running the server: %v", me, err)
	}
	for _, name := range []string{"mallory0", "mallory399", me + "x", ""} {
		if err := r.sftpLogin(name, key); err == nil {
			t.Errorf("as %q: logged in", name)
		}
	}
	if !strings.Contains(r.logs.String(), "accepts only its own user name") {
		t.Errorf("the refusal is not logged:\n%s", r.logs.String())
	}

	r2 := newServeRig(t, "", "--user", "sftpuser")
	r2.writeKeys(t, line)
	if err := r2.sftpLogin("sftpuser", key); err != nil {
		t.Fatalf("as the --user name: %v", err)
	}
	if me != "sftpuser" {
		if err := r2.sftpLogin(me, key); err == nil {
			t.Errorf("with --user sftpuser, as %s: logged in", me)
		}
	}

	var help bytes.Buffer
	parseServeFlags([]string{"-h"}, &help)
	if !strings.Contains(help.String(), "other names are refused") {
		t.Errorf("-h does not say which user names are accepted:\n%s", help.String())
	}
}

// TestServeIdentityRecheck: what rsftp serve's authentication hands the
// resume layer: the key's fingerprint as Identity (whatever user name
// was asked for, there is only one), and a Recheck that fails once the
// key is removed from authorized_keys, has expired, or gets a forced
// command, and when from= does not admit a new address.
func TestServeIdentityRecheck(t *testing.T) {
	dir := t.TempDir()
	akPath := filepath.Join(dir, "authorized_keys")
	o, err := parseServeFlags([]string{"--authorized-keys", akPath}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	key, other := serveTestKey(t).PublicKey(), serveTestKey(t).PublicKey()
	line, otherLine := kex.MarshalAuthorizedKey(key), kex.MarshalAuthorizedKey(other)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(akPath, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`from="127.0.0.0/8" ` + line + "\n" + otherLine + "\n")
	cb := o.authConfig("me", slog.New(slog.DiscardHandler)).PublicKeyConnCallback
	if cb == nil {
		t.Fatal("rsftp serve sets no PublicKeyConnCallback")
	}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	p, err := cb(auth.ConnMetadata{User: "me", RemoteAddr: local}, key)
	if err != nil {
		t.Fatal(err)
	}
	if p.Identity != kex.FingerprintSHA256(key) {
		t.Fatalf("Identity %q, want %q", p.Identity, kex.FingerprintSHA256(key))
	}
	if p.Recheck == nil {
		t.Fatal("no Recheck")
	}
	if err := p.Recheck(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 1}); err != nil {
		t.Fatalf("unchanged, from an address from= admits: %v", err)
	}
	if err := p.Recheck(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}); err == nil {
		t.Fatal("from an address from= does not admit: passed")
	}
	for name, content := range map[string]string{
		"removed":       otherLine + "\n",
		"expired":       `expiry-time="20000101" ` + line + "\n",
		"forced to run": `command="/bin/sh" ` + line + "\n",
	} {
		write(content)
		if err := p.Recheck(local); err == nil {
			t.Errorf("key %s: Recheck passed", name)
		}
	}
	write(line + "\n")
	if err := p.Recheck(local); err != nil {
		t.Fatalf("listed again: %v", err)
	}
}

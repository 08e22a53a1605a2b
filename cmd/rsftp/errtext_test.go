package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
)

func testHostKey(t *testing.T) kex.Signer {
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

// TestUserMessage turns error chains as the libraries return them (made
// by the libraries where a test can: a refused dial, known_hosts checks,
// an encrypted key, a missing local file, a cancelled context) into the
// sentences rsftp prints: one line, the key words, none of the chain's
// jargon.
func TestUserMessage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	// A refused connection, from rsftp.Dial itself.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, refused := rsftp.Dial(ctx, "tcp", addr, &rsftp.ClientConfig{User: "u", HostKeyCallback: func(string, int, kex.PublicKey) error { return nil }})
	if refused == nil {
		t.Fatal("dial of a closed port succeeded")
	}
	_, port, _ := net.SplitHostPort(addr)

	// known_hosts: unknown, changed, revoked.
	key, other := testHostKey(t).PublicKey(), testHostKey(t).PublicKey()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	unknown := auth.KnownHostsCallback([]string{empty}, auth.StrictYes, false)("127.0.0.1", 2222, key)
	changedKH := filepath.Join(dir, "changed")
	os.WriteFile(changedKH, []byte("[127.0.0.1]:2222 "+kex.MarshalAuthorizedKey(other)+"\n"), 0o600)
	changed := auth.KnownHostsCallback([]string{changedKH}, auth.StrictYes, false)("127.0.0.1", 2222, key)
	revokedKH := filepath.Join(dir, "revoked")
	os.WriteFile(revokedKH, []byte("@revoked * "+kex.MarshalAuthorizedKey(key)+"\n"), 0o600)
	revoked := auth.KnownHostsCallback([]string{revokedKH}, auth.StrictYes, false)("127.0.0.1", 2222, key)
	handshake := func(err error) error { return fmt.Errorf("ssh: handshake with 127.0.0.1:2222: %w", err) }

	// An encrypted key, without its passphrase.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pem, err := auth.MarshalPrivateKey(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, encErr := auth.ParsePrivateKey(pem, nil)
	if !errors.Is(encErr, auth.ErrPassphraseRequired) {
		t.Fatalf("encrypted key: %v", encErr)
	}

	_, localErr := os.Open(filepath.Join(dir, "missing", "x"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, inUse := net.Listen("tcp", busy.Addr().String())
	cctx, cancel := context.WithCancel(ctx)
	cancel()

	noSuchFile := &fs.PathError{Op: "stat", Path: "nope", Err: &sftp.StatusError{Code: sftp.StatusNoSuchFile, Message: "No such file"}}
	denied := &fs.PathError{Op: "open", Path: "/etc/shadow", Err: &sftp.StatusError{Code: sftp.StatusPermissionDenied, Message: "Permission denied"}}
	unknownSession := fmt.Errorf("%w: %w", channel.ErrClosed, fmt.Errorf("ssh: the server no longer holds the session: %w",
		&resume.Failure{Reason: resume.ReasonSessionUnknown, Description: "no such session"}))
	midPacket := fmt.Errorf("transport: reading: %w", fmt.Errorf("transport: connection closed in the middle of a packet: %w", io.ErrUnexpectedEOF))

	for _, c := range []struct {
		name string
		err  error
		want []string // each in the sentence
	}{
		{"refused", &connectError{host: "127.0.0.1", port: atoi(port), user: "u", err: refused},
			[]string{"cannot connect to 127.0.0.1 port " + port, "connection refused", "-P"}},
		{"dns", &connectError{host: "nohost.invalid", port: 22, err: fmt.Errorf("ssh: dial nohost.invalid:22: %w",
			&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nohost.invalid", IsNotFound: true}})},
			[]string{`cannot resolve host name "nohost.invalid"`, "check its spelling"}},
		{"timeout", &connectError{host: "10.1.2.3", port: 22, timeout: 5, err: context.DeadlineExceeded},
			[]string{"cannot connect to 10.1.2.3 port 22", "ConnectTimeout (5 s)"}},
		{"closed before login", &connectError{host: "h", port: 2222, err: fmt.Errorf("ssh: handshake with h:2222: %w",
			fmt.Errorf("transport: connection closed before the version exchange: %w", io.EOF))},
			[]string{"h port 2222 closed the connection before the login completed", "SSH server"}},
		{"unknown host", &connectError{host: "127.0.0.1", port: 2222, err: handshake(unknown)},
			[]string{"Host key verification failed", "[127.0.0.1]:2222 is not in known_hosts", kex.FingerprintSHA256(key), "without BatchMode"}},
		{"unknown jump host", &connectError{host: "db", port: 22, err: &connectError{host: "bastion", port: 2222, jump: true, err: handshake(unknown)}},
			[]string{"jump host bastion: Host key verification failed"}},
		{"changed host key", &connectError{host: "127.0.0.1", port: 2222, err: handshake(changed)},
			[]string{"has CHANGED", changedKH + ":1", "ssh-keygen -R '[127.0.0.1]:2222' -f " + changedKH}},
		{"revoked host key", &connectError{host: "127.0.0.1", port: 2222, err: handshake(revoked)},
			[]string{"@revoked in " + revokedKH + ":1", "do not connect"}},
		{"host certificate refused", &connectError{host: "web", port: 22, err: handshake(fmt.Errorf("Host key verification failed: %w",
			&auth.UnknownHostError{Host: "web", Port: 22, Key: key, Cert: &kex.Certificate{KeyID: "web-2026"}, CertErr: errors.New("kex: certificate expired at 2026-01-01")}))},
			[]string{"web is not in known_hosts", `host certificate, ID "web-2026", that was not accepted`, "certificate expired", "@cert-authority"}},
		{"changed key, certificate refused", &connectError{host: "web", port: 22, err: handshake(&auth.KeyMismatchError{Host: "web", Port: 22, Got: key,
			Want: []auth.KnownKey{{File: "/kh", Line: 3, Key: other}}, Cert: &kex.Certificate{KeyID: "w"}, CertErr: errors.New("principal not listed")})},
			[]string{"has CHANGED", `ID "w"`, "principal not listed"}},
		{"revoked by RevokedHostKeys", &connectError{host: "web", port: 22, err: handshake(fmt.Errorf("Host key verification failed: ED25519 host key %s: %w",
			kex.FingerprintSHA256(key), fmt.Errorf("%w: key listed in /etc/ssh/revoked (line 2)", auth.ErrKeyRevoked)))},
			[]string{"the host key of web is revoked (key listed in /etc/ssh/revoked (line 2))", "do not connect"}},
		{"declined", &connectError{host: "h", port: 22, err: handshake(&hostKeyDeclined{host: "h"})},
			[]string{"Host key verification failed: the host key of h was not accepted"}},
		{"key refused", &connectError{host: "h", port: 22, user: "alice", err: fmt.Errorf("ssh: h:22: %w",
			&auth.NoMethodError{User: "alice", Allowed: []string{"publickey"}, Tried: []string{"publickey with 2 keys"}})},
			[]string{"Permission denied for alice@h", "refused publickey with 2 keys", "authorized_keys", "-i"}},
		{"encrypted key in batch mode", &connectError{host: "h", port: 22, user: "alice",
			notes: []string{identityProblem("/k/id", fmt.Errorf("identity file /k/id: %w (BatchMode)", encErr), true)},
			err:   fmt.Errorf("ssh: h:22: %w", &auth.NoMethodError{User: "alice", Allowed: []string{"publickey"}, Notes: []string{"publickey: no usable key"}})},
			[]string{"Permission denied for alice@h", "key /k/id needs its passphrase", "BatchMode", "ssh-add /k/id"}},
		{"encrypted key without a terminal", &connectError{host: "h", port: 22, user: "alice",
			notes: []string{identityProblem("/k/id", fmt.Errorf("identity file /k/id: %w", &noTerminalError{what: "x"}), false)},
			err:   fmt.Errorf("ssh: h:22: %w", &auth.NoMethodError{User: "alice", Allowed: []string{"publickey"}, Notes: []string{"publickey: no usable key"}})},
			[]string{"key /k/id needs its passphrase and there is no terminal", "ssh-add /k/id", "run rsftp in a terminal"}},
		{"no key at all", &connectError{host: "h", port: 22, user: "alice", err: fmt.Errorf("ssh: h:22: %w",
			&auth.NoMethodError{User: "alice", Allowed: []string{"publickey"}, Notes: []string{"publickey: no usable key"}})},
			[]string{"Permission denied for alice@h", "no key to offer", "-i"}},
		{"password without a terminal", &connectError{host: "h", port: 22, user: "alice", err: fmt.Errorf("ssh: h:22: auth: password callback: %w",
			&noTerminalError{what: "alice@h's password"})},
			[]string{"cannot ask for alice@h's password", "no terminal", "use a key"}},
		{"password refused", &connectError{host: "h", port: 22, user: "alice", err: fmt.Errorf("ssh: h:22: auth: password callback: %w", &passwordTriesError{3})},
			[]string{"Permission denied for alice@h: the password was refused 3 times (NumberOfPasswordPrompts)"}},
		{"remote file missing", noSuchFile, []string{"nope: no such file or directory on the server"}},
		{"remote permission", denied, []string{"the server could not open /etc/shadow: permission denied"}},
		{"local file missing", localErr, []string{"no such file or directory on this machine"}},
		{"local not writable", &fs.PathError{Op: "open", Path: "/ro/x", Err: syscall.EACCES}, []string{"cannot open /ro/x: permission denied"}},
		{"unknown session", unknownSession, []string{"the server no longer holds the session (it was restarted, or dropped it)"}},
		{"hold expired", fmt.Errorf("%w: %w", channel.ErrClosed, resume.ErrHoldExpired),
			[]string{"the connection was lost for longer than the server holds a session"}},
		{"partial download, link lost", &continuable{command: "rsftp get -a h:big .", err: &linkLostError{host: "h", cause: midPacket,
			err: &sftp.PartialError{Op: "download", Src: "big", Dst: "./big", Done: 3 << 20, Err: channel.ErrClosed}}},
			[]string{"download of big stopped: the connection to h was lost (closed in the middle of a message)", "not resumable",
				"the first 3145728 bytes (3.0MB) of big are in ./big", "to continue: rsftp get -a h:big ."}},
		{"partial upload, session forgotten", &sftp.PartialError{Op: "upload", Src: "big", Dst: "big", Done: 1 << 20, Err: unknownSession},
			[]string{"upload of big stopped: the server no longer holds the session", "the server has the first 1048576 bytes", "-a"}},
		{"link lost", &linkLostError{host: "h", cause: fmt.Errorf("transport: reading: %w", io.EOF), err: channel.ErrClosed},
			[]string{"the connection to h was lost (closed by the other end)", "run the command again"}},
		{"cancelled", fmt.Errorf("channel: opening session: %w", cctx.Err()), []string{"interrupted"}},
		{"repetition", midPacket, []string{"reading: connection closed in the middle of a packet"}},
		{"usage", usageErr("Bad port %q", "x"), []string{`Bad port "x"`}},
		{"listen", fmt.Errorf("--listen %s: %w", busy.Addr(), inUse), []string{"--listen " + busy.Addr().String() + ": the address is in use"}},
		{"flag context kept", fmt.Errorf("--authorized-keys: %w", localErr), []string{"--authorized-keys: " + filepath.Join(dir, "missing", "x") + ": no such file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := userMessage(c.err)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q\ndoes not say %q\n(chain: %v)", got, w, c.err)
				}
			}
			if strings.Contains(got, "\n") {
				t.Errorf("more than one line: %q", got)
			}
			for _, jargon := range []string{"transport: ", "auth: ", "sftp: ", "resume: ", "channel: ", "ssh: ", "context canceled", ": EOF", "unexpected EOF", "dial tcp"} {
				if strings.Contains(got, jargon) {
					t.Errorf("%q says %q", got, jargon)
				}
			}
		})
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// TestConfirmHostKey: the host key prompt as ssh's: yes (any case) or the
// fingerprint accept, no or an empty line refuse, anything else asks
// again, and the end of the input refuses.
func TestConfirmHostKey(t *testing.T) {
	const fp = "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	for _, c := range []struct {
		in     string
		want   bool
		asks   int // prompts shown
		reasks int // of them, "Please type..."
	}{
		{"yes\n", true, 1, 0},
		{"YES\n", true, 1, 0},
		{"  yes \n", true, 1, 0},
		{fp + "\n", true, 1, 0},
		{"no\n", false, 1, 0},
		{"\n", false, 1, 0},
		{"", false, 1, 0},
		{"y\nyes\n", true, 2, 1},
		{"SHA256:wrong\nmaybe\n" + fp + "\n", true, 3, 2},
		{"sure\n", false, 2, 1}, // then EOF
		{"sure\nnope\nno\n", false, 3, 2},
		{strings.ToLower(fp) + "\n", false, 2, 1}, // a fingerprint is exact
	} {
		var out bytes.Buffer
		got := confirmHostKey(strings.NewReader(c.in), &out, fp)
		asks := strings.Count(out.String(), "Are you sure you want to continue connecting (yes/no/[fingerprint])? ")
		reasks := strings.Count(out.String(), "Please type 'yes', 'no' or the fingerprint: ")
		if got != c.want || asks+reasks != c.asks || reasks != c.reasks {
			t.Errorf("%q: %v after %d prompts (%d again), want %v after %d (%d): %q", c.in, got, asks+reasks, reasks, c.want, c.asks, c.reasks, out.String())
		}
	}
}

package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// agentNeedTool returns the path of an OpenSSH tool, skipping the test when
// it is missing (failing instead when CI=true).
func agentNeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required when CI=true: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// agentRun runs an OpenSSH tool with SSH_AUTH_SOCK=sock (if not "") and
// returns its combined output, failing the test on error.
func agentRun(t testing.TB, sock, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(agentNeedTool(t, name), args...)
	cmd.Env = append(os.Environ(), "SSH_ASKPASS=/bin/false", "SSH_ASKPASS_REQUIRE=never")
	if sock != "" {
		cmd.Env = append(cmd.Env, "SSH_AUTH_SOCK="+sock)
	}
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startOpenSSHAgent runs ssh-agent -D on a fresh socket, killed when the
// test ends, and returns the socket path and a scratch directory.
func startOpenSSHAgent(t testing.TB) (sock, dir string) {
	t.Helper()
	bin := agentNeedTool(t, "ssh-agent")
	// A short directory: Unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "rsftp-agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "agent.sock")
	cmd := exec.Command(bin, "-D", "-a", sock)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ssh-agent: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.After(10 * time.Second)
	for {
		// Ready once it accepts a connection: the socket file appears
		// at bind(), before listen(), and a connection in between is
		// refused (TestAgentConcurrent failed that way once).
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock, dir
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("ssh-agent exited early: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("ssh-agent socket %s did not appear within 10s", sock)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// agentKeygen makes a key with ssh-keygen and returns its path and the
// "type base64" part of its public key line.
func agentKeygen(t testing.TB, dir, name, typ, comment string, extra ...string) (path, pub string) {
	t.Helper()
	path = filepath.Join(dir, name)
	args := append([]string{"-q", "-t", typ, "-N", "", "-C", comment, "-f", path}, extra...)
	agentRun(t, "", "ssh-keygen", args...)
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		t.Fatalf("odd public key file %q", b)
	}
	return path, f[0] + " " + f[1]
}

func dialTestAgent(t testing.TB, sock string) *Agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := DialAgent(ctx, sock)
	if err != nil {
		t.Fatalf("DialAgent: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func sigAlgorithm(t testing.TB, sig []byte) string {
	t.Helper()
	r := wire.NewReader(sig)
	algo := r.String()
	r.Bytes()
	if err := r.Done(); err != nil {
		t.Fatalf("malformed signature blob: %v", err)
	}
	return algo
}

func TestAgentOpenSSH(t *testing.T) {
	sock, dir := startOpenSSHAgent(t)

	type testKey struct {
		typ, comment string
		extra        []string
		pub          string
		algos        []string // to sign with; "" is the default
		wantDefault  string
	}
	keys := []*testKey{
		{typ: "ed25519", comment: "ed key", algos: []string{"", kex.KeyAlgoED25519}, wantDefault: kex.KeyAlgoED25519},
		{typ: "ecdsa", comment: "ec256@test", extra: []string{"-b", "256"}, algos: []string{"", kex.KeyAlgoECDSA256}, wantDefault: kex.KeyAlgoECDSA256},
		{typ: "ecdsa", comment: "ec384", extra: []string{"-b", "384"}, algos: []string{""}, wantDefault: kex.KeyAlgoECDSA384},
		{typ: "rsa", comment: "rsa key with spaces", extra: []string{"-b", "2048"}, algos: []string{"", kex.SigAlgoRSASHA256, kex.SigAlgoRSASHA512}, wantDefault: kex.SigAlgoRSASHA512},
	}
	for i, k := range keys {
		path, pub := agentKeygen(t, dir, fmt.Sprintf("id%d", i), k.typ, k.comment, k.extra...)
		k.pub = pub
		agentRun(t, sock, "ssh-add", "-q", path)
	}
	// A certificate: ssh-add loads id-cert.pub next to the key as a
	// second identity, which List returns as a *kex.Certificate
	// (agent_cert_test.go signs with it).
	caPath, _ := agentKeygen(t, dir, "ca", "ed25519", "ca")
	certKey, _ := agentKeygen(t, dir, "cert", "ed25519", "certified")
	agentRun(t, "", "ssh-keygen", "-q", "-s", caPath, "-I", "test-id", "-n", "user", certKey+".pub")
	agentRun(t, sock, "ssh-add", "-q", certKey)
	if out := agentRun(t, sock, "ssh-add", "-L"); !strings.Contains(out, "-cert-v01@openssh.com") {
		t.Fatalf("test setup: agent holds no certificate:\n%s", out)
	}

	a := dialTestAgent(t, sock)
	list, err := a.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	// The four keys, plus the certified key and its certificate.
	if len(list) != len(keys)+2 {
		for _, k := range list {
			t.Logf("listed %s %q", k.Key.Type(), k.Comment)
		}
		t.Fatalf("List returned %d keys, want %d", len(list), len(keys)+2)
	}
	byPub := map[string]AgentKey{}
	for _, k := range list {
		byPub[kex.MarshalAuthorizedKey(k.Key)] = k
	}
	data := []byte("data to be signed by the agent")
	for _, tk := range keys {
		ak, ok := byPub[tk.pub]
		if !ok {
			t.Errorf("%s key %q not listed", tk.typ, tk.comment)
			continue
		}
		if ak.Comment != tk.comment {
			t.Errorf("%s key comment %q, want %q", tk.typ, ak.Comment, tk.comment)
		}
		for _, algo := range tk.algos {
			sig, err := a.Sign(ak.Key, data, algo)
			if err != nil {
				t.Errorf("Sign(%s, %q): %v", tk.typ, algo, err)
				continue
			}
			want := algo
			if want == "" {
				want = tk.wantDefault
			}
			if got := sigAlgorithm(t, sig); got != want {
				t.Errorf("Sign(%s, %q) made a %s signature, want %s", tk.typ, algo, got, want)
			}
			if err := ak.Key.Verify(data, sig); err != nil {
				t.Errorf("Sign(%s, %q): signature does not verify: %v", tk.typ, algo, err)
			}
			if err := ak.Key.Verify([]byte("other data"), sig); err == nil {
				t.Errorf("Sign(%s, %q): signature verifies over other data", tk.typ, algo)
			}
		}
	}

	// Signers go through the agent.
	signers, err := a.Signers()
	if err != nil {
		t.Fatalf("Signers: %v", err)
	}
	if len(signers) != len(list) {
		t.Fatalf("Signers returned %d, want %d", len(signers), len(list))
	}
	for _, s := range signers {
		algs := s.Algorithms()
		if len(algs) == 0 {
			t.Fatalf("%s signer has no algorithms", s.PublicKey().Type())
		}
		for _, algo := range append([]string{""}, algs...) {
			sig, err := s.Sign(rand.Reader, data, algo)
			if err != nil {
				t.Fatalf("signer %s Sign(%q): %v", s.PublicKey().Type(), algo, err)
			}
			want := algo
			if want == "" {
				want = algs[0]
			}
			// A certificate's signature names the plain algorithm.
			if got := sigAlgorithm(t, sig); got != kex.UnderlyingSignatureAlgorithm(want) {
				t.Errorf("signer %s Sign(%q) made %s", s.PublicKey().Type(), algo, got)
			}
			if err := s.PublicKey().Verify(data, sig); err != nil {
				t.Errorf("signer %s Sign(%q): %v", s.PublicKey().Type(), algo, err)
			}
		}
	}

	// A key the agent does not hold.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := kex.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sign(other, data, ""); !errors.Is(err, ErrAgentFailure) {
		t.Errorf("Sign with a key not in the agent: %v, want ErrAgentFailure", err)
	}
	// The connection is still usable after a refusal.
	if _, err := a.List(); err != nil {
		t.Errorf("List after a refused Sign: %v", err)
	}

	// Algorithms that do not fit the key are refused before asking.
	rsaKey := byPub[keys[3].pub].Key
	edKey := byPub[keys[0].pub].Key
	for _, c := range []struct {
		key  kex.PublicKey
		algo string
	}{
		{rsaKey, kex.KeyAlgoRSA}, // SHA-1
		{rsaKey, kex.KeyAlgoED25519},
		{edKey, kex.SigAlgoRSASHA256},
		{edKey, "bogus"},
	} {
		if _, err := a.Sign(c.key, data, c.algo); err == nil || errors.Is(err, ErrAgentFailure) {
			t.Errorf("Sign(%s, %q): %v, want a local error", c.key.Type(), c.algo, err)
		}
	}
	if _, err := a.Sign(nil, data, ""); err == nil {
		t.Error("Sign(nil key) succeeded")
	}

	// Data over the message limit is refused locally.
	if _, err := a.Sign(edKey, make([]byte, agentMaxMessage), ""); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Sign of oversized data: %v", err)
	}
	if _, err := a.Sign(edKey, data, ""); err != nil {
		t.Errorf("Sign after a refused oversized request: %v", err)
	}

	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := a.List(); err == nil {
		t.Error("List after Close succeeded")
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestAgentDial(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	_, err := DialAgent(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
		t.Errorf("DialAgent with no SSH_AUTH_SOCK: %v", err)
	}

	dir := t.TempDir()
	if _, err := DialAgent(context.Background(), filepath.Join(dir, "missing.sock")); err == nil {
		t.Error("DialAgent to a missing socket succeeded")
	}

	sock, _ := startOpenSSHAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a, err := DialAgent(ctx, sock); err == nil {
		a.Close()
		t.Error("DialAgent with a cancelled context succeeded")
	}

	t.Setenv("SSH_AUTH_SOCK", sock)
	a := dialTestAgent(t, "")
	keys, err := a.List()
	if err != nil {
		t.Fatalf("List on an empty agent: %v", err)
	}
	if len(keys) != 0 {
		t.Errorf("empty agent listed %d keys", len(keys))
	}
}

func TestAgentAddRemove(t *testing.T) {
	sock, _ := startOpenSSHAgent(t)
	a := dialTestAgent(t, sock)

	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var privs = []crypto.Signer{edPriv, &edPriv}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		privs = append(privs, k)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	privs = append(privs, rk)

	var pubs []kex.PublicKey
	for i, p := range privs {
		if err := a.Add(p, fmt.Sprintf("added %d", i)); err != nil {
			t.Fatalf("Add(%T): %v", p, err)
		}
		pub, err := kex.NewPublicKey(p.Public())
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, pub)
	}
	// privs[1] is privs[0] again: the agent replaces it (and its comment).
	pubs = append(pubs[:1], pubs[2:]...)

	list, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(pubs) {
		t.Fatalf("listed %d keys, want %d", len(list), len(pubs))
	}
	// ssh-add -L agrees on the keys.
	out := agentRun(t, sock, "ssh-add", "-L")
	data := []byte("sign me")
	for _, pub := range pubs {
		line := kex.MarshalAuthorizedKey(pub)
		if !strings.Contains(out, line) {
			t.Errorf("ssh-add -L does not show %s", pub.Type())
		}
		for _, algo := range kex.SignatureAlgorithmsFor(pub.Type()) {
			sig, err := a.Sign(pub, data, algo)
			if err != nil {
				t.Fatalf("Sign(%s, %s): %v", pub.Type(), algo, err)
			}
			if err := pub.Verify(data, sig); err != nil {
				t.Errorf("Sign(%s, %s): %v", pub.Type(), algo, err)
			}
		}
	}

	if err := a.Remove(pubs[0]); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := a.Sign(pubs[0], data, ""); !errors.Is(err, ErrAgentFailure) {
		t.Errorf("Sign with a removed key: %v", err)
	}
	if err := a.Remove(pubs[0]); !errors.Is(err, ErrAgentFailure) {
		t.Errorf("Remove of a removed key: %v", err)
	}
	if err := a.RemoveAll(); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if list, err := a.List(); err != nil || len(list) != 0 {
		t.Errorf("after RemoveAll: %d keys, %v", len(list), err)
	}

	// Keys Add cannot send.
	threePrime, err := rsa.GenerateMultiPrimeKey(rand.Reader, 3, 1024) //nolint:staticcheck // testing the refusal
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []crypto.Signer{nil, threePrime, ed25519.PrivateKey(make([]byte, 10)), (*ecdsa.PrivateKey)(nil), (*rsa.PrivateKey)(nil), (*ed25519.PrivateKey)(nil)} {
		if err := a.Add(k, ""); err == nil {
			t.Errorf("Add(%T) succeeded", k)
		}
	}
}

func TestAgentConcurrent(t *testing.T) {
	sock, _ := startOpenSSHAgent(t)
	a := dialTestAgent(t, sock)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(priv, "concurrent"); err != nil {
		t.Fatal(err)
	}
	signers, err := a.Signers()
	if err != nil || len(signers) != 1 {
		t.Fatalf("Signers: %d, %v", len(signers), err)
	}
	s := signers[0]
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				data := []byte(fmt.Sprintf("goroutine %d message %d", g, i))
				sig, err := s.Sign(nil, data, "")
				if err == nil {
					err = s.PublicKey().Verify(data, sig)
				}
				if err == nil && i%5 == 0 {
					_, err = a.List()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// fakeAgent serves canned replies over net.Pipe: for each reply it reads
// one framed request and writes the reply bytes verbatim (an empty reply
// hangs up at once); then it closes.
func fakeAgent(t testing.TB, replies ...[]byte) *Agent {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		for _, r := range replies {
			if _, _, err := readAgentReply(server); err != nil {
				return
			}
			if len(r) == 0 {
				return // an empty reply means hang up
			}
			if _, err := server.Write(r); err != nil {
				return
			}
		}
	}()
	a := NewAgent(client)
	t.Cleanup(func() {
		a.Close()
		<-done
	})
	return a
}

// agentFrame frames a message: uint32 length || type || contents.
func agentFrame(typ byte, contents ...[]byte) []byte {
	body := []byte{typ}
	for _, c := range contents {
		body = append(body, c...)
	}
	return wire.AppendBytes(nil, body)
}

func agentTestKey(t testing.TB) kex.PublicKey {
	t.Helper()
	pub, err := kex.NewPublicKey(ed25519.PublicKey(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestAgentMalformedReplies(t *testing.T) {
	key := agentTestKey(t)
	blob := key.Marshal()
	u32 := func(v uint32) []byte { return wire.AppendUint32(nil, v) }
	str := func(s string) []byte { return wire.AppendString(nil, s) }
	sigBlob := func(algo string, sig []byte) []byte {
		return wire.AppendBytes(wire.AppendString(nil, algo), sig)
	}
	goodSig := sigBlob(kex.KeyAlgoED25519, make([]byte, 64))

	cases := []struct {
		name   string
		op     string // "list" or "sign"
		reply  []byte
		want   string // error substring; "" means success
		broken bool   // the connection is unusable afterwards
	}{
		{"huge length", "list", []byte{0xff, 0xff, 0xff, 0xff, agentIdentitiesAnswer}, "exceeds", true},
		{"just over limit", "sign", u32(agentMaxMessage + 1), "exceeds", true},
		{"zero length", "list", u32(0), "empty reply", true},
		{"eof", "list", nil, "EOF", true},
		{"short header", "list", []byte{0, 0}, "EOF", true},
		{"truncated body", "sign", append(u32(100), agentSignResponse, 1, 2), "unexpected EOF", true},
		{"failure", "list", agentFrame(agentFailure), "refused", false},
		{"ssh2 failure", "sign", agentFrame(agentSSH2Failure), "refused", false},
		{"wrong type list", "list", agentFrame(agentSignResponse, u32(0)), "unexpected reply message 14", false},
		{"wrong type sign", "sign", agentFrame(agentSuccess), "unexpected reply message 6", false},
		{"no count", "list", agentFrame(agentIdentitiesAnswer), "truncated", false},
		{"count too big", "list", agentFrame(agentIdentitiesAnswer, u32(0xffffffff)), "claims", false},
		{"count over entries", "list", agentFrame(agentIdentitiesAnswer, u32(2), wire.AppendBytes(nil, blob), str("c")), "key 2 of 2", false},
		{"blob overruns", "list", agentFrame(agentIdentitiesAnswer, u32(1), u32(1000), blob), "exceeds", false},
		{"missing comment", "list", agentFrame(agentIdentitiesAnswer, u32(1), wire.AppendBytes(nil, blob), []byte{0, 0}), "key 1 of 1", false},
		{"trailing", "list", agentFrame(agentIdentitiesAnswer, u32(0), []byte{1}), "trailing", false},
		{"unsupported key skipped", "list", agentFrame(agentIdentitiesAnswer, u32(3),
			wire.AppendBytes(nil, str("ssh-dss")), str("dsa"),
			wire.AppendBytes(nil, blob[:len(blob)-1]), str("short ed25519"),
			wire.AppendBytes(nil, blob), str("good")), "", false},
		{"sign empty", "sign", agentFrame(agentSignResponse), "malformed agent sign response", false},
		{"sign trailing", "sign", agentFrame(agentSignResponse, wire.AppendBytes(nil, goodSig), []byte{0}), "trailing", false},
		{"sig trailing", "sign", agentFrame(agentSignResponse, wire.AppendBytes(nil, append(goodSig[:len(goodSig):len(goodSig)], 0))), "malformed signature", false},
		{"sig truncated", "sign", agentFrame(agentSignResponse, wire.AppendBytes(nil, goodSig[:10])), "malformed signature", false},
		{"sig wrong algorithm", "sign", agentFrame(agentSignResponse, wire.AppendBytes(nil, sigBlob(kex.SigAlgoRSASHA256, make([]byte, 64)))), "was requested", false},
		{"sig good", "sign", agentFrame(agentSignResponse, wire.AppendBytes(nil, goodSig)), "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Unless the reply breaks the framing (then the fake
			// hangs up after it), a second, good reply follows, to
			// see that the connection is still in step.
			replies := [][]byte{c.reply}
			if !c.broken {
				replies = append(replies, agentFrame(agentIdentitiesAnswer, u32(0)))
			}
			a := fakeAgent(t, replies...)
			var err error
			switch c.op {
			case "list":
				var keys []AgentKey
				keys, err = a.List()
				if err == nil && c.name == "unsupported key skipped" {
					if len(keys) != 1 || keys[0].Comment != "good" {
						t.Errorf("got %d keys (%v), want only the good one", len(keys), keys)
					}
				}
			case "sign":
				var sig []byte
				sig, err = a.Sign(key, []byte("data"), "")
				if err == nil && !bytes.Equal(sig, goodSig) {
					t.Errorf("signature %x, want %x", sig, goodSig)
				}
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("no error, want %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
			if c.want == "refused" && !errors.Is(err, ErrAgentFailure) {
				t.Errorf("error %v is not ErrAgentFailure", err)
			}
			_, err2 := a.List()
			if c.broken {
				if err2 == nil || !strings.Contains(err2.Error(), "unusable") {
					t.Errorf("second request after a framing error: %v, want unusable", err2)
				}
			} else if err2 != nil {
				t.Errorf("second request: %v", err2)
			}
		})
	}
}

// TestAgentCloseUnblocks checks that Close ends a request the agent never
// answers.
func TestAgentCloseUnblocks(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	go io.Copy(io.Discard, server)
	a := NewAgent(client)
	errc := make(chan error, 1)
	go func() {
		_, err := a.List()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("List succeeded with no reply")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock List")
	}
}

// agentStream is a fake agent connection that discards requests and
// returns a fixed byte stream as replies.
type agentStream struct {
	io.Reader
}

func (agentStream) Write(p []byte) (int, error) { return len(p), nil }
func (agentStream) Close() error                { return nil }

func FuzzAgentReply(f *testing.F) {
	key := agentTestKey(f)
	blob := key.Marshal()
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	rsaPub, err := kex.NewPublicKey(&rk.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	ids := wire.AppendUint32(nil, 2)
	ids = wire.AppendBytes(ids, blob)
	ids = wire.AppendString(ids, "ed")
	ids = wire.AppendBytes(ids, rsaPub.Marshal())
	ids = wire.AppendString(ids, "rsa")
	sig := wire.AppendBytes(wire.AppendString(nil, kex.KeyAlgoED25519), make([]byte, 64))
	f.Add(agentFrame(agentIdentitiesAnswer, ids))
	f.Add(agentFrame(agentSignResponse, wire.AppendBytes(nil, sig)))
	skSig := append(wire.AppendBytes(wire.AppendString(nil, kex.KeyAlgoSKED25519), make([]byte, 64)), 1, 0, 0, 0, 7)
	f.Add(agentFrame(agentSignResponse, wire.AppendBytes(nil, skSig)))
	f.Add(agentFrame(agentFailure))
	f.Add(agentFrame(agentSuccess))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 5, agentIdentitiesAnswer, 0xff, 0xff, 0xff, 0xff})
	f.Add(append(agentFrame(agentIdentitiesAnswer, ids), agentFrame(agentSignResponse, wire.AppendBytes(nil, sig))...))

	f.Fuzz(func(t *testing.T, stream []byte) {
		// The parsers on their own.
		if typ, body, err := readAgentReply(bytes.NewReader(stream)); err == nil {
			if len(body)+1 > agentMaxMessage {
				t.Fatalf("reply of %d bytes accepted", len(body)+1)
			}
			_ = typ
			if keys, err := parseAgentIdentities(body); err == nil {
				for _, k := range keys {
					if k.Key == nil {
						t.Fatal("nil key listed")
					}
				}
			}
			for _, algo := range []string{kex.KeyAlgoED25519, kex.KeyAlgoSKED25519, kex.SigAlgoWebAuthnSKECDSA256} {
				if s, err := parseAgentSignResponse(body, algo); err == nil {
					if got, _ := parseSignatureAlgorithm(s); got != algo {
						t.Fatalf("accepted a %q signature for %s", got, algo)
					}
				}
			}
		}
		// The client over the stream: List, then Sign, then List.
		a := NewAgent(agentStream{bytes.NewReader(stream)})
		a.List()
		if s, err := a.Sign(key, []byte("data"), ""); err == nil {
			if got := sigAlgorithm(t, s); got != kex.KeyAlgoED25519 {
				t.Fatalf("Sign accepted a %q signature", got)
			}
		}
		a.List()
		a.Close()
	})
}

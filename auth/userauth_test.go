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
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/transport"
)

// ---- fixtures ----

func testTCPPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func testHostKey(t testing.TB) kex.Signer {
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

// connPair returns the client and server ends of a transport.Conn pair
// that completed its key exchange over loopback TCP.
func connPair(t testing.TB) (*transport.Conn, *transport.Conn) {
	t.Helper()
	ca, cb := testTCPPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sc *transport.Conn
	var serr error
	done := make(chan struct{})
	go func() {
		sc, serr = transport.NewServerConn(ctx, cb, &transport.Config{HostKeys: []kex.Signer{testHostKey(t)}})
		close(done)
	}()
	cc, cerr := transport.NewClientConn(ctx, ca, &transport.Config{HostKeyCallback: func(kex.PublicKey) error { return nil }})
	<-done
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return cc, sc
}

var (
	keysOnce  sync.Once
	keysCache map[string]crypto.Signer
)

// userKeys are one key of each kind, made once for the package.
func userKeys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	keysOnce.Do(func() {
		keysCache = make(map[string]crypto.Signer)
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		keysCache["ed25519"] = ed
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		keysCache["ecdsa-p256"] = ec
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keysCache["rsa2048"] = rk
	})
	return keysCache
}

func newEd25519(t testing.TB) crypto.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSigner(t testing.TB, k crypto.Signer) kex.Signer {
	t.Helper()
	s, err := kex.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pubOf(t testing.TB, k crypto.Signer) kex.PublicKey {
	t.Helper()
	return mustSigner(t, k).PublicKey()
}

type serveResult struct {
	user  string
	perms *Permissions
	err   error
}

// startServe runs Serve on sc in a goroutine the way a server would:
// a DisconnectError is sent to the peer.
func startServe(t testing.TB, sc *transport.Conn, cfg *ServerConfig) <-chan serveResult {
	t.Helper()
	ch := make(chan serveResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u, p, err := Serve(ctx, sc, cfg)
		var de *DisconnectError
		if errors.As(err, &de) {
			sc.Disconnect(de.Reason, de.Message)
		}
		ch <- serveResult{u, p, err}
	}()
	return ch
}

func waitServe(t testing.TB, ch <-chan serveResult) serveResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	return serveResult{}
}

func authenticate(cc *transport.Conn, cfg *ClientConfig) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cfg.ServerSigAlgs == nil {
		cfg.ServerSigAlgs = cc.ServerSigAlgs
	}
	return Authenticate(ctx, cc, cfg)
}

// recorder is a Transport that keeps copies of what is written.
type recorder struct {
	Transport
	mu   sync.Mutex
	sent [][]byte
}

func (r *recorder) WritePacket(p []byte) error {
	r.mu.Lock()
	r.sent = append(r.sent, bytes.Clone(p))
	r.mu.Unlock()
	return r.Transport.WritePacket(p)
}

// requests decodes the USERAUTH_REQUESTs sent.
func (r *recorder) requests(t testing.TB) []*userauthRequest {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*userauthRequest
	for _, p := range r.sent {
		if p[0] != wire.MsgUserauthRequest {
			continue
		}
		req, err := parseUserauthRequest(p)
		if err != nil {
			t.Fatalf("client sent a malformed request: %v", err)
		}
		out = append(out, req)
	}
	return out
}

// rawPeer drives one end with hand-made packets.
type rawPeer struct {
	t testing.TB
	c *transport.Conn
}

func (r rawPeer) send(p []byte) {
	r.t.Helper()
	if err := r.c.WritePacket(p); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// recv returns the next message, or nil and the error.
func (r rawPeer) recv() ([]byte, error) {
	type res struct {
		p   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := r.c.ReadPacket()
		ch <- res{bytes.Clone(p), err}
	}()
	select {
	case x := <-ch:
		return x.p, x.err
	case <-time.After(10 * time.Second):
		r.t.Fatal("read timed out")
	}
	return nil, nil
}

func (r rawPeer) expect(msg byte) []byte {
	r.t.Helper()
	p, err := r.recv()
	if err != nil {
		r.t.Fatalf("waiting for message %d: %v", msg, err)
	}
	if p[0] != msg {
		r.t.Fatalf("got %s (%d), want message %d", msgName(p[0]), p[0], msg)
	}
	return p
}

// startUserauth is the client's service request, as a raw peer.
func (r rawPeer) startUserauth() {
	r.t.Helper()
	r.send(marshalServiceRequest(serviceUserauth))
	r.expect(wire.MsgServiceAccept)
}

func pkRequest(user string, pub kex.PublicKey, algo string, sig []byte) []byte {
	return marshalUserauthRequest(&userauthRequest{
		User: user, Service: serviceConnection, Method: methodPubkey,
		Algorithm: algo, PubKey: pub.Marshal(), HasSig: sig != nil, Signature: sig,
	})
}

func signedPKRequest(t testing.TB, sessionID []byte, user string, s kex.Signer, algo string) []byte {
	t.Helper()
	data := marshalPublickeySignedData(sessionID, user, serviceConnection, algo, s.PublicKey().Marshal())
	sig, err := s.Sign(rand.Reader, data, algo)
	if err != nil {
		t.Fatal(err)
	}
	return pkRequest(user, s.PublicKey(), algo, sig)
}

// keyChecker is a PublicKeyCallback accepting one key for one user and
// counting its calls.
type keyChecker struct {
	user  string
	key   kex.PublicKey
	calls atomic.Int32
}

func (k *keyChecker) callback(user string, key kex.PublicKey) (*Permissions, error) {
	k.calls.Add(1)
	if user == k.user && bytes.Equal(key.Marshal(), k.key.Marshal()) {
		return &Permissions{KeyComment: "the key", Extensions: map[string]string{"fp": kex.FingerprintSHA256(key)}}, nil
	}
	return nil, errors.New("secret reason: key not in authorized_keys")
}

// ---- publickey ----

// loudSigner hides a signer's SignsQuietly, as an agent's key: it is
// asked about before it signs.
type loudSigner struct{ kex.Signer }

// TestPublicKeySuccess: a software key (a QuietSigner) offered first
// logs in with one signed request and no "none" before it; a key that
// does not sign quietly is asked about first.
func TestPublicKeySuccess(t *testing.T) {
	for _, name := range []string{"ed25519", "ecdsa-p256", "rsa2048"} {
		for _, quiet := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/quiet=%v", name, quiet), func(t *testing.T) {
				k := userKeys(t)[name]
				cc, sc := connPair(t)
				kc := &keyChecker{user: "alice", key: pubOf(t, k)}
				res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback, PasswordCallback: rejectPassword})
				rec := &recorder{Transport: cc}
				m := PublicKeys(k)
				if !quiet {
					m = PublicKeySigners(loudSigner{mustSigner(t, k)})
				}
				err := Authenticate(context.Background(), rec, &ClientConfig{
					User: "alice", Methods: []Method{m}, ServerSigAlgs: cc.ServerSigAlgs,
				})
				if err != nil {
					t.Fatal(err)
				}
				r := waitServe(t, res)
				if r.err != nil || r.user != "alice" || r.perms == nil || r.perms.KeyComment != "the key" {
					t.Fatalf("Serve = %q, %+v, %v", r.user, r.perms, r.err)
				}
				if n := kc.calls.Load(); n != 1 {
					t.Errorf("PublicKeyCallback called %d times for a query and its signed request, want 1", n)
				}
				reqs := rec.requests(t)
				want := 2
				if quiet {
					want = 1
				}
				if len(reqs) != want || reqs[0].Method != methodPubkey || reqs[0].HasSig != quiet || !reqs[len(reqs)-1].HasSig {
					t.Fatalf("requests: %+v", reqs)
				}
				algo := pubOf(t, k).Type()
				if name == "rsa2048" {
					algo = kex.SigAlgoRSASHA512
				}
				if reqs[len(reqs)-1].Algorithm != algo {
					t.Errorf("algorithm %s, want %s", reqs[len(reqs)-1].Algorithm, algo)
				}
			})
		}
	}
}

func rejectPassword(string, []byte) (*Permissions, error) { return nil, errors.New("no") }

// RSA signature algorithm choice follows server-sig-algs and never falls
// back to ssh-rsa.
func TestClientRSAAlgorithmChoice(t *testing.T) {
	k := userKeys(t)["rsa2048"]
	cases := []struct {
		name    string
		server  []string
		want    string // "" means the key is skipped
		allowed []string
	}{
		{"no-ext-info", nil, kex.SigAlgoRSASHA512, nil},
		{"both", []string{kex.SigAlgoRSASHA256, kex.SigAlgoRSASHA512}, kex.SigAlgoRSASHA512, nil},
		{"sha256-only", []string{kex.KeyAlgoED25519, kex.SigAlgoRSASHA256}, kex.SigAlgoRSASHA256, []string{kex.SigAlgoRSASHA256}},
		{"sha1-only", []string{kex.KeyAlgoRSA, kex.KeyAlgoED25519}, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc, sc := connPair(t)
			kc := &keyChecker{user: "u", key: pubOf(t, k)}
			res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback, AllowedSigAlgs: c.allowed})
			rec := &recorder{Transport: cc}
			err := Authenticate(context.Background(), rec, &ClientConfig{
				User: "u", Methods: []Method{PublicKeys(k)},
				ServerSigAlgs: func() []string { return c.server },
			})
			reqs := rec.requests(t)
			if c.want == "" {
				var nm *NoMethodError
				if !errors.As(err, &nm) || len(reqs) != 1 || !strings.Contains(err.Error(), "server-sig-algs") {
					t.Fatalf("err %v, %d requests", err, len(reqs))
				}
				cc.Close()
				waitServe(t, res)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r := waitServe(t, res); r.err != nil {
				t.Fatal(r.err)
			}
			if got := reqs[len(reqs)-1].Algorithm; got != c.want {
				t.Fatalf("signed with %s, want %s", got, c.want)
			}
		})
	}
}

// ClientConfig.PublicKeyAlgorithms (ssh's PubkeyAcceptedAlgorithms)
// orders an RSA key's algorithms and keeps out a key none of whose
// algorithms it lists, saying why.
func TestClientPublicKeyAlgorithms(t *testing.T) {
	rsaKey, ed := userKeys(t)["rsa2048"], newEd25519(t)
	both := []string{kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA256}
	cases := []struct {
		name     string
		keys     []crypto.Signer
		accepted []string
		want     []string // the algorithms offered, in order; nil: no key
	}{
		{"rsa-sha2-256 first", []crypto.Signer{rsaKey}, []string{kex.SigAlgoRSASHA256, kex.SigAlgoRSASHA512}, []string{kex.SigAlgoRSASHA256}},
		{"rsa-sha2-512 only", []crypto.Signer{rsaKey}, []string{kex.KeyAlgoED25519, kex.SigAlgoRSASHA512}, []string{kex.SigAlgoRSASHA512}},
		{"ed25519 left out", []crypto.Signer{ed, rsaKey}, []string{kex.SigAlgoRSASHA512}, []string{kex.SigAlgoRSASHA512}},
		{"rsa left out", []crypto.Signer{rsaKey}, []string{kex.KeyAlgoED25519}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc, sc := connPair(t)
			kc := &keyChecker{user: "u", key: pubOf(t, rsaKey)}
			res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback})
			rec := &recorder{Transport: cc}
			err := Authenticate(context.Background(), rec, &ClientConfig{
				User: "u", Methods: []Method{PublicKeys(c.keys...)},
				ServerSigAlgs:       func() []string { return both },
				PublicKeyAlgorithms: c.accepted,
			})
			var offered []string
			for _, r := range rec.requests(t) {
				if r.Method == "publickey" {
					offered = append(offered, r.Algorithm)
				}
			}
			if c.want == nil {
				var nm *NoMethodError
				if !errors.As(err, &nm) || len(offered) != 0 || !strings.Contains(err.Error(), "PubkeyAcceptedAlgorithms") {
					t.Fatalf("err %v, offered %v", err, offered)
				}
				cc.Close()
				waitServe(t, res)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			waitServe(t, res)
			if offered = slices.Compact(offered); !slices.Equal(offered, c.want) {
				t.Fatalf("offered %v, want %v", offered, c.want)
			}
		})
	}
}

func TestPublicKeyWrongKey(t *testing.T) {
	cc, sc := connPair(t)
	kc := &keyChecker{user: "bob", key: pubOf(t, newEd25519(t))}
	res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback, PasswordCallback: rejectPassword})
	err := authenticate(cc, &ClientConfig{User: "bob", Methods: []Method{PublicKeys(newEd25519(t), newEd25519(t))}})
	var nm *NoMethodError
	if !errors.As(err, &nm) {
		t.Fatalf("got %v, want NoMethodError", err)
	}
	if nm.User != "bob" || !slices.Equal(nm.Allowed, []string{"publickey", "password"}) ||
		!slices.Equal(nm.Tried, []string{"publickey with 2 keys"}) {
		t.Fatalf("%+v", nm)
	}
	want := `auth: no supported method succeeded for user "bob" (server allows publickey,password; tried publickey with 2 keys)`
	if err.Error() != want {
		t.Errorf("error text\n got %s\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), "secret reason") {
		t.Error("callback error reached the client")
	}
	cc.Close()
	if r := waitServe(t, res); r.err == nil || r.user != "" || r.perms != nil {
		t.Fatalf("Serve = %+v", r)
	}
}

// A publickey query (no signature) gets PK_OK but never logs in: what
// follows it is judged on its own.
func TestPublicKeyQueryNeverAuthorizes(t *testing.T) {
	k := mustSigner(t, newEd25519(t))
	t.Run("then-channel-open", func(t *testing.T) {
		cc, sc := connPair(t)
		kc := &keyChecker{user: "u", key: k.PublicKey()}
		res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback})
		r := rawPeer{t, cc}
		r.startUserauth()
		r.send(pkRequest("u", k.PublicKey(), kex.KeyAlgoED25519, nil))
		r.expect(msgUserauthPKOK)
		open := wire.AppendString([]byte{wire.MsgChannelOpen}, "session")
		open = wire.AppendUint32(open, 0)
		open = wire.AppendUint32(open, 1<<20)
		open = wire.AppendUint32(open, 1<<15)
		r.send(open)
		sr := waitServe(t, res)
		var de *DisconnectError
		if !errors.As(sr.err, &de) || de.Reason != wire.DisconnectProtocolError || sr.user != "" || sr.perms != nil {
			t.Fatalf("Serve = %+v", sr)
		}
		if p, err := r.recv(); err == nil {
			t.Fatalf("client got %s after a channel open before auth", msgName(p[0]))
		}
	})
	t.Run("then-none", func(t *testing.T) {
		cc, sc := connPair(t)
		kc := &keyChecker{user: "u", key: k.PublicKey()}
		res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback})
		r := rawPeer{t, cc}
		r.startUserauth()
		for range 3 {
			r.send(pkRequest("u", k.PublicKey(), kex.KeyAlgoED25519, nil))
			r.expect(msgUserauthPKOK)
			r.send(marshalUserauthRequest(&userauthRequest{User: "u", Service: serviceConnection, Method: methodNone}))
			r.expect(wire.MsgUserauthFailure)
		}
		// A signed request still works afterwards.
		r.send(signedPKRequest(t, cc.SessionID(), "u", k, kex.KeyAlgoED25519))
		r.expect(wire.MsgUserauthSuccess)
		if sr := waitServe(t, res); sr.err != nil || sr.user != "u" {
			t.Fatalf("Serve = %+v", sr)
		}
		if n := kc.calls.Load(); n != 1 {
			t.Errorf("callback called %d times", n)
		}
	})
}

func TestPublicKeyBadSignature(t *testing.T) {
	k := mustSigner(t, newEd25519(t))
	cc, sc := connPair(t)
	kc := &keyChecker{user: "u", key: k.PublicKey()}
	res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback})
	r := rawPeer{t, cc}
	r.startUserauth()

	// A flipped byte in the signature.
	p := signedPKRequest(t, cc.SessionID(), "u", k, kex.KeyAlgoED25519)
	p[len(p)-1] ^= 1
	r.send(p)
	r.expect(wire.MsgUserauthFailure)
	// A signature over another session identifier (a replay).
	r.send(signedPKRequest(t, bytes.Repeat([]byte{7}, 32), "u", k, kex.KeyAlgoED25519))
	r.expect(wire.MsgUserauthFailure)
	// A signature for another user name.
	data := marshalPublickeySignedData(cc.SessionID(), "root", serviceConnection, kex.KeyAlgoED25519, k.PublicKey().Marshal())
	sig, _ := k.Sign(rand.Reader, data, "")
	r.send(pkRequest("u", k.PublicKey(), kex.KeyAlgoED25519, sig))
	r.expect(wire.MsgUserauthFailure)
	if n := kc.calls.Load(); n != 0 {
		t.Fatalf("PublicKeyCallback called %d times for bad signatures", n)
	}
	r.send(signedPKRequest(t, cc.SessionID(), "u", k, kex.KeyAlgoED25519))
	r.expect(wire.MsgUserauthSuccess)
	if sr := waitServe(t, res); sr.err != nil {
		t.Fatal(sr.err)
	}
}

func sha1RSASignature(t testing.TB, k *rsa.PrivateKey, data []byte) []byte {
	h := sha1.Sum(data)
	raw, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA1, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return wire.AppendBytes(wire.AppendString(nil, kex.KeyAlgoRSA), raw)
}

func TestPublicKeyAlgorithmMismatch(t *testing.T) {
	keys := userKeys(t)
	ed := mustSigner(t, keys["ed25519"])
	ec := mustSigner(t, keys["ecdsa-p256"])
	rs := mustSigner(t, keys["rsa2048"])
	sign := func(sid []byte, s kex.Signer, reqAlgo, sigAlgo string) []byte {
		data := marshalPublickeySignedData(sid, "u", serviceConnection, reqAlgo, s.PublicKey().Marshal())
		sig, err := s.Sign(rand.Reader, data, sigAlgo)
		if err != nil {
			t.Fatal(err)
		}
		return pkRequest("u", s.PublicKey(), reqAlgo, sig)
	}
	cases := []struct {
		name    string
		key     kex.Signer
		allowed []string
		req     func(sid []byte) []byte
		why     string // in the error Serve returns
	}{
		{"ed25519-as-rsa-sha2-256", ed, nil, func(sid []byte) []byte {
			data := marshalPublickeySignedData(sid, "u", serviceConnection, kex.SigAlgoRSASHA256, ed.PublicKey().Marshal())
			sig, _ := ed.Sign(rand.Reader, data, "")
			return pkRequest("u", ed.PublicKey(), kex.SigAlgoRSASHA256, sig)
		}, `algorithm "rsa-sha2-256" does not fit a ssh-ed25519 key`},
		{"ecdsa-as-ed25519", ec, nil, func(sid []byte) []byte {
			data := marshalPublickeySignedData(sid, "u", serviceConnection, kex.KeyAlgoED25519, ec.PublicKey().Marshal())
			sig, _ := ec.Sign(rand.Reader, data, "")
			return pkRequest("u", ec.PublicKey(), kex.KeyAlgoED25519, sig)
		}, `algorithm "ssh-ed25519" does not fit a ecdsa-sha2-nistp256 key`},
		{"rsa-sha1", rs, nil, func(sid []byte) []byte {
			data := marshalPublickeySignedData(sid, "u", serviceConnection, kex.KeyAlgoRSA, rs.PublicKey().Marshal())
			return pkRequest("u", rs.PublicKey(), kex.KeyAlgoRSA, sha1RSASignature(t, keys["rsa2048"].(*rsa.PrivateKey), data))
		}, `signature algorithm "ssh-rsa" not accepted (accepted: `},
		{"rsa-sha2-256-request-with-sha2-512-signature", rs, nil, func(sid []byte) []byte {
			data := marshalPublickeySignedData(sid, "u", serviceConnection, kex.SigAlgoRSASHA256, rs.PublicKey().Marshal())
			sig, _ := rs.Sign(rand.Reader, data, kex.SigAlgoRSASHA512)
			return pkRequest("u", rs.PublicKey(), kex.SigAlgoRSASHA256, sig)
		}, `publickey rsa-sha2-256: signature of another algorithm ("rsa-sha2-512")`},
		{"rsa-sha2-256-not-allowed", rs, []string{kex.SigAlgoRSASHA512}, func(sid []byte) []byte {
			return sign(sid, rs, kex.SigAlgoRSASHA256, kex.SigAlgoRSASHA256)
		}, `signature algorithm "rsa-sha2-256" not accepted (accepted: rsa-sha2-512)`},
		{"unknown-algorithm", ed, nil, func(sid []byte) []byte {
			return pkRequest("u", ed.PublicKey(), "ssh-ed448", []byte{0, 0, 0, 1, 'x', 0, 0, 0, 0})
		}, `signature algorithm "ssh-ed448" not accepted`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc, sc := connPair(t)
			kc := &keyChecker{user: "u", key: c.key.PublicKey()}
			res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback, AllowedSigAlgs: c.allowed})
			r := rawPeer{t, cc}
			r.startUserauth()
			r.send(c.req(cc.SessionID()))
			r.expect(wire.MsgUserauthFailure)
			if n := kc.calls.Load(); n != 0 {
				t.Fatalf("callback called %d times", n)
			}
			cc.Close()
			sr := waitServe(t, res)
			if sr.err == nil || sr.perms != nil {
				t.Fatalf("Serve = %+v", sr)
			}
			// The operator learns why, as from sshd's log.
			if !strings.Contains(sr.err.Error(), c.why) || !strings.Contains(sr.err.Error(), `user "u"`) {
				t.Errorf("Serve's error %q does not say %q and the user", sr.err, c.why)
			}
		})
	}
	// The same keys with matching algorithms do work (so the failures
	// above are due to the mismatch).
	for _, s := range []kex.Signer{ed, ec, rs} {
		cc, sc := connPair(t)
		kc := &keyChecker{user: "u", key: s.PublicKey()}
		res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback})
		r := rawPeer{t, cc}
		r.startUserauth()
		r.send(sign(cc.SessionID(), s, s.Algorithms()[0], ""))
		r.expect(wire.MsgUserauthSuccess)
		if sr := waitServe(t, res); sr.err != nil {
			t.Fatal(sr.err)
		}
	}
}

// A signer that fails is skipped, and the next key is tried.
type failingSigner struct{ kex.Signer }

func (failingSigner) Sign(io.Reader, []byte, string) ([]byte, error) {
	return nil, errors.New("agent refused")
}

func TestPublicKeySignerErrorSkipsKey(t *testing.T) {
	good := mustSigner(t, newEd25519(t))
	bad := failingSigner{mustSigner(t, newEd25519(t))}
	cc, sc := connPair(t)
	accept := func(string, kex.PublicKey) (*Permissions, error) { return &Permissions{}, nil }
	res := startServe(t, sc, &ServerConfig{PublicKeyCallback: accept})
	var called bool
	err := authenticate(cc, &ClientConfig{User: "u", Methods: []Method{PublicKeysCallback(func() ([]kex.Signer, error) {
		called = true
		return []kex.Signer{bad, good}, nil
	})}})
	if err != nil || !called {
		t.Fatal(err, called)
	}
	if r := waitServe(t, res); r.err != nil {
		t.Fatal(r.err)
	}
}

// ---- password ----

func TestPassword(t *testing.T) {
	var retained []byte
	check := func(user string, pw []byte) (*Permissions, error) {
		retained = pw
		if user == "carol" && string(pw) == "hunter2" {
			return &Permissions{ForceCommand: "internal-sftp"}, nil
		}
		return nil, errors.New("secret: bad password")
	}
	t.Run("success", func(t *testing.T) {
		cc, sc := connPair(t)
		res := startServe(t, sc, &ServerConfig{PasswordCallback: check})
		if err := authenticate(cc, &ClientConfig{User: "carol", Methods: []Method{Password("hunter2")}}); err != nil {
			t.Fatal(err)
		}
		r := waitServe(t, res)
		if r.err != nil || r.user != "carol" || r.perms.ForceCommand != "internal-sftp" {
			t.Fatalf("%+v", r)
		}
		if !bytes.Equal(retained, make([]byte, len("hunter2"))) {
			t.Errorf("password slice not zeroed after the callback: %q", retained)
		}
	})
	t.Run("failure", func(t *testing.T) {
		cc, sc := connPair(t)
		res := startServe(t, sc, &ServerConfig{PasswordCallback: check})
		asked := 0
		err := authenticate(cc, &ClientConfig{User: "carol", Methods: []Method{
			PasswordCallback(func() (string, error) { asked++; return "wrong", nil }),
		}})
		var nm *NoMethodError
		if !errors.As(err, &nm) || !slices.Equal(nm.Tried, []string{"password"}) || asked != 1 {
			t.Fatalf("%v (asked %d)", err, asked)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Error("callback error reached the client")
		}
		cc.Close()
		waitServe(t, res)
	})
	t.Run("callback-error-aborts", func(t *testing.T) {
		cc, sc := connPair(t)
		res := startServe(t, sc, &ServerConfig{PasswordCallback: check})
		cancelled := errors.New("user pressed ^C")
		err := authenticate(cc, &ClientConfig{User: "carol", Methods: []Method{
			PasswordCallback(func() (string, error) { return "", cancelled }),
		}})
		if !errors.Is(err, cancelled) {
			t.Fatal(err)
		}
		cc.Close()
		waitServe(t, res)
	})
}

// Methods the server does not list are not tried.
func TestClientSkipsMethodsNotOffered(t *testing.T) {
	cc, sc := connPair(t)
	res := startServe(t, sc, &ServerConfig{PasswordCallback: func(string, []byte) (*Permissions, error) { return nil, nil }})
	rec := &recorder{Transport: cc}
	kbd := KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
		t.Error("keyboard-interactive used")
		return nil, nil
	})
	err := Authenticate(context.Background(), rec, &ClientConfig{User: "u", Methods: []Method{PublicKeys(newEd25519(t)), kbd, Password("x")}})
	if err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests(t)
	if len(reqs) != 2 || reqs[1].Method != methodPassword {
		t.Fatalf("%+v", reqs)
	}
	if r := waitServe(t, res); r.err != nil || r.perms == nil {
		t.Fatalf("%+v", r)
	}
}

// ---- keyboard-interactive ----

func TestKeyboardInteractive(t *testing.T) {
	cc, sc := connPair(t)
	res := startServe(t, sc, &ServerConfig{
		KeyboardInteractiveCallback: func(user string, challenge func(string, string, []string, []bool) ([]string, error)) (*Permissions, error) {
			a, err := challenge("Login", "Two factors.", []string{"Password: ", "Code: "}, []bool{false, true})
			if err != nil {
				return nil, err
			}
			if user != "dave" || a[0] != "pw" || a[1] != "123456" {
				return nil, errors.New("wrong")
			}
			if _, err := challenge("", "Welcome, no prompts.", nil, nil); err != nil {
				return nil, err
			}
			return &Permissions{Extensions: map[string]string{"2fa": "yes"}}, nil
		},
	})
	var rounds [][]string
	err := authenticate(cc, &ClientConfig{User: "dave", Methods: []Method{KeyboardInteractive(
		func(name, instruction string, prompts []string, echo []bool) ([]string, error) {
			rounds = append(rounds, append([]string{name, instruction}, prompts...))
			if len(prompts) == 0 {
				return nil, nil
			}
			if !slices.Equal(echo, []bool{false, true}) {
				t.Errorf("echo %v", echo)
			}
			return []string{"pw", "123456"}, nil
		})}})
	if err != nil {
		t.Fatal(err)
	}
	r := waitServe(t, res)
	if r.err != nil || r.perms.Extensions["2fa"] != "yes" {
		t.Fatalf("%+v", r)
	}
	if len(rounds) != 2 || rounds[0][0] != "Login" || rounds[0][3] != "Code: " || rounds[1][1] != "Welcome, no prompts." {
		t.Fatalf("rounds %q", rounds)
	}
}

func TestKeyboardInteractiveWrongAnswer(t *testing.T) {
	cc, sc := connPair(t)
	res := startServe(t, sc, &ServerConfig{
		KeyboardInteractiveCallback: func(user string, challenge func(string, string, []string, []bool) ([]string, error)) (*Permissions, error) {
			a, err := challenge("", "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if a[0] != "right" {
				return nil, errors.New("wrong")
			}
			return nil, nil
		},
	})
	err := authenticate(cc, &ClientConfig{User: "u", Methods: []Method{KeyboardInteractive(
		func(_, _ string, prompts []string, _ []bool) ([]string, error) { return []string{"wrong"}, nil })}})
	var nm *NoMethodError
	if !errors.As(err, &nm) || !slices.Equal(nm.Tried, []string{"keyboard-interactive"}) {
		t.Fatal(err)
	}
	cc.Close()
	waitServe(t, res)
}

// A client may drop a keyboard-interactive exchange by sending a new
// request; the server handles that request.
func TestKeyboardInteractiveAbandoned(t *testing.T) {
	cc, sc := connPair(t)
	var challengeErr error
	res := startServe(t, sc, &ServerConfig{
		PasswordCallback: func(u string, pw []byte) (*Permissions, error) {
			if string(pw) == "pw" {
				return &Permissions{}, nil
			}
			return nil, errors.New("no")
		},
		KeyboardInteractiveCallback: func(user string, challenge func(string, string, []string, []bool) ([]string, error)) (*Permissions, error) {
			_, err := challenge("", "", []string{"OTP: "}, []bool{true})
			challengeErr = err
			return &Permissions{}, nil // a careless callback ignoring the error
		},
	})
	r := rawPeer{t, cc}
	r.startUserauth()
	r.send(marshalUserauthRequest(&userauthRequest{User: "u", Service: serviceConnection, Method: methodKbdInt}))
	r.expect(msgUserauthInfoRequest)
	r.send(marshalUserauthRequest(&userauthRequest{User: "u", Service: serviceConnection, Method: methodPassword, Password: []byte("bad")}))
	r.expect(wire.MsgUserauthFailure)
	r.send(marshalUserauthRequest(&userauthRequest{User: "u", Service: serviceConnection, Method: methodPassword, Password: []byte("pw")}))
	r.expect(wire.MsgUserauthSuccess)
	sr := waitServe(t, res)
	if sr.err != nil || !errors.Is(challengeErr, errKbdIntAbandoned) {
		t.Fatalf("%+v, challenge error %v", sr, challengeErr)
	}
}

// Wrong answer counts are a protocol error.
func TestKeyboardInteractiveAnswerCount(t *testing.T) {
	cc, sc := connPair(t)
	res := startServe(t, sc, &ServerConfig{
		KeyboardInteractiveCallback: func(user string, challenge func(string, string, []string, []bool) ([]string, error)) (*Permissions, error) {
			_, err := challenge("", "", []string{"a", "b"}, nil)
			return &Permissions{}, err
		},
	})
	r := rawPeer{t, cc}
	r.startUserauth()
	r.send(marshalUserauthRequest(&userauthRequest{User: "u", Service: serviceConnection, Method: methodKbdInt}))
	r.expect(msgUserauthInfoRequest)
	r.send(marshalUserauthInfoResponse([]string{"only one"}))
	sr := waitServe(t, res)
	var de *DisconnectError
	if !errors.As(sr.err, &de) || sr.perms != nil {
		t.Fatalf("%+v", sr)
	}
}

// ---- limits and protocol errors ----

func TestMaxAuthTries(t *testing.T) {
	cc, sc := connPair(t)
	kc := &keyChecker{user: "u", key: pubOf(t, newEd25519(t))}
	res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback, MaxAuthTries: 3})
	var keys []crypto.Signer
	for range 6 {
		keys = append(keys, newEd25519(t))
	}
	err := authenticate(cc, &ClientConfig{User: "u", Methods: []Method{PublicKeys(keys...)}})
	var td *transport.DisconnectError
	if !errors.As(err, &td) || !td.FromPeer || td.Reason != wire.DisconnectProtocolError ||
		!strings.Contains(td.Message, "Too many authentication failures") {
		t.Fatalf("client: %v", err)
	}
	r := waitServe(t, res)
	var de *DisconnectError
	if !errors.As(r.err, &de) || de.Reason != wire.DisconnectProtocolError || de.Message != "Too many authentication failures" {
		t.Fatalf("server: %v", r.err)
	}
	if n := kc.calls.Load(); n != 3 {
		t.Errorf("callback called %d times, want 3", n)
	}
}

// "none" and accepted queries do not count as failures, but they are
// bounded too.
func TestRequestsBounded(t *testing.T) {
	cc, sc := connPair(t)
	res := startServe(t, sc, &ServerConfig{PasswordCallback: rejectPassword, MaxAuthTries: 2})
	r := rawPeer{t, cc}
	r.startUserauth()
	none := marshalUserauthRequest(&userauthRequest{User: "u", Service: serviceConnection, Method: methodNone})
	n := 0
	for ; n < 1000; n++ {
		r.send(none)
		p, err := r.recv()
		if err != nil {
			break
		}
		if p[0] != wire.MsgUserauthFailure {
			t.Fatalf("got %s", msgName(p[0]))
		}
	}
	if n >= 1000 || n < 2 {
		t.Fatalf("server answered %d none requests", n)
	}
	var de *DisconnectError
	if sr := waitServe(t, res); !errors.As(sr.err, &de) {
		t.Fatal(sr.err)
	}
}

func TestBanner(t *testing.T) {
	cc, sc := connPair(t)
	res := startServe(t, sc, &ServerConfig{Banner: "Authorized use only.\n", PasswordCallback: func(string, []byte) (*Permissions, error) { return &Permissions{}, nil }})
	var got []string
	err := authenticate(cc, &ClientConfig{User: "u", Banner: func(m string) { got = append(got, m) }, Methods: []Method{Password("x")}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"Authorized use only.\n"}) {
		t.Fatalf("banners %q", got)
	}
	waitServe(t, res)
}

func TestConnectionMessageBeforeAuth(t *testing.T) {
	for _, afterService := range []bool{false, true} {
		for _, msg := range []byte{wire.MsgGlobalRequest, wire.MsgChannelOpen, wire.MsgChannelData, 127} {
			cc, sc := connPair(t)
			res := startServe(t, sc, &ServerConfig{PasswordCallback: rejectPassword, NoneAllowed: false})
			r := rawPeer{t, cc}
			if afterService {
				r.startUserauth()
				r.send(marshalUserauthRequest(&userauthRequest{User: "u", Service: serviceConnection, Method: methodNone}))
				r.expect(wire.MsgUserauthFailure)
			}
			r.send(wire.AppendUint32([]byte{msg}, 0))
			sr := waitServe(t, res)
			var de *DisconnectError
			if !errors.As(sr.err, &de) || de.Reason != wire.DisconnectProtocolError || sr.perms != nil {
				t.Fatalf("message %d (after service %v): %+v", msg, afterService, sr)
			}
			_, err := r.recv()
			var td *transport.DisconnectError
			if !errors.As(err, &td) || td.Reason != wire.DisconnectProtocolError {
				t.Fatalf("client saw %v", err)
			}
		}
	}
}

func TestServiceAndUserChecks(t *testing.T) {
	none := func(user, service string) []byte {
		return marshalUserauthRequest(&userauthRequest{User: user, Service: service, Method: methodNone})
	}
	cases := []struct {
		name   string
		reason uint32
		run    func(r rawPeer)
	}{
		{"wrong-service-request", wire.DisconnectServiceNotAvailable, func(r rawPeer) {
			r.send(marshalServiceRequest("ssh-connection"))
		}},
		{"wrong-service-in-request", wire.DisconnectServiceNotAvailable, func(r rawPeer) {
			r.startUserauth()
			r.send(none("u", "ssh-userauth"))
		}},
		{"user-change", wire.DisconnectProtocolError, func(r rawPeer) {
			r.startUserauth()
			r.send(none("alice", serviceConnection))
			r.expect(wire.MsgUserauthFailure)
			r.send(none("root", serviceConnection))
		}},
		{"request-before-service", wire.DisconnectProtocolError, func(r rawPeer) {
			r.send(none("u", serviceConnection))
		}},
		{"control-chars-in-user", wire.DisconnectProtocolError, func(r rawPeer) {
			r.startUserauth()
			r.send(none("u\x1b[2J", serviceConnection))
		}},
		{"long-user", wire.DisconnectProtocolError, func(r rawPeer) {
			r.startUserauth()
			r.send(none(strings.Repeat("u", 1000), serviceConnection))
		}},
		{"second-service-request", wire.DisconnectProtocolError, func(r rawPeer) {
			r.startUserauth()
			r.send(marshalServiceRequest(serviceUserauth))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc, sc := connPair(t)
			res := startServe(t, sc, &ServerConfig{PasswordCallback: rejectPassword})
			c.run(rawPeer{t, cc})
			sr := waitServe(t, res)
			var de *DisconnectError
			if !errors.As(sr.err, &de) || de.Reason != c.reason {
				t.Fatalf("%+v", sr)
			}
		})
	}
}

func TestNoneAllowed(t *testing.T) {
	cc, sc := connPair(t)
	res := startServe(t, sc, &ServerConfig{NoneAllowed: true})
	if err := authenticate(cc, &ClientConfig{User: "anon"}); err != nil {
		t.Fatal(err)
	}
	if r := waitServe(t, res); r.err != nil || r.user != "anon" || r.perms == nil {
		t.Fatalf("%+v", r)
	}
}

func TestServeContextCancel(t *testing.T) {
	cc, sc := connPair(t)
	_ = cc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := Serve(ctx, sc, &ServerConfig{PasswordCallback: rejectPassword})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestServeDeadlineMidAuth(t *testing.T) {
	cc, sc := connPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := Serve(ctx, sc, &ServerConfig{PasswordCallback: rejectPassword})
		done <- err
	}()
	r := rawPeer{t, cc}
	r.startUserauth()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return at the deadline")
	}
}

func TestAuthenticateContextCancel(t *testing.T) {
	cc, sc := connPair(t)
	_ = sc // the server never answers
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Authenticate(ctx, cc, &ClientConfig{User: "u", Methods: []Method{Password("x")}})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Authenticate did not return after cancel")
	}
}

// ---- client against scripted servers ----

// scriptedServer accepts the service and then answers each request with
// reply(request).
func scriptedServer(t *testing.T, sc *transport.Conn, reply func(req *userauthRequest) [][]byte) {
	r := rawPeer{t, sc}
	go func() {
		p, err := sc.ReadPacket()
		if err != nil || p[0] != wire.MsgServiceRequest {
			return
		}
		if sc.WritePacket(marshalServiceAccept(serviceUserauth)) != nil {
			return
		}
		for {
			p, err := sc.ReadPacket()
			if err != nil {
				return
			}
			req, err := parseUserauthRequest(p)
			if err != nil {
				t.Errorf("server got %v", err)
				return
			}
			for _, m := range reply(req) {
				if r.c.WritePacket(m) != nil {
					return
				}
			}
		}
	}()
}

// TestClientFirstRequestPipelined: the first USERAUTH_REQUEST, a quiet
// key's signed publickey request, goes out right behind SERVICE_REQUEST,
// before the accept: a server that answers only once it has both
// (which a client waiting for SERVICE_ACCEPT would never give it) logs
// the client in.
func TestClientFirstRequestPipelined(t *testing.T) {
	cc, sc := connPair(t)
	k := newEd25519(t)
	pub := pubOf(t, k)
	go func() {
		r := rawPeer{t, sc}
		if p, err := r.recv(); err != nil || p[0] != wire.MsgServiceRequest {
			t.Errorf("first message %v, %v", p, err)
			return
		}
		p, err := r.recv()
		if err != nil {
			t.Error(err)
			return
		}
		req, err := parseUserauthRequest(p)
		if err != nil || req.Method != methodPubkey || !req.HasSig ||
			pub.Verify(marshalPublickeySignedData(sc.SessionID(), req.User, req.Service, req.Algorithm, req.PubKey), req.Signature) != nil {
			t.Errorf("request before the accept: %+v, %v", req, err)
			return
		}
		r.send(marshalServiceAccept(serviceUserauth))
		r.send(marshalUserauthSuccess())
	}()
	if err := authenticate(cc, &ClientConfig{User: "u", Methods: []Method{PublicKeys(k)}}); err != nil {
		t.Fatal(err)
	}
}

// TestClientFirstRequests: what goes out first in each case. No "none"
// when publickey comes first; a quiet key refused is followed by queries
// for the others; a server that takes no public key says which methods
// it does take in its answer to the first request.
func TestClientFirstRequests(t *testing.T) {
	right, wrong := newEd25519(t), newEd25519(t)
	for _, c := range []struct {
		name    string
		methods []Method
		allowed []string // the server's methods
		want    string   // method/signed of each request
	}{
		{"quiet key", []Method{PublicKeys(right)}, []string{methodPubkey}, "publickey/signed"},
		{"quiet wrong key first", []Method{PublicKeys(wrong, right)}, []string{methodPubkey},
			"publickey/signed publickey/query publickey/signed"},
		{"loud key", []Method{PublicKeySigners(loudSigner{mustSigner(t, right)})}, []string{methodPubkey},
			"publickey/query publickey/signed"},
		{"password server", []Method{PublicKeys(wrong), Password("pw")}, []string{methodPassword},
			"publickey/signed password/signed"},
		{"no key", []Method{PublicKeys(), Password("pw")}, []string{methodPassword},
			"none/query password/signed"},
		{"password first", []Method{Password("pw"), PublicKeys(right)}, []string{methodPassword},
			"none/query password/signed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc, sc := connPair(t)
			var mu sync.Mutex
			var got []string
			scriptedServer(t, sc, func(req *userauthRequest) [][]byte {
				what := "query"
				if req.HasSig || req.Method == methodPassword {
					what = "signed"
				}
				mu.Lock()
				got = append(got, req.Method+"/"+what)
				mu.Unlock()
				switch {
				case !slices.Contains(c.allowed, req.Method):
				case req.Method == methodPassword:
					return [][]byte{marshalUserauthSuccess()}
				case !bytes.Equal(req.PubKey, pubOf(t, right).Marshal()):
				case !req.HasSig:
					return [][]byte{marshalUserauthPKOK(req.Algorithm, req.PubKey)}
				default:
					return [][]byte{marshalUserauthSuccess()}
				}
				return [][]byte{failure(false, c.allowed...)}
			})
			if err := authenticate(cc, &ClientConfig{User: "u", Methods: c.methods}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(got, " ") != c.want {
				t.Errorf("requests %q, want %q", strings.Join(got, " "), c.want)
			}
		})
	}
}

func failure(partial bool, methods ...string) []byte {
	return marshalUserauthFailure(&userauthFailure{Methods: methods, PartialSuccess: partial})
}

func TestClientPartialSuccess(t *testing.T) {
	cc, sc := connPair(t)
	k := mustSigner(t, newEd25519(t))
	var steps []string
	scriptedServer(t, sc, func(req *userauthRequest) [][]byte {
		steps = append(steps, req.Method)
		switch {
		case req.Method == methodNone:
			return [][]byte{failure(false, methodPubkey)}
		case req.Method == methodPubkey && !req.HasSig:
			return [][]byte{marshalUserauthPKOK(req.Algorithm, req.PubKey)}
		case req.Method == methodPubkey:
			data := marshalPublickeySignedData(sc.SessionID(), req.User, req.Service, req.Algorithm, req.PubKey)
			if k.PublicKey().Verify(data, req.Signature) != nil {
				return [][]byte{failure(false, methodPubkey)}
			}
			return [][]byte{failure(true, methodPassword)}
		case req.Method == methodPassword && string(req.Password) == "pw":
			return [][]byte{marshalUserauthSuccess()}
		}
		return [][]byte{failure(false, methodPassword)}
	})
	err := authenticate(cc, &ClientConfig{User: "u", Methods: []Method{PasswordCallback(func() (string, error) { return "pw", nil }), PublicKeySigners(k)}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(steps, []string{"none", "publickey", "publickey", "password"}) {
		t.Fatalf("steps %v", steps)
	}
}

func TestClientPasswordChangeRequest(t *testing.T) {
	cc, sc := connPair(t)
	scriptedServer(t, sc, func(req *userauthRequest) [][]byte {
		if req.Method == methodPassword {
			return [][]byte{wire.AppendString(wire.AppendString([]byte{msgUserauthPasswdChangereq}, "Password expired"), "")}
		}
		return [][]byte{failure(false, methodPassword)}
	})
	err := authenticate(cc, &ClientConfig{User: "u", Methods: []Method{Password("old")}})
	var nm *NoMethodError
	if !errors.As(err, &nm) || !strings.Contains(err.Error(), "password change") || !strings.Contains(err.Error(), "Password expired") {
		t.Fatal(err)
	}
}

func TestClientBannersBounded(t *testing.T) {
	cc, sc := connPair(t)
	scriptedServer(t, sc, func(req *userauthRequest) [][]byte {
		var out [][]byte
		for range maxBanners + 5 {
			out = append(out, marshalUserauthBanner("spam"))
		}
		return append(out, failure(false, methodPassword))
	})
	n := 0
	err := authenticate(cc, &ClientConfig{User: "u", Banner: func(string) { n++ }, Methods: []Method{Password("x")}})
	if err == nil || !strings.Contains(err.Error(), "banners") || n != maxBanners {
		t.Fatalf("%v after %d banners", err, n)
	}
}

func TestClientRejectsUnexpectedMessages(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply []byte
	}{
		{"channel-open", wire.AppendString([]byte{wire.MsgChannelOpen}, "x")},
		{"pk-ok-to-none", marshalUserauthPKOK("ssh-ed25519", []byte("k"))},
		{"malformed-failure", []byte{wire.MsgUserauthFailure, 0}},
		{"success-with-trailing-bytes", []byte{wire.MsgUserauthSuccess, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc, sc := connPair(t)
			scriptedServer(t, sc, func(*userauthRequest) [][]byte { return [][]byte{c.reply} })
			err := authenticate(cc, &ClientConfig{User: "u", Methods: []Method{Password("x")}})
			var de *DisconnectError
			if !errors.As(err, &de) || de.Reason != wire.DisconnectProtocolError {
				t.Fatal(err)
			}
		})
	}
}

// PK_OK must echo the key that was offered.
func TestClientRejectsMismatchedPKOK(t *testing.T) {
	cc, sc := connPair(t)
	other := pubOf(t, newEd25519(t))
	scriptedServer(t, sc, func(req *userauthRequest) [][]byte {
		if req.Method == methodPubkey {
			return [][]byte{marshalUserauthPKOK(req.Algorithm, other.Marshal())}
		}
		return [][]byte{failure(false, methodPubkey)}
	})
	err := authenticate(cc, &ClientConfig{User: "u", Methods: []Method{PublicKeys(newEd25519(t))}})
	var de *DisconnectError
	if !errors.As(err, &de) {
		t.Fatal(err)
	}
}

// A PK_OK that names another algorithm of the offered key (node ssh2's
// server answers an rsa-sha2-512 query with ssh-rsa) is accepted when the
// key blob is the one offered, and the signature is made with the
// algorithm asked for; a name of another key type is still refused.
func TestClientPKOKNamesAnotherAlgorithmOfTheKey(t *testing.T) {
	rsaKey := userKeys(t)["rsa2048"]
	for _, c := range []struct {
		name     string
		key      crypto.Signer
		sigAlgs  []string // the server's server-sig-algs
		okAlgo   string   // the name in PK_OK
		wantAlgo string   // the algorithm of the query and the signature; "" if refused
	}{
		{"rsa-sha2-512 answered ssh-rsa", rsaKey, nil, kex.KeyAlgoRSA, kex.SigAlgoRSASHA512},
		{"rsa-sha2-256 answered ssh-rsa", rsaKey, []string{kex.SigAlgoRSASHA256}, kex.KeyAlgoRSA, kex.SigAlgoRSASHA256},
		{"rsa-sha2-512 answered rsa-sha2-256", rsaKey, nil, kex.SigAlgoRSASHA256, kex.SigAlgoRSASHA512},
		{"rsa-sha2-512 answered ssh-ed25519", rsaKey, nil, kex.KeyAlgoED25519, ""},
		{"rsa-sha2-512 answered unknown", rsaKey, nil, "ssh-rsa-cert-v01@openssh.com", ""},
		{"ssh-ed25519 answered ssh-rsa", userKeys(t)["ed25519"], nil, kex.KeyAlgoRSA, ""},
		{"ecdsa-sha2-nistp256 answered ecdsa-sha2-nistp384", userKeys(t)["ecdsa-p256"], nil, kex.KeyAlgoECDSA384, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc, sc := connPair(t)
			pub := pubOf(t, c.key)
			var mu sync.Mutex
			var queried, signed string
			scriptedServer(t, sc, func(req *userauthRequest) [][]byte {
				if req.Method != methodPubkey {
					return [][]byte{failure(false, methodPubkey)}
				}
				if !req.HasSig {
					mu.Lock()
					queried = req.Algorithm
					mu.Unlock()
					return [][]byte{marshalUserauthPKOK(c.okAlgo, req.PubKey)}
				}
				data := marshalPublickeySignedData(sc.SessionID(), req.User, req.Service, req.Algorithm, req.PubKey)
				sigAlgo, _ := parseSignatureAlgorithm(req.Signature)
				mu.Lock()
				signed = req.Algorithm + "/" + sigAlgo
				mu.Unlock()
				if sigAlgo != req.Algorithm || pub.Verify(data, req.Signature) != nil {
					return [][]byte{failure(false, methodPubkey)}
				}
				return [][]byte{marshalUserauthSuccess()}
			})
			// Asked about first (a quiet key offered first is signed at
			// once, with no PK_OK).
			cfg := &ClientConfig{User: "u", Methods: []Method{PublicKeySigners(loudSigner{mustSigner(t, c.key)})}}
			if c.sigAlgs != nil {
				cfg.ServerSigAlgs = func() []string { return c.sigAlgs }
			}
			err := authenticate(cc, cfg)
			mu.Lock()
			defer mu.Unlock()
			if c.wantAlgo == "" {
				var de *DisconnectError
				if !errors.As(err, &de) || de.Reason != wire.DisconnectProtocolError || signed != "" {
					t.Fatalf("got %v (signed %q), want a protocol error and no signature", err, signed)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if queried != c.wantAlgo || signed != c.wantAlgo+"/"+c.wantAlgo {
				t.Fatalf("queried %s, signed %s; want %s for both", queried, signed, c.wantAlgo)
			}
		})
	}
}

func TestClientInvalidUser(t *testing.T) {
	cc, _ := connPair(t)
	for _, u := range []string{"a\nb", strings.Repeat("x", maxUserLen+1), "\xff"} {
		if err := Authenticate(context.Background(), cc, &ClientConfig{User: u}); err == nil {
			t.Errorf("user %q accepted", u)
		}
	}
}

// ---- interoperability ----

// golang.org/x/crypto/ssh's client logs in to our server. Its
// NewClientConn returns once authentication succeeded.
func TestInteropXCryptoClient(t *testing.T) {
	keys := userKeys(t)
	for _, c := range []struct {
		name string
		auth func(t *testing.T) (ssh.AuthMethod, *ServerConfig)
	}{
		{"publickey-ed25519", func(t *testing.T) (ssh.AuthMethod, *ServerConfig) { return xPubkey(t, keys["ed25519"]) }},
		{"publickey-ecdsa", func(t *testing.T) (ssh.AuthMethod, *ServerConfig) { return xPubkey(t, keys["ecdsa-p256"]) }},
		{"publickey-rsa", func(t *testing.T) (ssh.AuthMethod, *ServerConfig) { return xPubkey(t, keys["rsa2048"]) }},
		{"password", func(t *testing.T) (ssh.AuthMethod, *ServerConfig) {
			return ssh.Password("pw"), &ServerConfig{PasswordCallback: func(u string, pw []byte) (*Permissions, error) {
				if u == "xuser" && string(pw) == "pw" {
					return &Permissions{}, nil
				}
				return nil, errors.New("no")
			}}
		}},
		{"keyboard-interactive", func(t *testing.T) (ssh.AuthMethod, *ServerConfig) {
			return ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
					if len(questions) == 1 && questions[0] == "Code: " && echos[0] {
						return []string{"42"}, nil
					}
					return make([]string, len(questions)), nil
				}), &ServerConfig{KeyboardInteractiveCallback: func(u string, ch func(string, string, []string, []bool) ([]string, error)) (*Permissions, error) {
					a, err := ch("n", "i", []string{"Code: "}, []bool{true})
					if err != nil || a[0] != "42" {
						return nil, errors.New("no")
					}
					return &Permissions{}, nil
				}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			method, scfg := c.auth(t)
			scfg.Banner = "hello from rsftp\n"
			ca, cb := testTCPPair(t)
			type cres struct {
				banner string
				err    error
			}
			done := make(chan cres, 1)
			go func() {
				var banner string
				ccfg := &ssh.ClientConfig{User: "xuser", Auth: []ssh.AuthMethod{method},
					HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
					BannerCallback: func(m string) error { banner = m; return nil }}
				conn, _, _, err := ssh.NewClientConn(ca, "x", ccfg)
				if err == nil {
					conn.Close()
				}
				done <- cres{banner, err}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sc, err := transport.NewServerConn(ctx, cb, &transport.Config{HostKeys: []kex.Signer{testHostKey(t)}})
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			user, perms, err := Serve(ctx, sc, scfg)
			if err != nil || user != "xuser" || perms == nil {
				t.Fatalf("Serve = %q %+v %v", user, perms, err)
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("x/crypto/ssh client: %v", r.err)
			}
			if r.banner != "hello from rsftp\n" {
				t.Errorf("banner %q", r.banner)
			}
		})
	}
}

func xPubkey(t *testing.T, k crypto.Signer) (ssh.AuthMethod, *ServerConfig) {
	xs, err := ssh.NewSignerFromSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	kc := &keyChecker{user: "xuser", key: pubOf(t, k)}
	return ssh.PublicKeys(xs), &ServerConfig{PublicKeyCallback: kc.callback}
}

// Our client logs in to golang.org/x/crypto/ssh's server.
func TestInteropXCryptoServer(t *testing.T) {
	keys := userKeys(t)
	_, hpriv, _ := ed25519.GenerateKey(rand.Reader)
	hk, _ := ssh.NewSignerFromSigner(hpriv)
	for _, c := range []struct {
		name   string
		method Method
	}{
		{"publickey-ed25519", PublicKeys(keys["ed25519"])},
		{"publickey-ecdsa", PublicKeys(keys["ecdsa-p256"])},
		{"publickey-rsa", PublicKeys(newEd25519(t), keys["rsa2048"])},
		{"password", Password("pw")},
		{"keyboard-interactive", KeyboardInteractive(func(_, _ string, prompts []string, _ []bool) ([]string, error) {
			return []string{"42"}, nil
		})},
	} {
		t.Run(c.name, func(t *testing.T) {
			scfg := &ssh.ServerConfig{
				BannerCallback: func(ssh.ConnMetadata) string { return "x banner" },
				PublicKeyCallback: func(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
					for _, k := range []crypto.Signer{keys["ed25519"], keys["ecdsa-p256"], keys["rsa2048"]} {
						if bytes.Equal(key.Marshal(), pubOf(t, k).Marshal()) && md.User() == "u" {
							return &ssh.Permissions{}, nil
						}
					}
					return nil, errors.New("unknown key")
				},
				PasswordCallback: func(md ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
					if string(pw) == "pw" {
						return &ssh.Permissions{}, nil
					}
					return nil, errors.New("no")
				},
				KeyboardInteractiveCallback: func(md ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
					a, err := ch("u", "instr", []string{"Code: "}, []bool{false})
					if err != nil || a[0] != "42" {
						return nil, errors.New("no")
					}
					return &ssh.Permissions{}, nil
				},
			}
			scfg.AddHostKey(hk)
			ca, cb := testTCPPair(t)
			done := make(chan error, 1)
			go func() {
				conn, chans, reqs, err := ssh.NewServerConn(cb, scfg)
				if err == nil {
					go ssh.DiscardRequests(reqs)
					go func() {
						for range chans {
						}
					}()
					conn.Close()
				}
				done <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cc, err := transport.NewClientConn(ctx, ca, &transport.Config{HostKeyCallback: func(kex.PublicKey) error { return nil }})
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			var banner string
			if err := Authenticate(ctx, cc, &ClientConfig{User: "u", Methods: []Method{c.method},
				ServerSigAlgs: cc.ServerSigAlgs, Banner: func(m string) { banner = m }}); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("x/crypto/ssh server: %v", err)
			}
			if banner != "x banner" {
				t.Errorf("banner %q", banner)
			}
		})
	}
}

// Our client logs in to OpenSSH's sshd with each key type, and a wrong
// key gets a NoMethodError.
func TestInteropOpenSSHServer(t *testing.T) {
	keys := userKeys(t)
	var ak strings.Builder
	for _, name := range []string{"ed25519", "ecdsa-p256", "rsa2048"} {
		ak.WriteString(kex.MarshalAuthorizedKey(pubOf(t, keys[name])) + " " + name + "\n")
	}
	sshd := sshtest.StartSshd(t, ak.String(), "Banner none")
	user := sshtest.User(t)
	dial := func(t *testing.T) *transport.Conn {
		nc, err := net.Dial("tcp", sshd.Addr())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cc, err := transport.NewClientConn(ctx, nc, &transport.Config{HostKeyCallback: func(kex.PublicKey) error { return nil }})
		if err != nil {
			nc.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	for _, name := range []string{"ed25519", "ecdsa-p256", "rsa2048"} {
		t.Run(name, func(t *testing.T) {
			cc := dial(t)
			rec := &recorder{Transport: cc}
			err := Authenticate(context.Background(), rec, &ClientConfig{User: user,
				Methods: []Method{PublicKeys(newEd25519(t), keys[name])}, ServerSigAlgs: cc.ServerSigAlgs})
			if err != nil {
				t.Fatal(err)
			}
			reqs := rec.requests(t)
			last := reqs[len(reqs)-1]
			if name == "rsa2048" && last.Algorithm != kex.SigAlgoRSASHA512 {
				t.Errorf("RSA signed with %s", last.Algorithm)
			}
		})
	}
	t.Run("wrong-key", func(t *testing.T) {
		cc := dial(t)
		err := Authenticate(context.Background(), cc, &ClientConfig{User: user,
			Methods: []Method{PublicKeys(newEd25519(t)), Password("x")}, ServerSigAlgs: cc.ServerSigAlgs})
		var nm *NoMethodError
		if !errors.As(err, &nm) || !slices.Contains(nm.Allowed, "publickey") || slices.Contains(nm.Allowed, "password") {
			t.Fatalf("%v", err)
		}
		t.Log(err)
	})
}

// TestServeSaysWhyUnauthenticated: a client that tries a key the server
// does not authorize and then drops the connection leaves an error that
// says so in words, with the user and the key's fingerprint, where it
// said "auth: transport: reading: EOF".
func TestServeSaysWhyUnauthenticated(t *testing.T) {
	keys := userKeys(t)
	ed := mustSigner(t, keys["ed25519"])
	other := mustSigner(t, newEd25519(t))
	cc, sc := connPair(t)
	kc := &keyChecker{user: "u", key: other.PublicKey()}
	res := startServe(t, sc, &ServerConfig{PublicKeyCallback: kc.callback})
	r := rawPeer{t, cc}
	r.startUserauth()
	r.send(signedPKRequest(t, cc.SessionID(), "u", ed, kex.KeyAlgoED25519))
	r.expect(wire.MsgUserauthFailure)
	cc.Abort() // no DISCONNECT: the TCP connection just ends
	sr := waitServe(t, res)
	if sr.err == nil {
		t.Fatal("Serve succeeded")
	}
	for _, want := range []string{"connection closed by the client before it authenticated", `user "u"`, kex.FingerprintSHA256(ed.PublicKey())} {
		if !strings.Contains(sr.err.Error(), want) {
			t.Errorf("Serve's error %q does not say %q", sr.err, want)
		}
	}
}

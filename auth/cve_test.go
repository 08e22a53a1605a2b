package auth

// Regression tests named after the CVEs whose attack classes they cover.
// Each one drives Serve in memory with a scripted client (scriptTransport,
// built on fakeTransport from fuzz_test.go) so that it can see every
// packet the server wrote and whether it declared the connection
// authenticated. Related older tests: TestConnectionMessageBeforeAuth,
// TestPublicKeyQueryNeverAuthorizes (userauth_test.go), TestEd25519Lengths
// (kex/keys_test.go).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// scriptTransport replays the client's packets (fakeTransport) and keeps
// what the server writes and whether it was told that authentication
// succeeded (the SetAuthenticated hook transport.Conn implements).
type scriptTransport struct {
	fakeTransport
	sent          [][]byte
	authenticated bool
}

func (s *scriptTransport) WritePacket(p []byte) error {
	s.sent = append(s.sent, bytes.Clone(p))
	return nil
}

func (s *scriptTransport) SetAuthenticated() { s.authenticated = true }

// sentTypes lists the message numbers the server wrote.
func (s *scriptTransport) sentTypes() []byte {
	var ts []byte
	for _, p := range s.sent {
		ts = append(ts, p[0])
	}
	return ts
}

var cveSessionID = bytes.Repeat([]byte{0x5e}, 32)

// runScript runs Serve over the scripted client packets.
func runScript(cfg *ServerConfig, packets ...[]byte) (*scriptTransport, serveResult) {
	st := &scriptTransport{fakeTransport: fakeTransport{in: packets, sid: cveSessionID}}
	user, perms, err := Serve(context.Background(), st, cfg)
	return st, serveResult{user, perms, err}
}

func noneRequest(user string) []byte {
	return marshalUserauthRequest(&userauthRequest{User: user, Service: serviceConnection, Method: methodNone})
}

func passwordRequest(user, pw string) []byte {
	return marshalUserauthRequest(&userauthRequest{User: user, Service: serviceConnection, Method: methodPassword, Password: []byte(pw)})
}

func kbdIntRequest(user string) []byte {
	return marshalUserauthRequest(&userauthRequest{User: user, Service: serviceConnection, Method: methodKbdInt})
}

// rawPKRequest is a publickey request with a hand-made key blob.
func rawPKRequest(user string, blob []byte, sig []byte) []byte {
	return marshalUserauthRequest(&userauthRequest{
		User: user, Service: serviceConnection, Method: methodPubkey,
		Algorithm: kex.KeyAlgoED25519, PubKey: blob, HasSig: sig != nil, Signature: sig,
	})
}

func ed25519KeyBlob(raw []byte) []byte {
	return wire.AppendBytes(wire.AppendString(nil, kex.KeyAlgoED25519), raw)
}

func ed25519SigBlob(raw []byte) []byte {
	return wire.AppendBytes(wire.AppendString(nil, kex.KeyAlgoED25519), raw)
}

// acceptPassword logs in user "u" with password "pw" and nothing else.
func acceptPassword(user string, pw []byte) (*Permissions, error) {
	if user == "u" && string(pw) == "pw" {
		return &Permissions{Extensions: map[string]string{"via": "password"}}, nil
	}
	return nil, errors.New("no")
}

// mustNotAuthenticate checks that Serve refused the connection with a
// protocol error and granted nothing.
func mustNotAuthenticate(t *testing.T, st *scriptTransport, r serveResult) {
	t.Helper()
	var de *DisconnectError
	if !errors.As(r.err, &de) || de.Reason != wire.DisconnectProtocolError {
		t.Errorf("Serve error = %v, want a protocol-error disconnect", r.err)
	}
	if r.user != "" || r.perms != nil {
		t.Errorf("Serve granted user %q perms %+v", r.user, r.perms)
	}
	if st.authenticated {
		t.Error("the transport was told authentication succeeded")
	}
	if bytes.IndexByte(st.sentTypes(), wire.MsgUserauthSuccess) >= 0 {
		t.Errorf("server sent USERAUTH_SUCCESS (sent %v)", st.sentTypes())
	}
}

// CVE-2020-9283 (golang.org/x/crypto/ssh): an ed25519 public key or
// signature of the wrong length reached crypto/ed25519, which panics on a
// short key: a pre-authentication crash. Keys and signatures of 0, 31, 33
// and 65 bytes (and other wrong sizes) must be refused with an error
// wherever auth meets them: publickey requests, authorized_keys,
// known_hosts, private key files and agent identity lists.
func TestCVE_2020_9283_Ed25519WrongLength(t *testing.T) {
	good := mustSigner(t, newEd25519(t))
	goodBlob := good.PublicKey().Marshal()
	goodRaw := []byte(good.PublicKey().CryptoPublicKey().(ed25519.PublicKey))
	keyOfLen := func(n int) []byte {
		k := make([]byte, n)
		for i := range k {
			k[i] = goodRaw[i%len(goodRaw)]
		}
		return k
	}
	badLens := []int{0, 31, 33, 64 + 1}

	t.Run("publickey-auth", func(t *testing.T) {
		calls := 0
		cfg := &ServerConfig{
			// Accepts any key it is shown: only the length checks stand
			// between a malformed key and the callback.
			PublicKeyCallback: func(string, kex.PublicKey) (*Permissions, error) {
				calls++
				return &Permissions{}, nil
			},
			MaxAuthTries: 100,
		}
		script := [][]byte{marshalServiceRequest(serviceUserauth)}
		var want []byte
		for _, n := range badLens {
			blob := ed25519KeyBlob(keyOfLen(n))
			// A query, and a signed request with a well-formed 64-byte
			// signature made by the good key over this blob.
			data := marshalPublickeySignedData(cveSessionID, "u", serviceConnection, kex.KeyAlgoED25519, blob)
			sig, err := good.Sign(rand.Reader, data, kex.KeyAlgoED25519)
			if err != nil {
				t.Fatal(err)
			}
			script = append(script, rawPKRequest("u", blob, nil), rawPKRequest("u", blob, sig))
			want = append(want, wire.MsgUserauthFailure, wire.MsgUserauthFailure)
		}
		// The good key with signatures of the wrong length.
		data := marshalPublickeySignedData(cveSessionID, "u", serviceConnection, kex.KeyAlgoED25519, goodBlob)
		realSig, err := good.Sign(rand.Reader, data, kex.KeyAlgoED25519)
		if err != nil {
			t.Fatal(err)
		}
		rd := wire.NewReader(realSig)
		_ = rd.String()
		rawSig := rd.Bytes()
		if len(rawSig) != ed25519.SignatureSize {
			t.Fatalf("signature of %d bytes", len(rawSig))
		}
		for _, n := range []int{0, 31, 33, 63, 64 + 1, 128} {
			s := make([]byte, n)
			copy(s, rawSig)
			script = append(script, rawPKRequest("u", goodBlob, ed25519SigBlob(s)))
			want = append(want, wire.MsgUserauthFailure)
		}
		// The server is still standing and still checks properly.
		script = append(script, signedPKRequest(t, cveSessionID, "u", good, kex.KeyAlgoED25519))
		want = append(want, wire.MsgUserauthSuccess)

		st, r := runScript(cfg, script...)
		if r.err != nil || r.user != "u" || r.perms == nil {
			t.Fatalf("Serve = %+v", r)
		}
		want = append([]byte{wire.MsgServiceAccept}, want...)
		if got := st.sentTypes(); !bytes.Equal(got, want) {
			t.Errorf("server sent %v, want %v (no PK_OK for a malformed key)", got, want)
		}
		if calls != 1 {
			t.Errorf("PublicKeyCallback called %d times, want 1 (only for the good key)", calls)
		}
	})

	t.Run("authorized_keys", func(t *testing.T) {
		var file strings.Builder
		for _, n := range badLens {
			fmt.Fprintf(&file, "ssh-ed25519 %s bad-%d\n", base64.StdEncoding.EncodeToString(ed25519KeyBlob(keyOfLen(n))), n)
		}
		fmt.Fprintf(&file, "%s good\n", kex.MarshalAuthorizedKey(good.PublicKey()))
		keys, err := ParseAuthorizedKeys([]byte(file.String()))
		if err == nil {
			t.Error("no error for wrong-length ed25519 keys")
		}
		for i := range badLens {
			if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("line %d:", i+1)) {
				t.Errorf("error does not name line %d: %v", i+1, err)
			}
		}
		if len(keys) != 1 || keys[0].Comment != "good" {
			t.Fatalf("parsed %d keys %+v, want only the good one", len(keys), keys)
		}
	})

	t.Run("known_hosts", func(t *testing.T) {
		var file strings.Builder
		for _, n := range badLens {
			fmt.Fprintf(&file, "bad%d.example ssh-ed25519 %s\n", n, base64.StdEncoding.EncodeToString(ed25519KeyBlob(keyOfLen(n))))
		}
		fmt.Fprintf(&file, "good.example %s\n", kex.MarshalAuthorizedKey(good.PublicKey()))
		kh, err := ParseKnownHosts([]byte(file.String()), "")
		if err == nil {
			t.Error("no error for wrong-length ed25519 keys")
		}
		for _, n := range badLens {
			if ks := kh.Lookup(fmt.Sprintf("bad%d.example", n), 22); len(ks) != 0 {
				t.Errorf("host with a %d-byte key has %d known keys", n, len(ks))
			}
		}
		if ks := kh.Lookup("good.example", 22); len(ks) != 1 {
			t.Errorf("good host has %d known keys", len(ks))
		}
	})

	t.Run("private-key", func(t *testing.T) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pubRaw := []byte(priv[32:])
		section := func(pub, key []byte) []byte {
			p := wire.AppendUint32(nil, 0x01020304)
			p = wire.AppendUint32(p, 0x01020304)
			p = wire.AppendString(p, keyTypeED25519)
			p = wire.AppendBytes(p, pub)
			p = wire.AppendBytes(p, key)
			p = wire.AppendString(p, "c")
			for i := 1; len(p)%8 != 0; i++ {
				p = append(p, byte(i))
			}
			return p
		}
		outer := ed25519KeyBlob(pubRaw)
		if _, _, err := ParsePrivateKey(kfPEM(kfBlob("none", "none", nil, outer, section(pubRaw, priv), 1)), nil); err != nil {
			t.Fatalf("well-formed key rejected: %v", err)
		}
		cut := func(b []byte, n int) []byte {
			out := make([]byte, n)
			copy(out, b)
			return out
		}
		cases := map[string][]byte{}
		for _, n := range badLens {
			cases[fmt.Sprintf("public half %d bytes", n)] = kfBlob("none", "none", nil, outer, section(cut(pubRaw, n), priv), 1)
			cases[fmt.Sprintf("outer public key %d bytes", n)] = kfBlob("none", "none", nil, ed25519KeyBlob(cut(pubRaw, n)), section(pubRaw, priv), 1)
		}
		for _, n := range []int{0, 31, 32, 33, 63, 64 + 1} {
			cases[fmt.Sprintf("private key %d bytes", n)] = kfBlob("none", "none", nil, outer, section(pubRaw, cut(priv, n)), 1)
		}
		for name, body := range cases {
			if _, _, err := ParsePrivateKey(kfPEM(body), nil); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})

	t.Run("agent-identities", func(t *testing.T) {
		var entries [][]byte
		for _, n := range badLens {
			entries = append(entries, wire.AppendBytes(nil, ed25519KeyBlob(keyOfLen(n))), wire.AppendString(nil, fmt.Sprintf("bad-%d", n)))
		}
		entries = append(entries, wire.AppendBytes(nil, goodBlob), wire.AppendString(nil, "good"))
		reply := agentFrame(agentIdentitiesAnswer, append([][]byte{wire.AppendUint32(nil, uint32(len(badLens)+1))}, entries...)...)
		keys, err := fakeAgent(t, reply).List()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].Comment != "good" {
			t.Fatalf("agent list gave %d keys %+v, want only the good one", len(keys), keys)
		}
	})
}

// CVE-2024-45337 (golang.org/x/crypto/ssh): applications took the key
// last passed to PublicKeyCallback as the one that logged in, but a
// client may query key A (no signature, answered with PK_OK) and then
// authenticate with key B. Only a key whose signature verified may
// authorize, and the login must carry the Permissions the callback gave
// for that key, never those of a key that was merely queried.
func TestCVE_2024_45337_OnlyVerifiedKeyAuthorizes(t *testing.T) {
	a := mustSigner(t, newEd25519(t))
	b := mustSigner(t, newEd25519(t))
	fpA, fpB := kex.FingerprintSHA256(a.PublicKey()), kex.FingerprintSHA256(b.PublicKey())

	// callback authorizes the keys in allowed, each with Permissions
	// naming it, and records the keys it was shown.
	type rec struct {
		seen []string
	}
	callback := func(rc *rec, allowed ...string) func(string, kex.PublicKey) (*Permissions, error) {
		return func(user string, key kex.PublicKey) (*Permissions, error) {
			fp := kex.FingerprintSHA256(key)
			rc.seen = append(rc.seen, fp)
			for _, x := range allowed {
				if x == fp {
					return &Permissions{KeyComment: fp, Extensions: map[string]string{"key": fp}}, nil
				}
			}
			return nil, errors.New("not authorized")
		}
	}
	query := func(s kex.Signer) []byte { return pkRequest("u", s.PublicKey(), kex.KeyAlgoED25519, nil) }
	signed := func(s kex.Signer) []byte { return signedPKRequest(t, cveSessionID, "u", s, kex.KeyAlgoED25519) }
	svc := marshalServiceRequest(serviceUserauth)

	t.Run("query-A-sign-B", func(t *testing.T) {
		rc := &rec{}
		st, r := runScript(&ServerConfig{PublicKeyCallback: callback(rc, fpA, fpB)}, svc, query(a), signed(b))
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.perms == nil || r.perms.KeyComment != fpB || r.perms.Extensions["key"] != fpB {
			t.Fatalf("logged in with %+v, want the Permissions of key B %s (A is %s)", r.perms, fpB, fpA)
		}
		if want := []byte{wire.MsgServiceAccept, msgUserauthPKOK, wire.MsgUserauthSuccess}; !bytes.Equal(st.sentTypes(), want) {
			t.Errorf("server sent %v, want %v", st.sentTypes(), want)
		}
		// The last key the callback saw is the one that logged in.
		if n := len(rc.seen); n == 0 || rc.seen[n-1] != fpB {
			t.Errorf("callback saw %v; the last should be B %s", rc.seen, fpB)
		}
	})

	t.Run("query-B-query-A-sign-B", func(t *testing.T) {
		// B's callback result comes from the per-connection cache: the
		// result must still be B's, whatever the callback saw last.
		rc := &rec{}
		_, r := runScript(&ServerConfig{PublicKeyCallback: callback(rc, fpA, fpB)}, svc, query(b), query(a), signed(b))
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.perms == nil || r.perms.KeyComment != fpB {
			t.Fatalf("logged in with %+v, want the Permissions of key B", r.perms)
		}
	})

	t.Run("query-A-sign-B-not-authorized", func(t *testing.T) {
		// A is authorized and queried; B signs correctly but is not
		// authorized: A's approval must not carry over to B.
		rc := &rec{}
		st, r := runScript(&ServerConfig{PublicKeyCallback: callback(rc, fpA)}, svc, query(a), signed(b))
		if r.err == nil || r.perms != nil || r.user != "" {
			t.Fatalf("Serve = %+v, want no login", r)
		}
		if st.authenticated || bytes.IndexByte(st.sentTypes(), wire.MsgUserauthSuccess) >= 0 {
			t.Fatalf("server authenticated B on A's approval (sent %v)", st.sentTypes())
		}
	})

	t.Run("query-A-then-A-blob-signed-by-B", func(t *testing.T) {
		// A signed request naming key A whose signature was made by B.
		rc := &rec{}
		data := marshalPublickeySignedData(cveSessionID, "u", serviceConnection, kex.KeyAlgoED25519, a.PublicKey().Marshal())
		sig, err := b.Sign(rand.Reader, data, kex.KeyAlgoED25519)
		if err != nil {
			t.Fatal(err)
		}
		st, r := runScript(&ServerConfig{PublicKeyCallback: callback(rc, fpA, fpB)}, svc, query(a), pkRequest("u", a.PublicKey(), kex.KeyAlgoED25519, sig))
		if r.err == nil || r.perms != nil {
			t.Fatalf("Serve = %+v, want no login", r)
		}
		if want := []byte{wire.MsgServiceAccept, msgUserauthPKOK, wire.MsgUserauthFailure}; !bytes.Equal(st.sentTypes(), want) {
			t.Errorf("server sent %v, want %v", st.sentTypes(), want)
		}
	})

	t.Run("query-A-then-other-method", func(t *testing.T) {
		// After a query for A, a password login carries the password
		// callback's Permissions, nothing of A's.
		rc := &rec{}
		_, r := runScript(&ServerConfig{PublicKeyCallback: callback(rc, fpA), PasswordCallback: acceptPassword},
			svc, query(a), passwordRequest("u", "pw"))
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.perms == nil || r.perms.KeyComment != "" || r.perms.Extensions["via"] != "password" || r.perms.Extensions["key"] != "" {
			t.Fatalf("password login carries %+v", r.perms)
		}
	})
}

// libssh CVE-2018-10933: the server took a USERAUTH_SUCCESS (52) sent by
// the client as the end of authentication. Wherever it comes, it must end
// the connection with a protocol error; the valid password request queued
// behind it must never be read.
func TestCVE_2018_10933_ClientSentUserauthSuccess(t *testing.T) {
	k := mustSigner(t, newEd25519(t))
	success := marshalUserauthSuccess()
	svc := marshalServiceRequest(serviceUserauth)
	kc := &keyChecker{user: "u", key: k.PublicKey()}
	kbdCallback := func(_ string, ch func(string, string, []string, []bool) ([]string, error)) (*Permissions, error) {
		if _, err := ch("", "", []string{"code: "}, []bool{false}); err != nil {
			return nil, err
		}
		return &Permissions{}, nil
	}
	cases := []struct {
		name   string
		before [][]byte
		sent   []byte // what the server writes before the SUCCESS arrives
		msg    []byte
	}{
		{"instead-of-service-request", nil, nil, success},
		{"after-service-accept", [][]byte{svc}, []byte{wire.MsgServiceAccept}, success},
		{"after-failed-none", [][]byte{svc, noneRequest("u")}, []byte{wire.MsgServiceAccept, wire.MsgUserauthFailure}, success},
		{"after-pk-ok", [][]byte{svc, pkRequest("u", k.PublicKey(), kex.KeyAlgoED25519, nil)}, []byte{wire.MsgServiceAccept, msgUserauthPKOK}, success},
		{"during-keyboard-interactive", [][]byte{svc, kbdIntRequest("u")}, []byte{wire.MsgServiceAccept, msgUserauthInfoRequest}, success},
		{"with-trailing-bytes", [][]byte{svc}, []byte{wire.MsgServiceAccept}, append(bytes.Clone(success), 0, 0, 0, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			script := append(append([][]byte{}, c.before...), c.msg, passwordRequest("u", "pw"))
			st, r := runScript(&ServerConfig{
				PublicKeyCallback:           kc.callback,
				PasswordCallback:            acceptPassword,
				KeyboardInteractiveCallback: kbdCallback,
			}, script...)
			mustNotAuthenticate(t, st, r)
			if got := st.sentTypes(); !bytes.Equal(got, c.sent) {
				t.Errorf("server sent %v, want %v and nothing after the SUCCESS", got, c.sent)
			}
			if len(st.in) != 1 {
				t.Errorf("server read on past the client's SUCCESS (%d packets left of 1)", len(st.in))
			}
		})
	}
}

// Erlang/OTP CVE-2025-32433: the SSH server handled connection-protocol
// messages (a CHANNEL_OPEN then a CHANNEL_REQUEST "exec") sent before
// authentication, running commands unauthenticated. Every message of the
// connection protocol (80 and above) before USERAUTH_SUCCESS must end the
// connection with a protocol error and be answered with nothing.
func TestCVE_2025_32433_ConnectionMessagesBeforeAuth(t *testing.T) {
	k := mustSigner(t, newEd25519(t))
	svc := marshalServiceRequest(serviceUserauth)
	kc := &keyChecker{user: "u", key: k.PublicKey()}
	kbdCallback := func(_ string, ch func(string, string, []string, []bool) ([]string, error)) (*Permissions, error) {
		if _, err := ch("", "", []string{"code: "}, []bool{false}); err != nil {
			return nil, err
		}
		return &Permissions{}, nil
	}

	globalReq := wire.AppendString([]byte{wire.MsgGlobalRequest}, "tcpip-forward")
	globalReq = wire.AppendBool(globalReq, true)
	globalReq = wire.AppendString(globalReq, "0.0.0.0")
	globalReq = wire.AppendUint32(globalReq, 4444)
	open := wire.AppendString([]byte{wire.MsgChannelOpen}, "session")
	open = wire.AppendUint32(open, 0)
	open = wire.AppendUint32(open, 1<<20)
	open = wire.AppendUint32(open, 1<<15)
	exec := wire.AppendUint32([]byte{wire.MsgChannelRequest}, 0)
	exec = wire.AppendString(exec, "exec")
	exec = wire.AppendBool(exec, true)
	exec = wire.AppendString(exec, "touch /tmp/CVE-2025-32433")
	msgs := map[string][]byte{"GLOBAL_REQUEST": globalReq, "CHANNEL_OPEN": open, "CHANNEL_REQUEST": exec}
	// The rest of the connection protocol's numbers, and an unassigned
	// one above it, with a minimal body.
	for m := byte(wire.MsgGlobalRequest); m <= 127; m++ {
		if m != wire.MsgGlobalRequest && m != wire.MsgChannelOpen && m != wire.MsgChannelRequest {
			msgs[fmt.Sprintf("message-%d", m)] = wire.AppendUint32([]byte{m}, 0)
		}
	}
	stages := []struct {
		name   string
		before [][]byte
		sent   []byte
	}{
		{"first-packet", nil, nil},
		{"after-service-accept", [][]byte{svc}, []byte{wire.MsgServiceAccept}},
		{"after-failed-none", [][]byte{svc, noneRequest("u")}, []byte{wire.MsgServiceAccept, wire.MsgUserauthFailure}},
		{"after-pk-ok", [][]byte{svc, pkRequest("u", k.PublicKey(), kex.KeyAlgoED25519, nil)}, []byte{wire.MsgServiceAccept, msgUserauthPKOK}},
		{"during-keyboard-interactive", [][]byte{svc, kbdIntRequest("u")}, []byte{wire.MsgServiceAccept, msgUserauthInfoRequest}},
	}
	for _, stage := range stages {
		for name, msg := range msgs {
			t.Run(stage.name+"/"+name, func(t *testing.T) {
				st, r := runScript(&ServerConfig{
					PublicKeyCallback:           kc.callback,
					PasswordCallback:            acceptPassword,
					KeyboardInteractiveCallback: kbdCallback,
				}, append(append([][]byte{}, stage.before...), msg, passwordRequest("u", "pw"))...)
				mustNotAuthenticate(t, st, r)
				if got := st.sentTypes(); !bytes.Equal(got, stage.sent) {
					t.Errorf("server sent %v, want %v and no answer to %s", got, stage.sent, name)
				}
				if len(st.in) != 1 {
					t.Errorf("server read on past %s (%d packets left of 1)", name, len(st.in))
				}
			})
		}
	}
	// With the real sequence of the exploit (open, then exec) the server
	// stops at the open.
	st, r := runScript(&ServerConfig{PasswordCallback: acceptPassword}, svc, open, exec, passwordRequest("u", "pw"))
	mustNotAuthenticate(t, st, r)
	if len(st.in) != 2 {
		t.Errorf("server read %d packets past the CHANNEL_OPEN", 2-len(st.in))
	}
}

// CVE-2026-35414 (OpenSSH before 10.3): a cert-authority line of
// authorized_keys with principals="a,b" matched a certificate principal
// as if it were a list too, so a CA willing to sign the name "nobody,root"
// let its holder log in where principals="deploy,root" admits only root's
// certificates. Each entry of principals= must equal a whole certificate
// principal. (TrustedUserCAs compares principals whole as well.)
func TestCVE_2026_35414_PrincipalWithComma(t *testing.T) {
	ca := mustSigner(t, newEd25519(t))
	user := mustSigner(t, newEd25519(t))
	ak := filepath.Join(t.TempDir(), "authorized_keys")
	os.WriteFile(ak, []byte(`cert-authority,principals="deploy,root" `+kex.MarshalAuthorizedKey(ca.PublicKey())+"\n"), 0o600)
	cfg := &ServerConfig{PublicKeyConnCallback: (&AuthorizedKeysFile{Path: ak}).Authorize}
	for _, c := range []struct {
		principals []string
		ok         bool
	}{
		{[]string{"root"}, true},
		{[]string{"nobody", "deploy"}, true},
		{[]string{"nobody,root"}, false},
		{[]string{"root,nobody"}, false},
		{[]string{"deploy,root"}, false},
		{[]string{"nobody", "x,deploy"}, false},
	} {
		cert := certFor(t, user.PublicKey(), ca, func(x *kex.Certificate) { x.ValidPrincipals = c.principals })
		r := loginWith(t, cfg, "svc", certSignerFor(t, cert, user))
		if (r.err == nil) != c.ok {
			t.Errorf("certificate principals %q: logged in %v (%v)", c.principals, r.err == nil, r.err)
		}
	}
	// The same names through TrustedUserCAs: the user name must be a
	// whole principal.
	trusted := &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}}
	cert := certFor(t, user.PublicKey(), ca, func(x *kex.Certificate) { x.ValidPrincipals = []string{"nobody,root"} })
	if r := loginWith(t, trusted, "root", certSignerFor(t, cert, user)); r.err == nil {
		t.Error(`principal "nobody,root" logged in as root through TrustedUserCAs`)
	}
}

// CVE-2026-35387 (OpenSSH before 10.3): listing one ECDSA algorithm in
// PubkeyAcceptedAlgorithms admitted all of them. AllowedSigAlgs (and
// CASignatureAlgorithms, kex's TestCertAttack_DisallowedCASignature)
// compare names exactly: nistp384 admits neither nistp256 keys nor
// nistp256 certificates.
func TestCVE_2026_35387_ECDSAAlgorithmListExact(t *testing.T) {
	p256 := mustSigner(t, userKeys(t)["ecdsa-p256"])
	k384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384 := mustSigner(t, k384)
	ca := mustSigner(t, newEd25519(t))
	accept := func(string, kex.PublicKey) (*Permissions, error) { return &Permissions{}, nil }
	for _, c := range []struct {
		name    string
		allowed []string
		s       kex.Signer
		ok      bool
	}{
		{"nistp384 key", []string{kex.KeyAlgoECDSA384}, p384, true},
		{"nistp256 key, nistp384 listed", []string{kex.KeyAlgoECDSA384}, p256, false},
		{"nistp256 key, nistp384 certificates listed", []string{kex.CertAlgoECDSA384}, p256, false},
		{"nistp256 certificate, nistp384 certificates listed", []string{kex.CertAlgoECDSA384},
			certSignerFor(t, certFor(t, p256.PublicKey(), ca, nil), p256), false},
		{"nistp256 certificate, nistp256 keys listed", []string{kex.KeyAlgoECDSA256},
			certSignerFor(t, certFor(t, p256.PublicKey(), ca, nil), p256), false},
		{"nistp384 certificate", []string{kex.CertAlgoECDSA384},
			certSignerFor(t, certFor(t, p384.PublicKey(), ca, nil), p384), true},
	} {
		cfg := &ServerConfig{PublicKeyCallback: accept, AllowedSigAlgs: c.allowed}
		if r := loginWith(t, cfg, "alice", c.s); (r.err == nil) != c.ok {
			t.Errorf("%s: logged in %v (%v)", c.name, r.err == nil, r.err)
		}
	}
}

package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// TestAgentCertificatesOpenSSH: OpenSSH's ssh-agent holds keys and their
// certificates (ssh-add loads key-cert.pub beside the key); List returns
// each certificate as a *kex.Certificate, its signer signs under the
// certificate algorithms (the signature named by the plain algorithm;
// RSA's SHA-2 through the agent's flags), and our client logs in with
// it to a server that trusts the CA alone, with the algorithm
// server-sig-algs allows for RSA.
func TestAgentCertificatesOpenSSH(t *testing.T) {
	sock, dir := startOpenSSHAgent(t)
	caPath, caPub := agentKeygen(t, dir, "ca", "ed25519", "ca")
	caKey, _, err := ParsePublicKeyFile([]byte(caPub))
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]*kex.Certificate{}
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		path, _ := agentKeygen(t, dir, "id_"+typ, typ, typ+" key")
		agentRun(t, "", "ssh-keygen", "-q", "-s", caPath, "-I", "agent-"+typ, "-n", "alice", "-z", "3", path+".pub")
		agentRun(t, sock, "ssh-add", "-q", path)
		c, err := LoadCertificate(path + "-cert.pub")
		if err != nil {
			t.Fatal(err)
		}
		certs[c.Type()] = c
	}
	a := dialTestAgent(t, sock)
	signers, err := a.Signers()
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]kex.Signer{}
	for _, s := range signers {
		byType[s.PublicKey().Type()] = s
	}
	data := []byte("signed through the agent")
	for typ, want := range certs {
		s := byType[typ]
		if s == nil {
			t.Fatalf("the agent's %s is not listed (%d identities)", typ, len(signers))
		}
		got, ok := s.PublicKey().(*kex.Certificate)
		if !ok || !bytes.Equal(got.Marshal(), want.Marshal()) {
			t.Fatalf("%s listed as %T, not the certificate", typ, s.PublicKey())
		}
		wantAlgos := kex.SignatureAlgorithmsFor(typ)
		if fmt.Sprint(s.Algorithms()) != fmt.Sprint(wantAlgos) {
			t.Errorf("%s: algorithms %v, want %v", typ, s.Algorithms(), wantAlgos)
		}
		for _, algo := range wantAlgos {
			sig, err := s.Sign(rand.Reader, data, algo)
			if err != nil {
				t.Fatalf("%s: Sign(%s): %v", typ, algo, err)
			}
			if got := sigAlgorithm(t, sig); got != kex.UnderlyingSignatureAlgorithm(algo) {
				t.Errorf("%s: Sign(%s) made a %s signature", typ, algo, got)
			}
			if err := want.Key.Verify(data, sig); err != nil {
				t.Errorf("%s: Sign(%s): %v", typ, algo, err)
			}
		}
	}
	// The plain SHA-1 name of an RSA certificate is refused locally.
	if _, err := a.Sign(certs[kex.CertAlgoRSA], data, kex.CertAlgoRSA); err == nil || errors.Is(err, ErrAgentFailure) {
		t.Errorf("Sign under ssh-rsa-cert-v01@openssh.com: %v", err)
	}

	for _, c := range []struct {
		typ    string
		server []string // server-sig-algs
		want   string
	}{
		{kex.CertAlgoED25519, nil, kex.CertAlgoED25519},
		{kex.CertAlgoECDSA256, nil, kex.CertAlgoECDSA256},
		{kex.CertAlgoRSA, nil, kex.CertSigAlgoRSASHA512},
		{kex.CertAlgoRSA, []string{kex.KeyAlgoED25519, kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA256}, kex.CertSigAlgoRSASHA512},
		{kex.CertAlgoRSA, []string{kex.KeyAlgoED25519, kex.SigAlgoRSASHA256}, kex.CertSigAlgoRSASHA256},
		{kex.CertAlgoRSA, []string{kex.CertSigAlgoRSASHA256}, kex.CertSigAlgoRSASHA256},
	} {
		t.Run(fmt.Sprintf("login/%s/%v", c.typ, c.server), func(t *testing.T) {
			cc, sc := connPair(t)
			res := startServe(t, sc, &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{caKey}}})
			rec := &recorder{Transport: cc}
			// A fresh agent connection per login, as the tool dials one.
			a := dialTestAgent(t, sock)
			err := Authenticate(context.Background(), rec, &ClientConfig{
				User: "alice", Methods: []Method{PublicKeysCallback(func() ([]kex.Signer, error) {
					all, err := a.Signers()
					var only []kex.Signer
					for _, s := range all {
						if s.PublicKey().Type() == c.typ {
							only = append(only, s)
						}
					}
					return only, err
				})},
				ServerSigAlgs: func() []string { return c.server },
			})
			if err != nil {
				t.Fatal(err)
			}
			r := waitServe(t, res)
			if r.err != nil || r.perms == nil || r.perms.Certificate == nil || r.perms.Certificate.KeyID != certs[c.typ].KeyID {
				t.Fatalf("server: %+v", r)
			}
			reqs := rec.requests(t)
			if got := reqs[len(reqs)-1].Algorithm; got != c.want {
				t.Errorf("signed under %s, want %s", got, c.want)
			}
		})
	}
}

// TestAgentSecurityKeys: an agent holding security keys (a software
// authenticator behind the agent protocol, internal/agenttest) lists
// them and their certificates; the client signs through it, and the
// signature goes to the server as the agent made it, flags and counter
// unchanged: the server sees the counter the authenticator counted, and
// judges the flags (presence required).
func TestAgentSecurityKeys(t *testing.T) {
	ca := mustSigner(t, userKeys(t)["ed25519"])
	for _, typ := range []string{kex.KeyAlgoSKED25519, kex.KeyAlgoSKECDSA256} {
		for _, withCert := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cert=%v", typ, withCert), func(t *testing.T) {
				sk, err := agenttest.NewSecurityKey(typ)
				if err != nil {
					t.Fatal(err)
				}
				ag := agenttest.New()
				var id kex.Signer = sk
				cfg := &ServerConfig{}
				if withCert {
					cert := certFor(t, sk.PublicKey(), ca, nil)
					if id, err = kex.NewCertSigner(cert, sk); err != nil {
						t.Fatal(err)
					}
					cfg.TrustedUserCAs = &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}
				} else {
					cfg.PublicKeyCallback = (&keyChecker{user: "alice", key: sk.PublicKey()}).callback
				}
				ag.Add(id, "security key")
				client, server := net.Pipe()
				go ag.Serve(server)
				a := NewAgent(client)
				defer a.Close()

				keys, err := a.List()
				if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Key.Marshal(), id.PublicKey().Marshal()) {
					t.Fatalf("List: %v, %v", keys, err)
				}
				login := func(flags byte) (*recorder, serveResult, error) {
					sk.SetFlags(flags)
					cc, sc := connPair(t)
					res := startServe(t, sc, cfg)
					rec := &recorder{Transport: cc}
					signers, err := a.Signers()
					if err != nil {
						t.Fatal(err)
					}
					err = Authenticate(context.Background(), rec, &ClientConfig{
						User: "alice", Methods: []Method{PublicKeySigners(signers...)}, ServerSigAlgs: cc.ServerSigAlgs,
					})
					if err != nil {
						cc.Close()
					}
					return rec, waitServe(t, res), err
				}
				rec, r, err := login(kex.SKFlagUserPresent | kex.SKFlagUserVerified)
				if err != nil || r.err != nil {
					t.Fatalf("client %v, server %v", err, r.err)
				}
				reqs := rec.requests(t)
				last := reqs[len(reqs)-1]
				if last.Algorithm != id.Algorithms()[0] || !last.HasSig {
					t.Fatalf("request under %s (signed %v)", last.Algorithm, last.HasSig)
				}
				sr := wire.NewReader(last.Signature)
				algo := sr.String()
				sr.Bytes()
				flags, counter := sr.Byte(), sr.Uint32()
				if sr.Done() != nil || algo != typ || flags != kex.SKFlagUserPresent|kex.SKFlagUserVerified || counter != sk.Signatures() {
					t.Errorf("signature sent: %s, flags %#x, counter %d (the key counted %d)", algo, flags, counter, sk.Signatures())
				}
				// Without presence: the agent's signature goes out as made,
				// and the server refuses it for its flags.
				_, r, err = login(0)
				if err == nil || r.err == nil || !strings.Contains(r.err.Error(), "user presence") ||
					!strings.Contains(r.err.Error(), fmt.Sprintf("counter %d", sk.Signatures())) {
					t.Errorf("flags 0: client %v, server %v", err, r.err)
				}
				for _, req := range ag.Requests() {
					if req.Flags != 0 || req.Algorithm != id.Algorithms()[0] {
						t.Errorf("agent asked with flags %d, signed %q", req.Flags, req.Algorithm)
					}
				}
			})
		}
	}
}

// TestAgentSignResponseShapes: what follows a signature in the agent's
// answer: a security key's flags and counter (and webauthn's origin,
// clientData and extensions) are kept, anything else is refused; a
// certificate's signature must name the plain algorithm.
func TestAgentSignResponseShapes(t *testing.T) {
	sig := func(algo string, tail ...[]byte) []byte {
		b := wire.AppendBytes(wire.AppendString(nil, algo), make([]byte, 64))
		for _, x := range tail {
			b = append(b, x...)
		}
		return b
	}
	resp := func(s []byte) []byte { return wire.AppendBytes(nil, s) }
	flagsCounter := []byte{1, 0, 0, 0, 9}
	for _, c := range []struct {
		name string
		sig  []byte
		want string // the algorithm asked for
		ok   bool
	}{
		{"sk-ed25519", sig(kex.KeyAlgoSKED25519, flagsCounter), kex.KeyAlgoSKED25519, true},
		{"sk-ecdsa", sig(kex.KeyAlgoSKECDSA256, flagsCounter), kex.KeyAlgoSKECDSA256, true},
		{"webauthn", sig(kex.SigAlgoWebAuthnSKECDSA256, flagsCounter, wire.AppendString(nil, "https://x"),
			wire.AppendString(nil, "{}"), wire.AppendString(nil, "")), kex.SigAlgoWebAuthnSKECDSA256, true},
		{"sk without counter", sig(kex.KeyAlgoSKED25519, []byte{1}), kex.KeyAlgoSKED25519, false},
		{"sk with more", sig(kex.KeyAlgoSKED25519, flagsCounter, []byte{0}), kex.KeyAlgoSKED25519, false},
		{"ed25519 with flags", sig(kex.KeyAlgoED25519, flagsCounter), kex.KeyAlgoED25519, false},
		{"plain for a certificate", sig(kex.SigAlgoRSASHA512), kex.UnderlyingSignatureAlgorithm(kex.CertSigAlgoRSASHA512), true},
		{"certificate name", sig(kex.CertSigAlgoRSASHA512), kex.SigAlgoRSASHA512, false},
	} {
		got, err := parseAgentSignResponse(resp(c.sig), c.want)
		if (err == nil) != c.ok || err == nil && !bytes.Equal(got, c.sig) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestAgentListCertificatesAndSecurityKeys: List keeps certificates and
// security keys, in the agent's order, with their comments.
func TestAgentListCertificatesAndSecurityKeys(t *testing.T) {
	ca := mustSigner(t, userKeys(t)["ed25519"])
	user := mustSigner(t, userKeys(t)["rsa2048"])
	sk, err := agenttest.NewSecurityKey(kex.KeyAlgoSKECDSA256)
	if err != nil {
		t.Fatal(err)
	}
	cert := certFor(t, user.PublicKey(), ca, nil)
	cs, _ := kex.NewCertSigner(cert, user)
	ag := agenttest.New()
	ag.Add(user, "plain")
	ag.Add(cs, "its certificate")
	ag.Add(sk, "a security key")
	client, server := net.Pipe()
	go ag.Serve(server)
	a := NewAgent(client)
	defer a.Close()
	keys, err := a.List()
	if err != nil || len(keys) != 3 {
		t.Fatalf("List: %v, %v", keys, err)
	}
	if _, ok := keys[1].Key.(*kex.Certificate); !ok || keys[1].Comment != "its certificate" {
		t.Errorf("second identity %T %q", keys[1].Key, keys[1].Comment)
	}
	if _, ok := keys[2].Key.(kex.SKPublicKey); !ok || keys[2].Comment != "a security key" {
		t.Errorf("third identity %T %q", keys[2].Key, keys[2].Comment)
	}
	// The RSA certificate signs under either SHA-2 name, through the flags.
	for _, algo := range []string{kex.CertSigAlgoRSASHA256, kex.CertSigAlgoRSASHA512} {
		s, err := a.Sign(keys[1].Key, []byte("x"), algo)
		if err != nil || sigAlgorithm(t, s) != kex.UnderlyingSignatureAlgorithm(algo) {
			t.Errorf("Sign(%s): %v", algo, err)
		}
	}
	reqs := ag.Requests()
	if len(reqs) != 2 || reqs[0].Flags != 2 || reqs[1].Flags != 4 {
		t.Errorf("agent requests %+v, want flags 2 then 4", reqs)
	}
}

// TestAgentAddCertificate: AddCertificate gives OpenSSH's ssh-agent a key
// with its certificate (ed25519, ECDSA, RSA); the agent lists the
// certificate and signs under its algorithms; a certificate of another
// key is refused before asking.
func TestAgentAddCertificate(t *testing.T) {
	sock, _ := startOpenSSHAgent(t)
	a := dialTestAgent(t, sock)
	ca := mustSigner(t, userKeys(t)["ecdsa-p256"])
	data := []byte("signed by a certificate the agent was given")
	for _, name := range []string{"ed25519", "ecdsa-p256", "rsa2048"} {
		k := userKeys(t)[name]
		cert := certFor(t, pubOf(t, k), ca, nil)
		if err := a.AddCertificate(k, cert, name+" certificate"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		keys, err := a.List()
		if err != nil {
			t.Fatal(err)
		}
		var found kex.PublicKey
		for _, ak := range keys {
			if bytes.Equal(ak.Key.Marshal(), cert.Marshal()) && ak.Comment == name+" certificate" {
				found = ak.Key
			}
		}
		if found == nil {
			t.Fatalf("%s: the certificate is not listed (%d identities)", name, len(keys))
		}
		for _, algo := range kex.SignatureAlgorithmsFor(cert.Type()) {
			sig, err := a.Sign(found, data, algo)
			if err != nil {
				t.Fatalf("%s: Sign(%s): %v", name, algo, err)
			}
			if err := cert.Key.Verify(data, sig); err != nil || sigAlgorithm(t, sig) != kex.UnderlyingSignatureAlgorithm(algo) {
				t.Errorf("%s: Sign(%s): %v", name, algo, err)
			}
		}
	}
	other := certFor(t, pubOf(t, userKeys(t)["ed25519"]), ca, nil)
	if err := a.AddCertificate(userKeys(t)["rsa2048"], other, ""); err == nil || errors.Is(err, ErrAgentFailure) {
		t.Errorf("another key's certificate: %v", err)
	}
}

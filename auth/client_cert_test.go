package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// TestCertificateSigner: a private key and its certificate log in to a
// server that trusts the CA alone, under the certificate algorithm
// (ssh-ed25519-cert-v01@openssh.com...; for RSA the SHA-2 one
// server-sig-algs allows, named plain or as a certificate algorithm);
// CertificateSigner refuses a host certificate and a certificate of
// another key.
func TestCertificateSigner(t *testing.T) {
	ca := mustSigner(t, userKeys(t)["ecdsa-p256"])
	cfg := &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}}
	for _, c := range []struct {
		key    string
		server []string
		want   string // "" if the key must be skipped
	}{
		{"ed25519", nil, kex.CertAlgoED25519},
		{"ecdsa-p256", nil, kex.CertAlgoECDSA256},
		{"rsa2048", nil, kex.CertSigAlgoRSASHA512},
		{"rsa2048", []string{kex.SigAlgoRSASHA256}, kex.CertSigAlgoRSASHA256},
		{"rsa2048", []string{kex.CertSigAlgoRSASHA512, kex.SigAlgoRSASHA256}, kex.CertSigAlgoRSASHA512},
		{"rsa2048", []string{kex.KeyAlgoRSA, kex.CertAlgoRSA}, ""}, // SHA-1 only
	} {
		t.Run(c.key+"/"+strings.Join(c.server, ","), func(t *testing.T) {
			k := userKeys(t)[c.key]
			cert := certFor(t, pubOf(t, k), ca, nil)
			cs, err := CertificateSigner(k, cert)
			if err != nil {
				t.Fatal(err)
			}
			cc, sc := connPair(t)
			res := startServe(t, sc, cfg)
			rec := &recorder{Transport: cc}
			err = Authenticate(context.Background(), rec, &ClientConfig{User: "alice", Methods: []Method{PublicKeySigners(cs)},
				ServerSigAlgs: func() []string { return c.server }})
			if c.want == "" {
				var nm *NoMethodError
				if !errors.As(err, &nm) || !strings.Contains(err.Error(), "server-sig-algs") {
					t.Fatalf("err %v", err)
				}
				cc.Close()
				waitServe(t, res)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r := waitServe(t, res); r.err != nil || r.perms.Certificate == nil {
				t.Fatalf("server: %+v", r)
			}
			reqs := rec.requests(t)
			last := reqs[len(reqs)-1]
			if last.Algorithm != c.want || !bytes.Equal(last.PubKey, cert.Marshal()) {
				t.Errorf("signed under %s (blob of the certificate: %v), want %s", last.Algorithm, bytes.Equal(last.PubKey, cert.Marshal()), c.want)
			}
			if got, _ := parseSignatureAlgorithm(last.Signature); got != kex.UnderlyingSignatureAlgorithm(c.want) {
				t.Errorf("signature named %s", got)
			}
		})
	}

	k := userKeys(t)["ed25519"]
	host := certFor(t, pubOf(t, k), ca, func(c *kex.Certificate) { c.CertType = kex.HostCert })
	if _, err := CertificateSigner(k, host); err == nil {
		t.Error("CertificateSigner took a host certificate")
	}
	other := certFor(t, pubOf(t, userKeys(t)["ecdsa-p256"]), ca, nil)
	if _, err := CertificateSigner(k, other); err == nil {
		t.Error("CertificateSigner took another key's certificate")
	}
	if _, err := CertificateSigner(nil, other); err == nil {
		t.Error("CertificateSigner took a nil key")
	}
}

// TestCertificateThenPlainKey: the certificate and then its plain key,
// as ssh offers them: a server that authorizes the plain key only
// refuses the certificate and takes the key; one that trusts the CA
// takes the certificate at once.
func TestCertificateThenPlainKey(t *testing.T) {
	ca := mustSigner(t, userKeys(t)["ed25519"])
	k := userKeys(t)["rsa2048"]
	plain := mustSigner(t, k)
	cert := certFor(t, plain.PublicKey(), ca, nil)
	cs, err := CertificateSigner(k, cert)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		cfg   *ServerConfig
		algos []string // the requests' algorithms, queries included
	}{
		// The certificate, a software key's offered first, is signed at
		// once; the plain key after it is asked about first.
		{"plain key authorized", &ServerConfig{PublicKeyCallback: (&keyChecker{user: "alice", key: plain.PublicKey()}).callback},
			[]string{kex.CertSigAlgoRSASHA512, kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA512}},
		{"CA trusted", &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}},
			[]string{kex.CertSigAlgoRSASHA512}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc, sc := connPair(t)
			res := startServe(t, sc, c.cfg)
			rec := &recorder{Transport: cc}
			if err := Authenticate(context.Background(), rec, &ClientConfig{User: "alice",
				Methods: []Method{PublicKeySigners(cs, plain)}, ServerSigAlgs: cc.ServerSigAlgs}); err != nil {
				t.Fatal(err)
			}
			if r := waitServe(t, res); r.err != nil {
				t.Fatal(r.err)
			}
			var got []string
			for _, r := range rec.requests(t) {
				got = append(got, r.Algorithm)
			}
			if strings.Join(got, " ") != strings.Join(c.algos, " ") {
				t.Errorf("requests %q, want %q", got, c.algos)
			}
		})
	}
}

// TestPublicKeyFiles: ParsePublicKeyFile and LoadCertificate read .pub
// and -cert.pub files as ssh-keygen writes them; PrivateKeyPublicKey
// reads an encrypted key's public key without its passphrase, and a
// security key file's, which only an agent can sign with.
func TestPublicKeyFiles(t *testing.T) {
	kg := akNeedKeygen(t)
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(kg, args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	ca, key := filepath.Join(dir, "ca"), filepath.Join(dir, "id_ecdsa")
	run("-q", "-t", "ed25519", "-N", "", "-f", ca)
	run("-q", "-t", "ecdsa", "-N", "secret words", "-C", "my key", "-f", key)
	run("-q", "-s", ca, "-I", "files", "-n", "alice", key+".pub")

	pubText, _ := os.ReadFile(key + ".pub")
	pub, comment, err := ParsePublicKeyFile(append([]byte("# a comment\n\n"), pubText...))
	if err != nil || comment != "my key" || pub.Type() != kex.KeyAlgoECDSA256 {
		t.Fatalf("ParsePublicKeyFile: %v %q %v", pub, comment, err)
	}
	priv, _ := os.ReadFile(key)
	got, err := PrivateKeyPublicKey(priv)
	if err != nil || !bytes.Equal(got.Marshal(), pub.Marshal()) {
		t.Fatalf("PrivateKeyPublicKey of an encrypted key: %v", err)
	}
	if _, _, err := ParsePrivateKey(priv, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("the key is not encrypted: %v", err)
	}
	cert, err := LoadCertificate(key + "-cert.pub")
	if err != nil || cert.KeyID != "files" || !bytes.Equal(cert.Key.Marshal(), pub.Marshal()) {
		t.Fatalf("LoadCertificate: %v", err)
	}
	if _, err := LoadCertificate(key + ".pub"); err == nil || !strings.Contains(err.Error(), "not a certificate") {
		t.Errorf("LoadCertificate of a plain key: %v", err)
	}
	if _, err := LoadCertificate(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadCertificate of a missing file: %v", err)
	}
	for _, bad := range []string{"", "# only a comment\n", "ssh-ed25519\n", "ssh-ed25519 !!!\n",
		"ssh-rsa " + strings.Fields(string(pubText))[1] + "\n"} {
		if _, _, err := ParsePublicKeyFile([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKeyFile(%q) succeeded", bad)
		}
	}

	// A security key's private key file (openssh-key-v1 with an
	// sk-ssh-ed25519@openssh.com key): its public key is in the clear.
	sk, err := agenttest.NewSecurityKey(kex.KeyAlgoSKED25519)
	if err != nil {
		t.Fatal(err)
	}
	body := append([]byte("openssh-key-v1\x00"), wire.AppendString(nil, "none")...)
	body = wire.AppendString(body, "none")
	body = wire.AppendString(body, "")
	body = wire.AppendUint32(body, 1)
	body = wire.AppendBytes(body, sk.PublicKey().Marshal())
	body = wire.AppendBytes(body, make([]byte, 16)) // the private section, not read
	skFile := pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: body})
	got, err = PrivateKeyPublicKey(skFile)
	if _, ok := got.(kex.SKPublicKey); err != nil || !ok {
		t.Errorf("PrivateKeyPublicKey of a security key file: %T %v", got, err)
	}
	// A PKCS #8 key is parsed whole.
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(ed)
	if err != nil {
		t.Fatal(err)
	}
	pk8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if got, err := PrivateKeyPublicKey(pk8); err != nil || got.Type() != kex.KeyAlgoED25519 {
		t.Errorf("PrivateKeyPublicKey: %v", err)
	}
	if _, err := PrivateKeyPublicKey([]byte("not a key")); err == nil {
		t.Error("PrivateKeyPublicKey of garbage succeeded")
	}
}

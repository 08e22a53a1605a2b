package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// TestLazyKeySignsQuietly: an identity file without a passphrase signs
// quietly (publickey may send its signature without asking first, issue
// 17), and is loaded then; an encrypted one does not, and nothing asks
// for its passphrase.
func TestLazyKeySignsQuietly(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kex.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		pass  []byte
		quiet bool
	}{{"plain", nil, true}, {"encrypted", []byte("secret"), false}} {
		data, err := auth.MarshalPrivateKey(priv, "k", c.pass)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		k := &lazyKey{path: p, pub: pub, batch: true, report: func(path string, err error) {
			t.Errorf("%s: reported %v", path, err)
		}}
		if got := k.SignsQuietly(); got != c.quiet {
			t.Errorf("%s: SignsQuietly = %v, want %v", c.name, got, c.quiet)
		}
		if q := signsQuietly(mustCertSigner(t, k)); q != c.quiet {
			t.Errorf("%s: its certificate's signer: SignsQuietly = %v", c.name, q)
		}
	}
}

func mustCertSigner(t *testing.T, s kex.Signer) kex.Signer {
	t.Helper()
	cert := &kex.Certificate{Key: s.PublicKey(), CertType: kex.UserCert, KeyID: "c", ValidBefore: kex.CertForever}
	if err := cert.SignCert(rand.Reader, ccTestSigner(t), ""); err != nil {
		t.Fatal(err)
	}
	cs, err := kex.NewCertSigner(cert, s)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

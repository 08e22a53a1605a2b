package kex

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
)

// otherSigner is a crypto.Signer that is not a software key's type (a
// token's, say).
type otherSigner struct{ crypto.Signer }

// TestSignsQuietly: software keys sign quietly, and certificates of
// them; any other crypto.Signer is not presumed to.
func TestSignsQuietly(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	quiet := func(s Signer) bool {
		q, ok := s.(interface{ SignsQuietly() bool })
		return ok && q.SignsQuietly()
	}
	for _, c := range []struct {
		name string
		key  crypto.Signer
		want bool
	}{{"ed25519", ed, true}, {"ecdsa", ec, true}, {"other", otherSigner{ed}, false}} {
		s, err := NewSigner(c.key)
		if err != nil {
			t.Fatal(err)
		}
		if got := quiet(s); got != c.want {
			t.Errorf("%s: SignsQuietly = %v, want %v", c.name, got, c.want)
		}
		cert := &Certificate{Key: s.PublicKey(), CertType: UserCert, KeyID: "c", ValidBefore: CertForever}
		if err := cert.SignCert(rand.Reader, s, ""); err != nil {
			t.Fatal(err)
		}
		cs, err := NewCertSigner(cert, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := quiet(cs); got != c.want {
			t.Errorf("%s certificate: SignsQuietly = %v, want %v", c.name, got, c.want)
		}
	}
}

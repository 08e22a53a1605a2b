package sntrup761

import (
	"bytes"
	"crypto/rand"
	"sync"
	"testing"
)

var (
	fuzzKeyOnce sync.Once
	fuzzKey     *PrivateKey
)

func fixedKey(t testing.TB) *PrivateKey {
	fuzzKeyOnce.Do(func() {
		k, err := GenerateKey(seeded(9))
		if err != nil {
			t.Fatal(err)
		}
		fuzzKey = k
	})
	return fuzzKey
}

// fit pads or cuts b to n bytes.
func fit(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// FuzzPeerBytes feeds what a peer controls: a public key to encapsulate
// to (the server's side), a ciphertext to decapsulate (the client's).
// Every string of the right length is accepted; what it decodes to is in
// range and decodes the same after re-encoding; decapsulation is
// deterministic (TestKEM checks genuine ciphertexts).
func FuzzPeerBytes(f *testing.F) {
	k := fixedKey(f)
	ct, _, _ := Encapsulate(rand.Reader, k.PublicKey())
	f.Add(k.PublicKey(), ct)
	f.Add(bytes.Repeat([]byte{0xff}, PublicKeySize), bytes.Repeat([]byte{0xff}, CiphertextSize))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, pk, c []byte) {
		pk, c = fit(pk, PublicKeySize), fit(c, CiphertextSize)
		h := rqDecode(pk)
		for _, x := range h {
			if x < -q12 || x > q12 {
				t.Fatalf("decoded %d out of range", x)
			}
		}
		if rqDecode(rqEncode(&h)) != h {
			t.Fatal("a decoded key does not survive re-encoding")
		}
		r := roundedDecode(c[:roundedBytes])
		for _, x := range r {
			if x < -q12 || x > q12 || x%3 != 0 {
				t.Fatalf("decoded rounded value %d", x)
			}
		}
		if roundedDecode(roundedEncode(&r)) != r {
			t.Fatal("a decoded ciphertext does not survive re-encoding")
		}
		ct2, key, err := Encapsulate(rand.Reader, pk)
		if err != nil || len(ct2) != CiphertextSize || len(key) != SharedKeySize {
			t.Fatalf("Encapsulate to a peer's key: %d, %d bytes, %v", len(ct2), len(key), err)
		}
		k := fixedKey(t)
		k1, err := k.Decapsulate(c)
		if err != nil || len(k1) != SharedKeySize {
			t.Fatalf("Decapsulate: %v", err)
		}
		if k2, _ := k.Decapsulate(c); !bytes.Equal(k1, k2) {
			t.Fatal("Decapsulate is not deterministic")
		}
	})
}

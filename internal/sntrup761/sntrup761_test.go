package sntrup761

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// The sizes follow from the encodings: OpenSSH's public key and
// ciphertext lengths.
func TestEncodedSizes(t *testing.T) {
	if n := encodedLen(rqBounds); n != PublicKeySize {
		t.Errorf("Rq encoding: %d bytes, want %d", n, PublicKeySize)
	}
	if n := encodedLen(roundedBounds); n != roundedBytes {
		t.Errorf("rounded encoding: %d bytes, want %d", n, roundedBytes)
	}
}

func seeded(seed uint64) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return mrand.NewChaCha8(s)
}

func TestFreeze(t *testing.T) {
	for x := int32(-3 * q * q); x <= 3*q*q; x += 997 {
		if got := int32(fqFreeze(x)); got < -q12 || got > q12 || (x-got)%q != 0 {
			t.Fatalf("fqFreeze(%d) = %d", x, got)
		}
		if got := int32(f3Freeze(x)); got < -1 || got > 1 || (x-got)%3 != 0 {
			t.Fatalf("f3Freeze(%d) = %d", x, got)
		}
	}
	for x := int32(-1 << 26); x < 1<<26; x += 7919 {
		if got, want := fqBarrett(x), int32(fqFreeze(x)); got != want {
			t.Fatalf("fqBarrett(%d) = %d, want %d", x, got, want)
		}
	}
	for _, x := range []int32{-(1 << 26) + 1, 1<<26 - 1, -q12 - 1, q12 + 1, q, -q} {
		if got, want := fqBarrett(x), int32(fqFreeze(x)); got != want {
			t.Fatalf("fqBarrett(%d) = %d, want %d", x, got, want)
		}
	}
	for x := int32(-2); x <= 2; x++ {
		if got, want := f3Small(x), int32(f3Freeze(x)); got != want {
			t.Fatalf("f3Small(%d) = %d, want %d", x, got, want)
		}
	}
	for a := int16(-q12); a <= q12; a++ {
		if a != 0 && fqFreeze(int32(a)*int32(fqRecip(a))) != 1 {
			t.Fatalf("fqRecip(%d) = %d", a, fqRecip(a))
		}
	}
}

func one() (s small) { s[0] = 1; return s }

// The inverses are inverses: in*out = 1 in R3, and 3*in*out = 1 in Rq.
func TestRecip(t *testing.T) {
	rng := seeded(1)
	invertible := 0
	for range 20 {
		g, err := randomSmall(rng)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := r3Recip(&g)
		if prod := r3Mult(&g, &v); ok != (prod == one()) {
			t.Fatalf("r3Recip says invertible=%v, but g*v = 1 is %v", ok, prod == one())
		}
		if ok {
			invertible++
		}
		f, err := randomShort(rng)
		if err != nil {
			t.Fatal(err)
		}
		finv, ok := rqRecip3(&f)
		if !ok {
			t.Fatal("rqRecip3: not invertible")
		}
		prod := rqMultSmall(&finv, &f)
		for i := range prod {
			prod[i] = fqFreeze(3 * int32(prod[i]))
		}
		var want fq
		want[0] = 1
		if prod != want {
			t.Fatalf("3*f*rqRecip3(f) != 1")
		}
	}
	if invertible < 15 {
		t.Fatalf("only %d of 20 random small elements invertible in R3", invertible)
	}
	// Not invertible: 0, and x^p - x - 1's multiples are 0 already; 0 is
	// enough, and a multiple of (x - 1)... is not in general; 0 it is.
	var zero small
	if _, ok := r3Recip(&zero); ok {
		t.Fatal("r3Recip(0) says invertible")
	}
}

func TestShortWeight(t *testing.T) {
	rng := seeded(2)
	seen := make([]int, p)
	for range 50 {
		s, err := randomShort(rng)
		if err != nil {
			t.Fatal(err)
		}
		if weightMask(&s) != 0 {
			t.Fatal("randomShort: weight is not w")
		}
		for i, c := range s {
			if c != 0 {
				seen[i]++
			}
		}
	}
	// Every place is used somewhere (the shuffle is not stuck on the
	// first w places).
	if slices.Contains(seen, 0) {
		t.Fatalf("a place never nonzero in 50 draws: %v", seen)
	}
}

func TestSortNetwork(t *testing.T) {
	rng := mrand.New(seeded(3))
	for _, n := range []int{0, 1, 2, 3, 5, 17, 100, p} {
		x := make([]uint32, n)
		for i := range x {
			x[i] = rng.Uint32()
		}
		want := slices.Clone(x)
		slices.Sort(want)
		sortNetwork(x)
		if !slices.Equal(x, want) {
			t.Fatalf("n=%d: not sorted", n)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	rng := mrand.New(seeded(4))
	for range 20 {
		var h fq
		for i := range h {
			h[i] = int16(rng.IntN(q) - q12)
		}
		if got := rqDecode(rqEncode(&h)); got != h {
			t.Fatal("Rq encoding does not round-trip")
		}
		c := round(&h)
		if got := roundedDecode(roundedEncode(&c)); got != c {
			t.Fatal("rounded encoding does not round-trip")
		}
	}
	// Any bytes decode, to values in range.
	b := make([]byte, PublicKeySize)
	for i := range b {
		b[i] = 0xff
	}
	for _, c := range rqDecode(b) {
		if c < -q12 || c > q12 {
			t.Fatalf("decoded %d out of range", c)
		}
	}
}

func TestKEM(t *testing.T) {
	for range 5 {
		k, err := GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pk := k.PublicKey()
		if len(pk) != PublicKeySize {
			t.Fatalf("public key of %d bytes", len(pk))
		}
		ct, key, err := Encapsulate(rand.Reader, pk)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != CiphertextSize || len(key) != SharedKeySize {
			t.Fatalf("ciphertext %d bytes, key %d", len(ct), len(key))
		}
		got, err := k.Decapsulate(ct)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, key) {
			t.Fatal("decapsulated key differs from the encapsulated one")
		}
		// A changed ciphertext gives another key (implicit rejection),
		// the same each time.
		bad := slices.Clone(ct)
		bad[100] ^= 1
		k1, err := k.Decapsulate(bad)
		if err != nil {
			t.Fatal(err)
		}
		k2, _ := k.Decapsulate(bad)
		if bytes.Equal(k1, key) || !bytes.Equal(k1, k2) {
			t.Fatal("a tampered ciphertext: want a different, deterministic key")
		}
		bad = slices.Clone(ct)
		bad[CiphertextSize-1] ^= 0x80 // the confirmation hash
		if k3, _ := k.Decapsulate(bad); bytes.Equal(k3, key) {
			t.Fatal("a tampered confirmation gave the key")
		}
	}
	if _, _, err := Encapsulate(rand.Reader, make([]byte, PublicKeySize-1)); err == nil {
		t.Fatal("a short public key was accepted")
	}
	k, _ := GenerateKey(rand.Reader)
	if _, err := k.Decapsulate(make([]byte, CiphertextSize+1)); err == nil {
		t.Fatal("a long ciphertext was accepted")
	}
}

func BenchmarkGenerateKey(b *testing.B) {
	for b.Loop() {
		GenerateKey(rand.Reader)
	}
}

func BenchmarkEncapsulate(b *testing.B) {
	k, _ := GenerateKey(rand.Reader)
	pk := k.PublicKey()
	for b.Loop() {
		Encapsulate(rand.Reader, pk)
	}
}

func BenchmarkDecapsulate(b *testing.B) {
	k, _ := GenerateKey(rand.Reader)
	ct, _, _ := Encapsulate(rand.Reader, k.PublicKey())
	for b.Loop() {
		k.Decapsulate(ct)
	}
}

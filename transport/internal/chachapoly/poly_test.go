package chachapoly

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/poly1305"
)

// The IFMA path and its scalar tail against x/crypto/poly1305: every
// length from 128 to 1200 bytes and some long ones, random keys and keys
// at the edges (r and s all ones after clamping, zero), random messages
// and messages of all ones (the largest limbs).
func TestPolyIFMAAgainstXCrypto(t *testing.T) {
	if !polyIFMA {
		t.Skip("no AVX-512 IFMA on this CPU")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	lengths := []int{}
	for n := 128; n <= 1200; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 4096, 32768+4+9, 65536, 262144-1)
	for i, n := range lengths {
		var key [32]byte
		switch i % 4 {
		case 0:
			for j := range key {
				key[j] = 0xff
			}
		case 1:
			// zero key: r = 0, s = 0
		default:
			for j := range key {
				key[j] = byte(rng.Uint32())
			}
		}
		msg := make([]byte, n)
		if i%3 == 0 {
			for j := range msg {
				msg[j] = 0xff
			}
		} else {
			for j := range msg {
				msg[j] = byte(rng.Uint32())
			}
		}
		var want, got, viaSum [16]byte
		poly1305.Sum(&want, msg, &key)
		polySumIFMA(&got, msg, &key)
		polySum(&viaSum, msg, &key)
		if got != want || viaSum != want {
			t.Fatalf("length %d (case %d): IFMA %x, polySum %x, x/crypto %x", n, i%4, got, viaSum, want)
		}
		if !polyVerify(&want, msg, &key) {
			t.Fatalf("length %d: polyVerify refuses the right tag", n)
		}
		bad := want
		bad[i%16] ^= 1 << (i % 8)
		if polyVerify(&bad, msg, &key) {
			t.Fatalf("length %d: polyVerify accepts a wrong tag", n)
		}
	}
}

// The scalar arithmetic alone (what runs after the groups) against
// x/crypto for short messages, every length 0-300.
func TestPolyScalarAgainstXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for n := range 301 {
		var key [32]byte
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		if n%5 == 0 {
			for j := range key {
				key[j] = 0xff
			}
		}
		msg := make([]byte, n)
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		if n%7 == 0 {
			msg = bytes.Repeat([]byte{0xff}, n)
		}
		var want [16]byte
		poly1305.Sum(&want, msg, &key)
		if got := polyScalar(msg, &key); got != want {
			t.Fatalf("length %d: scalar %x, x/crypto %x", n, got, want)
		}
	}
}

// polyScalar is the tag from the 64-bit-limb code alone.
func polyScalar(msg []byte, key *[32]byte) [16]byte {
	r0, r1 := polyKeyR(key)
	var out [16]byte
	polyFinish(&out, poly130{}, msg, r0, r1, key)
	return out
}

// Package sntrup761 implements the Streamlined NTRU Prime key
// encapsulation method with parameters p = 761, q = 4591, w = 286, as
// OpenSSH's sntrup761x25519-sha512 key exchange uses it (the default of
// OpenSSH 9.0 to 9.8): a 1158-byte public key, a 1039-byte ciphertext and
// a 32-byte shared key.
//
// The ring is Z[x]/(x^p - x - 1); R3 is it with coefficients mod 3, Rq
// mod q. A public key is h = g/(3f) in Rq for a random small g invertible
// in R3 and a random f of weight w; a ciphertext is h*r rounded to
// multiples of 3 for a random r of weight w, with a hash confirming r.
// Decapsulation rejects implicitly: a ciphertext that does not re-encrypt
// to itself yields a key hashed from a secret, not an error.
//
// The arithmetic on secrets has no branches or memory accesses that
// depend on them (masks instead, as in the designers' reference code),
// but Go gives no guarantee of constant time.
package sntrup761

import (
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
)

const (
	p   = 761
	q   = 4591
	w   = 286
	q12 = (q - 1) / 2

	smallBytes   = (p + 3) / 4 // 191: four coefficients in {-1,0,1} a byte
	roundedBytes = 1007        // p values in [0, (q+2)/3) mixed-radix encoded
	confirmBytes = 32

	// PublicKeySize is the size of an encoded public key (p values mod q).
	PublicKeySize = 1158
	// CiphertextSize is the size of a ciphertext: the rounded product and
	// the hash confirming it.
	CiphertextSize = roundedBytes + confirmBytes
	// SharedKeySize is the size of the key both sides derive.
	SharedKeySize = 32
)

// small is an element of R3, or of R with coefficients in {-1,0,1}.
type small [p]int8

// fq is an element of Rq, coefficients in [-(q-1)/2, (q-1)/2].
type fq [p]int16

// f3Freeze reduces x to {-1,0,1} mod 3. Division by a constant compiles
// to a multiplication, without a branch.
func f3Freeze(x int32) int8 {
	r := x % 3
	r += 3 & (r >> 31) // [0, 2]
	r -= 3 & ((1 - r) >> 31)
	return int8(r)
}

// fqFreeze reduces x to [-(q-1)/2, (q-1)/2] mod q.
func fqFreeze(x int32) int16 {
	r := x % q
	r += q & (r >> 31) // [0, q-1]
	r -= q & ((q12 - r) >> 31)
	return int16(r)
}

// f3Small is f3Freeze for x in [-2, 2]: the inverse's steps add two
// elements of {-1,0,1}.
func f3Small(x int32) int32 {
	x -= 3 & ((1 - x) >> 31)
	x += 3 & ((x + 1) >> 31)
	return x
}

// fqBarrett is fqFreeze for |x| < 2^26, with a rounded quotient from a
// multiplication by 2^32/q instead of a division: off by at most one, so
// that one correction each way lands in [-(q-1)/2, (q-1)/2].
func fqBarrett(x int32) int32 {
	r := x - q*int32((int64(x)*935519+1<<31)>>32)
	r -= q & ((q12 - r) >> 31)
	r += q & ((r + q12) >> 31)
	return r
}

// fqRecip is 1/a mod q (a not 0 mod q): a^(q-2).
func fqRecip(a int16) int16 {
	result, base := int32(1), int32(a)
	for e := q - 2; e > 0; e >>= 1 {
		if e&1 == 1 {
			result = int32(fqFreeze(result * base))
		}
		base = int32(fqFreeze(base * base))
	}
	return int16(result)
}

// nonzeroMask is -1 if x != 0, else 0.
func nonzeroMask(x int32) int32 {
	u := uint32(x)
	return -int32((u | -u) >> 31)
}

// negativeMask is -1 if x < 0, else 0.
func negativeMask(x int32) int32 { return x >> 31 }

// reduce folds a product of degree up to 2p-2 by x^p = x + 1, from the
// top down: x^i (i >= p) adds to x^(i-p+1) and x^(i-p).
func reduce(acc *[2*p - 1]int32) {
	for i := 2*p - 2; i >= p; i-- {
		acc[i-p+1] += acc[i]
		acc[i-p] += acc[i]
	}
}

// product is a*g reduced by x^p = x + 1, before any coefficient is
// frozen: what rqMultSmall and r3Mult then reduce mod q or mod 3.
func product[T int8 | int16](a *[p]T, g *small) [2*p - 1]int32 {
	var acc [2*p - 1]int32
	for i := range p {
		ai := int32(a[i])
		row := acc[i : i+p]
		for j := range row {
			row[j] += ai * int32(g[j])
		}
	}
	reduce(&acc)
	return acc
}

// rqMultSmall is h*g in Rq.
func rqMultSmall(h *fq, g *small) (out fq) {
	acc := product((*[p]int16)(h), g)
	for i := range out {
		out[i] = fqFreeze(acc[i])
	}
	return out
}

// r3Mult is a*b in R3.
func r3Mult(a, b *small) (out small) {
	acc := product((*[p]int8)(a), b)
	for i := range out {
		out[i] = f3Freeze(acc[i])
	}
	return out
}

// The two inverses below run the same fixed sequence of 2p-1 division
// steps (Bernstein and Yang's constant-time gcd): f starts as the
// modulus x^p - x - 1 and g as x times the input, both with their
// coefficients in reverse order (index i holds x^(p-i)); each step may
// swap them (a mask, by delta and g's leading coefficient), cancels g's
// leading coefficient against f's and divides g by x, while v and r
// track the multipliers of the input. The input is invertible exactly
// when delta ends at 0, and its inverse is v reversed, over f's leading
// coefficient.

// r3Recip is 1/in in R3, and whether in is invertible.
func r3Recip(in *small) (out small, ok bool) {
	var f, g, v, r [p + 1]int32
	r[0] = 1
	f[0], f[p-1], f[p] = 1, -1, -1
	for i := range p {
		g[p-1-i] = int32(in[i])
	}
	delta := int32(1)
	for loop := range 2*p - 1 {
		// v and r are nonzero up to index loop+1 at most (v moves up
		// a place a step, r adds v to itself): a bound that depends on
		// the step's number only, not on the values.
		vr := min(loop+2, p+1)
		copy(v[1:vr], v[:vr-1])
		v[0] = 0
		sign := -g[0] * f[0]
		swap := negativeMask(-delta) & nonzeroMask(g[0])
		delta ^= swap & (delta ^ -delta)
		delta++
		for i := range vr {
			t := swap & (v[i] ^ r[i])
			v[i] ^= t
			r[i] = f3Small(r[i] ^ t + sign*v[i])
		}
		// One pass swaps f and g and computes g + sign*f, whose
		// leading coefficient is zero: it is shifted out on the way.
		f[0] ^= swap & (f[0] ^ g[0])
		for i := 1; i <= p; i++ {
			t := swap & (f[i] ^ g[i])
			fi := f[i] ^ t
			f[i] = fi
			g[i-1] = f3Small(g[i] ^ t + sign*fi)
		}
		g[p] = 0
	}
	sign := f[0]
	for i := range out {
		out[i] = int8(sign * v[p-1-i])
	}
	return out, delta == 0
}

// rqRecip3 is 1/(3*in) in Rq, and whether it exists.
func rqRecip3(in *small) (out fq, ok bool) {
	var f, g, v, r [p + 1]int32
	r[0] = int32(fqRecip(3))
	f[0], f[p-1], f[p] = 1, -1, -1
	for i := range p {
		g[p-1-i] = int32(in[i])
	}
	delta := int32(1)
	for loop := range 2*p - 1 {
		vr := min(loop+2, p+1) // as in r3Recip
		copy(v[1:vr], v[:vr-1])
		v[0] = 0
		swap := negativeMask(-delta) & nonzeroMask(g[0])
		delta ^= swap & (delta ^ -delta)
		delta++
		// f and g swapped: their leading coefficients first.
		t0 := swap & (f[0] ^ g[0])
		f0, g0 := f[0]^t0, g[0]^t0
		f[0] = f0
		for i := range vr {
			t := swap & (v[i] ^ r[i])
			v[i] ^= t
			r[i] = fqBarrett(f0*(r[i]^t) - g0*v[i])
		}
		// As in r3Recip, one pass swaps, combines and shifts.
		for i := 1; i <= p; i++ {
			t := swap & (f[i] ^ g[i])
			fi := f[i] ^ t
			f[i] = fi
			g[i-1] = fqBarrett(f0*(g[i]^t) - g0*fi)
		}
		g[p] = 0
	}
	scale := int32(fqRecip(int16(f[0])))
	for i := range out {
		out[i] = fqFreeze(scale * v[p-1-i])
	}
	return out, delta == 0
}

// weightMask is 0 if s has exactly w nonzero coefficients, else -1.
func weightMask(s *small) int32 {
	var weight int32
	for _, c := range s {
		weight += int32(c & 1)
	}
	return nonzeroMask(weight - w)
}

// round takes each coefficient to the nearest multiple of 3.
func round(a *fq) (out fq) {
	for i, c := range a {
		out[i] = c - int16(f3Freeze(int32(c)))
	}
	return out
}

// The mixed-radix encoding of the NTRU Prime specification: values
// R[i] < M[i] become bytes, pairing neighbours (R[i] + M[i]*R[i+1] below
// M[i]*M[i+1]) and emitting the low bytes of each pair while its bound is
// at least 2^14, then encoding the pairs the same way, until one value
// is left, whose bytes end the string. Lengths and bounds depend only on
// M, never on the values.

func encode(out []byte, r, m []uint32) []byte {
	if len(m) == 0 {
		return out
	}
	if len(m) == 1 {
		v, b := r[0], m[0]
		for b > 1 {
			out = append(out, byte(v))
			v >>= 8
			b = (b + 255) >> 8
		}
		return out
	}
	r2 := make([]uint32, 0, (len(m)+1)/2)
	m2 := make([]uint32, 0, (len(m)+1)/2)
	for i := 0; i+1 < len(m); i += 2 {
		b := m[i] * m[i+1]
		v := r[i] + m[i]*r[i+1]
		for b >= 16384 {
			out = append(out, byte(v))
			v >>= 8
			b = (b + 255) >> 8
		}
		r2 = append(r2, v)
		m2 = append(m2, b)
	}
	if len(m)%2 == 1 {
		r2 = append(r2, r[len(m)-1])
		m2 = append(m2, m[len(m)-1])
	}
	return encode(out, r2, m2)
}

// decode reverses encode for any input of the right length: each value
// comes out reduced below its bound, so that every string decodes (a
// peer's bytes need no other check).
func decode(s []byte, m []uint32) []uint32 {
	if len(m) == 0 {
		return nil
	}
	if len(m) == 1 {
		var v uint64
		for i := len(s) - 1; i >= 0; i-- {
			v = v<<8 | uint64(s[i])
		}
		return []uint32{uint32(v % uint64(m[0]))}
	}
	type part struct{ r, t uint32 }
	bottom := make([]part, 0, len(m)/2)
	m2 := make([]uint32, 0, (len(m)+1)/2)
	k := 0
	for i := 0; i+1 < len(m); i += 2 {
		b, v, t := m[i]*m[i+1], uint32(0), uint32(1)
		for b >= 16384 {
			v += uint32(s[k]) * t
			t <<= 8
			k++
			b = (b + 255) >> 8
		}
		bottom = append(bottom, part{v, t})
		m2 = append(m2, b)
	}
	if len(m)%2 == 1 {
		m2 = append(m2, m[len(m)-1])
	}
	top := decode(s[k:], m2)
	out := make([]uint32, 0, len(m))
	for i := 0; i+1 < len(m); i += 2 {
		b := bottom[i/2]
		v := uint64(b.r) + uint64(b.t)*uint64(top[i/2])
		out = append(out, uint32(v%uint64(m[i])), uint32(v/uint64(m[i])%uint64(m[i+1])))
	}
	if len(m)%2 == 1 {
		out = append(out, top[len(top)-1])
	}
	return out
}

// encodedLen is the length encode gives for bounds m, computed without
// values: what decode consumes.
func encodedLen(m []uint32) int {
	return len(encode(nil, make([]uint32, len(m)), m))
}

func bounds(b uint32) []uint32 {
	m := make([]uint32, p)
	for i := range m {
		m[i] = b
	}
	return m
}

var (
	rqBounds      = bounds(q)
	roundedBounds = bounds((q + 2) / 3)
)

func rqEncode(h *fq) []byte {
	r := make([]uint32, p)
	for i, c := range h {
		r[i] = uint32(int32(c) + q12)
	}
	return encode(make([]byte, 0, PublicKeySize), r, rqBounds)
}

func rqDecode(b []byte) (h fq) {
	for i, v := range decode(b, rqBounds) {
		h[i] = int16(int32(v) - q12)
	}
	return h
}

func roundedEncode(c *fq) []byte {
	r := make([]uint32, p)
	for i, v := range c {
		r[i] = uint32(int32(v)+q12) / 3
	}
	return encode(make([]byte, 0, CiphertextSize), r, roundedBounds)
}

func roundedDecode(b []byte) (c fq) {
	for i, v := range decode(b, roundedBounds) {
		c[i] = int16(int32(v)*3 - q12)
	}
	return c
}

// smallEncode packs four coefficients a byte, each as c+1 in two bits.
func smallEncode(s *small) []byte {
	out := make([]byte, smallBytes)
	for i, c := range s {
		out[i/4] |= byte(c+1) << (2 * (i % 4))
	}
	return out
}

// hashPrefix is the first 32 bytes of SHA-512(b || in...).
func hashPrefix(b byte, in ...[]byte) []byte {
	h := sha512.New()
	h.Write([]byte{b})
	for _, x := range in {
		h.Write(x)
	}
	return h.Sum(nil)[:32]
}

// hashConfirm is the hash a ciphertext carries: of r (encoded) and of the
// public key (its hash, cache).
func hashConfirm(rEnc, cache []byte) []byte {
	return hashPrefix(2, hashPrefix(3, rEnc), cache)
}

// hashSession is the shared key: b is 1 for a ciphertext that checked, 0
// for one rejected (then y is the secret rho instead of r).
func hashSession(b byte, y, ct []byte) []byte {
	return hashPrefix(b, hashPrefix(3, y), ct)
}

// randomSmall draws each coefficient from {-1,0,1}.
func randomSmall(rand io.Reader) (s small, err error) {
	var buf [4 * p]byte
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return s, err
	}
	for i := range s {
		x := uint32(buf[4*i]) | uint32(buf[4*i+1])<<8 | uint32(buf[4*i+2])<<16 | uint32(buf[4*i+3])<<24
		s[i] = int8(((x&0x3fffffff)*3)>>30) - 1
	}
	return s, nil
}

// randomShort draws an element of weight w: w coefficients of ±1 and the
// rest 0, in random places. Each place gets a random 32-bit key whose two
// low bits say its value; sorting the keys (a fixed network of
// compare-and-swaps) shuffles the values.
func randomShort(rand io.Reader) (s small, err error) {
	var buf [4 * p]byte
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return s, err
	}
	keys := make([]uint32, p)
	for i := range keys {
		x := uint32(buf[4*i]) | uint32(buf[4*i+1])<<8 | uint32(buf[4*i+2])<<16 | uint32(buf[4*i+3])<<24
		if i < w {
			keys[i] = x &^ 1 // low bits 00 or 10: -1 or +1
		} else {
			keys[i] = x&^3 | 1 // low bits 01: 0
		}
	}
	sortNetwork(keys)
	for i, k := range keys {
		s[i] = int8(k&3) - 1
	}
	return s, nil
}

// sortNetwork sorts x with Batcher's odd-even merge network: the same
// compare-and-swaps whatever the values.
func sortNetwork(x []uint32) {
	n := len(x)
	for pp := 1; pp < n; pp <<= 1 {
		for k := pp; k >= 1; k >>= 1 {
			for j := k % pp; j+k < n; j += 2 * k {
				for i := 0; i < k && i+j+k < n; i++ {
					if (i+j)/(2*pp) == (i+j+k)/(2*pp) {
						minMax(&x[i+j], &x[i+j+k])
					}
				}
			}
		}
	}
}

// minMax puts the smaller of *a and *b in *a, without a branch.
func minMax(a, b *uint32) {
	d := uint64(*b) - uint64(*a)
	mask := uint32(0) - uint32(d>>63) // all ones when *b < *a
	t := mask & (*a ^ *b)
	*a ^= t
	*b ^= t
}

// PrivateKey is a decapsulation key. It is used once per key exchange.
type PrivateKey struct {
	f     small // weight w
	v     small // 1/g in R3
	h     fq
	pk    []byte
	cache []byte // hashPrefix(4, pk)
	rho   []byte // the secret behind rejected ciphertexts' keys
}

// GenerateKey makes a key pair from rand.
func GenerateKey(rand io.Reader) (*PrivateKey, error) {
	k := &PrivateKey{}
	for {
		g, err := randomSmall(rand)
		if err != nil {
			return nil, fmt.Errorf("sntrup761: %w", err)
		}
		if v, ok := r3Recip(&g); ok {
			f, err := randomShort(rand)
			if err != nil {
				return nil, fmt.Errorf("sntrup761: %w", err)
			}
			finv, ok := rqRecip3(&f)
			if !ok {
				// Rq is a field: it cannot happen for f != 0.
				return nil, errors.New("sntrup761: 3f not invertible in Rq")
			}
			k.f, k.v, k.h = f, v, rqMultSmall(&finv, &g)
			break
		}
	}
	k.pk = rqEncode(&k.h)
	k.cache = hashPrefix(4, k.pk)
	k.rho = make([]byte, smallBytes)
	if _, err := io.ReadFull(rand, k.rho); err != nil {
		return nil, fmt.Errorf("sntrup761: %w", err)
	}
	return k, nil
}

// NewKeyFromSeed makes the key pair that GenerateKey makes reading a
// ChaCha8 stream keyed by seed: the same seed, the same key. For tests
// and known answers (the fixed clients of kex's tests and of
// testvectors' recorded exchanges); a key exchange takes GenerateKey's
// from crypto/rand.
func NewKeyFromSeed(seed [32]byte) (*PrivateKey, error) {
	return GenerateKey(mrand.NewChaCha8(seed))
}

// PublicKey is the encoded public key (PublicKeySize bytes).
func (k *PrivateKey) PublicKey() []byte { return append([]byte(nil), k.pk...) }

// hide is the ciphertext of r under public key h (with cache, the hash
// of its encoding).
func hide(h *fq, cache []byte, r *small) (ct, rEnc []byte) {
	hr := rqMultSmall(h, r)
	c := round(&hr)
	rEnc = smallEncode(r)
	ct = append(roundedEncode(&c), hashConfirm(rEnc, cache)...)
	return ct, rEnc
}

// Encapsulate makes a ciphertext for the encoded public key pk and the
// key it carries. Any pk of the right length is a key (its values are
// reduced mod q).
func Encapsulate(rand io.Reader, pk []byte) (ct, key []byte, err error) {
	if len(pk) != PublicKeySize {
		return nil, nil, fmt.Errorf("sntrup761: public key of %d bytes, want %d", len(pk), PublicKeySize)
	}
	h := rqDecode(pk)
	r, err := randomShort(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("sntrup761: %w", err)
	}
	ct, rEnc := hide(&h, hashPrefix(4, pk), &r)
	return ct, hashSession(1, rEnc, ct), nil
}

// Decapsulate recovers the key a ciphertext carries. A ciphertext of the
// right length always yields a key: one that does not re-encrypt to
// itself yields a key derived from the private key's secret, which the
// peer cannot know (implicit rejection), so that the key exchange fails
// at its next step. Only a wrong length is an error.
func (k *PrivateKey) Decapsulate(ct []byte) ([]byte, error) {
	if len(ct) != CiphertextSize {
		return nil, fmt.Errorf("sntrup761: ciphertext of %d bytes, want %d", len(ct), CiphertextSize)
	}
	c := roundedDecode(ct[:roundedBytes])
	cf := rqMultSmall(&c, &k.f)
	var e small
	for i, x := range cf {
		e[i] = f3Freeze(int32(fqFreeze(3 * int32(x))))
	}
	ev := r3Mult(&e, &k.v)
	// A result of the wrong weight becomes a fixed one of weight w, which
	// the comparison below then rejects.
	mask := int8(weightMask(&ev))
	var r small
	for i := range r {
		if i < w {
			r[i] = ((ev[i] ^ 1) &^ mask) ^ 1
		} else {
			r[i] = ev[i] &^ mask
		}
	}
	ct2, rEnc := hide(&k.h, k.cache, &r)
	ok := subtle.ConstantTimeCompare(ct, ct2)
	subtle.ConstantTimeCopy(1-ok, rEnc, k.rho)
	return hashSession(byte(ok), rEnc, ct), nil
}

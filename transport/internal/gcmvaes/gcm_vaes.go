package gcmvaes

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
)

// The VAES path (gcm_vaes_amd64.s). This file holds what the assembly
// needs from Go (the AES key schedule and the table of powers of the hash
// key) and the arithmetic it follows, written out in Go for the key setup
// and for the tests.
//
// GHASH elements are kept as the assembly keeps them: the 16 bytes of a
// block read as a big-endian 128-bit integer (hi, lo), so that the
// coefficient of x^0 is bit 127. Multiplying two such values carry-less
// gives the product shifted by one bit; the hash key is therefore stored
// as H·x ("H2"), and gfMul(a, H2) reduces to a·H (the method of Gueron and
// Kounavis, "Intel Carry-Less Multiplication Instruction and its Usage for
// Computing the GCM Mode", with the reduction constant 0xc2 << 56).

// gfElem is a GHASH element: lo is the low 64 bits, hi the high 64 bits
// (the order of an XMM register in memory).
type gfElem struct{ lo, hi uint64 }

// gfFromBlock reads a 16-byte block as a GHASH element.
func gfFromBlock(b []byte) gfElem {
	return gfElem{lo: binary.BigEndian.Uint64(b[8:]), hi: binary.BigEndian.Uint64(b[:8])}
}

// putBlock writes e back as 16 bytes.
func (e gfElem) putBlock(b []byte) {
	binary.BigEndian.PutUint64(b[:8], e.hi)
	binary.BigEndian.PutUint64(b[8:], e.lo)
}

const gfReduce = 0xc2 << 56

// clmul64 is the carry-less product of a and b.
func clmul64(a, b uint64) (hi, lo uint64) {
	for i := range 64 {
		if b>>i&1 != 0 {
			lo ^= a << i
			if i > 0 {
				hi ^= a >> (64 - i)
			}
		}
	}
	return hi, lo
}

// gfMul multiplies as the assembly does: a schoolbook carry-less product
// and two folding steps by the reduction constant.
func gfMul(a, b gfElem) gfElem {
	h0, l0 := clmul64(a.lo, b.lo)
	h1, l1 := clmul64(a.hi, b.hi)
	hm1, lm1 := clmul64(a.lo, b.hi)
	hm2, lm2 := clmul64(a.hi, b.lo)
	hm, lm := hm1^hm2, lm1^lm2
	t0 := gfElem{lo: l0, hi: h0 ^ lm}
	t1 := gfElem{lo: l1 ^ hm, hi: h1}
	for range 2 {
		th, tl := clmul64(t0.lo, gfReduce)
		t0 = gfElem{lo: t0.hi ^ tl, hi: t0.lo ^ th}
	}
	return gfElem{lo: t0.lo ^ t1.lo, hi: t0.hi ^ t1.hi}
}

// gfHashKey turns H = E(K, 0^128) into H·x, the form gfMul expects.
func gfHashKey(h []byte) gfElem {
	e := gfFromBlock(h)
	carry := e.hi >> 63
	e.hi = e.hi<<1 | e.lo>>63
	e.lo <<= 1
	if carry != 0 {
		e.hi ^= gfReduce
		e.lo ^= 1
	}
	return e
}

// gcmVAESPowers is the table of the assembly: H^16·x down to H·x, so that
// sixteen blocks line up with the powers they are multiplied by.
type gcmVAESPowers [16]gfElem

func (p *gcmVAESPowers) init(h2 gfElem) {
	pw := h2
	for i := 15; i >= 0; i-- {
		p[i] = pw
		pw = gfMul(pw, h2)
	}
}

// aesSbox is the AES S-box, computed (FIPS 197 section 5.1.1): the
// multiplicative inverse in GF(2^8), then the affine map.
var aesSbox = func() (s [256]byte) {
	mul := func(a, b byte) (p byte) {
		for b != 0 {
			if b&1 != 0 {
				p ^= a
			}
			hi := a & 0x80
			a <<= 1
			if hi != 0 {
				a ^= 0x1b
			}
			b >>= 1
		}
		return p
	}
	for x := range 256 {
		var inv byte
		for y := 1; y < 256 && x != 0; y++ {
			if mul(byte(x), byte(y)) == 1 {
				inv = byte(y)
				break
			}
		}
		s[x] = inv ^ bits.RotateLeft8(inv, 1) ^ bits.RotateLeft8(inv, 2) ^
			bits.RotateLeft8(inv, 3) ^ bits.RotateLeft8(inv, 4) ^ 0x63
	}
	return s
}()

// aesExpandKey returns the encryption round keys of a 16- or 32-byte AES
// key (FIPS 197 section 5.2), 16 bytes per round, in the byte order
// AESENC takes them from memory, and the number of rounds.
func aesExpandKey(key []byte) ([]byte, int) {
	nk := len(key) / 4
	rounds := nk + 6
	w := make([]byte, 16*(rounds+1))
	copy(w, key)
	rcon := byte(1)
	for i := nk; i < 4*(rounds+1); i++ {
		var t [4]byte
		copy(t[:], w[4*(i-1):4*i])
		switch {
		case i%nk == 0:
			t = [4]byte{aesSbox[t[1]] ^ rcon, aesSbox[t[2]], aesSbox[t[3]], aesSbox[t[0]]}
			hi := rcon & 0x80
			rcon <<= 1
			if hi != 0 {
				rcon ^= 0x1b
			}
		case nk > 6 && i%nk == 4:
			t = [4]byte{aesSbox[t[0]], aesSbox[t[1]], aesSbox[t[2]], aesSbox[t[3]]}
		}
		for j := range 4 {
			w[4*i+j] = w[4*(i-nk)+j] ^ t[j]
		}
	}
	return w, rounds
}

// gcmVAESKey is one AES-GCM key prepared for gcmVAES.
type gcmVAESKey struct {
	ks     []byte // round keys
	rounds int
	pw     gcmVAESPowers
}

// newGCMVAESKey prepares key; block is AES under the same key.
func newGCMVAESKey(key []byte, block cipher.Block) *gcmVAESKey {
	k := &gcmVAESKey{}
	k.ks, k.rounds = aesExpandKey(key)
	var h [16]byte
	block.Encrypt(h[:], h[:])
	k.pw.init(gfHashKey(h[:]))
	return k
}

// hashBlock folds one block into acc (through gcmVAES's decryption path,
// which hashes its input; the keystream and output are thrown away).
func (k *gcmVAESKey) hashBlock(acc *gfElem, blk *[16]byte) {
	var ctr, junk [16]byte
	gcmVAES(&k.ks[0], k.rounds, &k.pw, &ctr, acc, &junk[0], &blk[0], 1, 1)
}

// crypt encrypts (or, with dec, decrypts) src into dst, a whole number of
// blocks, under nonce with the 4-byte AAD of an SSH packet, and returns
// the tag of the ciphertext.
func (k *gcmVAESKey) crypt(dst, src, aad []byte, nonce *[NonceSize]byte, dec bool) (tag [16]byte) {
	var j0 [16]byte
	copy(j0[:], nonce[:])
	j0[15] = 1
	var acc gfElem
	var blk [16]byte
	copy(blk[:], aad)
	k.hashBlock(&acc, &blk)
	if n := len(src) / 16; n > 0 {
		ctr := j0
		ctr[15] = 2
		d := 0
		if dec {
			d = 1
		}
		gcmVAES(&k.ks[0], k.rounds, &k.pw, &ctr, &acc, &dst[0], &src[0], n, d)
	}
	binary.BigEndian.PutUint64(blk[:8], uint64(len(aad))*8)
	binary.BigEndian.PutUint64(blk[8:], uint64(len(src))*8)
	k.hashBlock(&acc, &blk)
	acc.putBlock(tag[:])
	// E(K, J0), as the keystream of J0 over zeros (a call through
	// cipher.Block would move j0 to the heap).
	var zero, ek [16]byte
	var unused gfElem
	gcmVAES(&k.ks[0], k.rounds, &k.pw, &j0, &unused, &ek[0], &zero[0], 1, 0)
	subtle.XORBytes(tag[:], tag[:], ek[:])
	return tag
}

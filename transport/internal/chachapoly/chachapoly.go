// Package chachapoly is the cryptography of the SSH cipher
// chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305,
// draft-ietf-sshm-chacha20-poly1305) for one direction's key: the
// packet_length under K_1, the rest of the packet under K_2, and the
// Poly1305 tag over both. Framing, padding and length limits are the
// caller's (package transport).
//
// A Cipher seals a framed packet in place or into another buffer (Seal),
// decrypts the length field of an arriving packet (Length), and checks and
// decrypts the rest in place (Open). Where the CPU has AVX-512F the bulk
// ChaCha20 runs in chacha_amd64.s, and where it also has AVX-512 IFMA,
// Poly1305 of long packets runs in poly_amd64.s (poly.go); elsewhere, and
// with -tags purego, x/crypto/chacha20 and x/crypto/poly1305 run. Both
// give the same bytes; the tests here compare them with each other and
// with a reference composed from x/crypto.
package chachapoly

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"
)

// The 64 bytes of key material are K_2 (first 32: payload and Poly1305
// key) and K_1 (last 32: packet length only). Both ChaCha20 instances use
// the sequence number as a 64-bit big-endian nonce. K_1 at block 0
// encrypts the length; the first 32 bytes of K_2's block 0 are the
// Poly1305 key; K_2 from block 1 on encrypts the rest of the packet. The
// tag is Poly1305 over the encrypted length and the ciphertext.
//
// Speed: the bulk XOR runs in AVX-512 assembly where the CPU has it
// (chacha_amd64.s). Elsewhere it uses x/crypto/chacha20 (vectorised on
// amd64 and arm64): its 32-bit counter and 96-bit nonce with the first
// four nonce bytes zero give the very keystream of the 64-bit-nonce
// layout, from block 1 on with SetCounter(1). The tag is polySum (poly.go:
// AVX-512 IFMA where the CPU has it, x/crypto/poly1305 otherwise). The two
// blocks at counter 0 come from chachaBlock below.

const (
	// KeySize is the size of the key material of one direction: K_2,
	// then K_1.
	KeySize = 64
	// TagSize is the size of the Poly1305 tag that ends a packet.
	TagSize = poly1305.TagSize

	// The ChaCha20 constants, "expand 32-byte k" as little-endian words.
	chachaC0, chachaC1, chachaC2, chachaC3 = 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574
)

// Cipher holds one direction's keys and scratch space. It is not safe for
// concurrent use.
type Cipher struct {
	k2b    [32]byte  // K_2 as bytes, for x/crypto/chacha20 (without asm)
	k1, k2 [8]uint32 // K_1 and K_2 as little-endian words
	nonce  [12]byte  // 4 zero bytes, then the sequence number as a uint64
	block  [64]byte  // scratch keystream block
	asm    bool      // bulk XOR in chacha_amd64.s, not x/crypto/chacha20
}

// New returns a Cipher for key, KeySize bytes of key material (K_2, then
// K_1).
func New(key []byte) (*Cipher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("chachapoly: a %d-byte key, want %d", len(key), KeySize)
	}
	c := &Cipher{asm: chachaAVX512}
	copy(c.k2b[:], key[:32])
	for i := range 8 {
		c.k2[i] = binary.LittleEndian.Uint32(key[4*i:])
		c.k1[i] = binary.LittleEndian.Uint32(key[32+4*i:])
	}
	return c, nil
}

// Accelerated reports whether ChaCha20 runs in the AVX-512 assembly on
// this CPU (and build) by default.
func Accelerated() bool { return chachaAVX512 }

// DisableAssembly makes c use x/crypto/chacha20 for the bulk of each
// packet even where the CPU has AVX-512: for tests that compare the two
// paths. (Poly1305 chooses by CPU alone and gives the same tag either way.)
func (c *Cipher) DisableAssembly() { c.asm = false }

// seqNonce returns the ChaCha20 nonce words for seq: the IETF 96-bit
// nonce 00000000 || uint64be(seq), read as three little-endian words.
// The upper half of the 64-bit sequence number is always zero in SSH.
func seqNonce(seq uint32) [3]uint32 {
	return [3]uint32{0, 0, bits.ReverseBytes32(seq)}
}

// setNonce stores the byte form of the nonce for x/crypto/chacha20.
func (c *Cipher) setNonce(seq uint32) {
	binary.BigEndian.PutUint32(c.nonce[8:], seq)
}

// lengthMask computes the K_1 keystream that covers packet_length.
func (c *Cipher) lengthMask(seq uint32) uint32 {
	n := seqNonce(seq)
	chachaBlock(&c.block, &c.k1, 0, &n)
	return binary.BigEndian.Uint32(c.block[:4])
}

// polyKey computes the Poly1305 key for seq into the first 32 bytes of
// c.block and returns it.
func (c *Cipher) polyKey(seq uint32) *[32]byte {
	n := seqNonce(seq)
	chachaBlock(&c.block, &c.k2, 0, &n)
	return (*[32]byte)(c.block[:32])
}

// Seal encrypts and authenticates the plaintext packet src (the 4-byte
// packet_length, then the rest: padding_length, payload, padding) under
// sequence number seq, and writes the encrypted packet and its tag to
// dst, which must be len(src)+TagSize bytes long. dst[:len(src)] and src
// are the same memory or do not overlap; sealing in place is
// Seal(seq, pkt, pkt[:len(pkt)-TagSize]). len(src) must be at least 4.
func (c *Cipher) Seal(seq uint32, dst, src []byte) {
	n := len(src)
	if len(dst) != n+TagSize || n < 4 {
		panic("chachapoly: bad Seal buffer sizes")
	}
	c.xorBody(seq, dst[4:n], src[4:n])
	binary.BigEndian.PutUint32(dst, binary.BigEndian.Uint32(src)^c.lengthMask(seq))
	polySum((*[16]byte)(dst[n:]), dst[:n], c.polyKey(seq))
	clear(c.block[:])
}

// Length returns the packet_length of the packet with sequence number seq
// from head, its first 4 encrypted bytes, which stay as they are (the tag
// covers them encrypted).
func (c *Cipher) Length(seq uint32, head []byte) uint32 {
	n := binary.BigEndian.Uint32(head[:4]) ^ c.lengthMask(seq)
	clear(c.block[:])
	return n
}

// Open checks in constant time the tag that ends pkt (a whole packet as it
// arrived: encrypted packet_length, ciphertext, tag) and, if it is right,
// decrypts the ciphertext in place and returns true. On a wrong tag it
// returns false and leaves pkt as it was. The first 4 bytes, the length,
// stay encrypted either way: Length gives them. len(pkt) must be at least
// 4+TagSize.
func (c *Cipher) Open(seq uint32, pkt []byte) bool {
	end := len(pkt) - TagSize
	if end < 4 {
		panic("chachapoly: Open of a packet shorter than 4+TagSize bytes")
	}
	ok := polyVerify((*[16]byte)(pkt[end:]), pkt[:end], c.polyKey(seq))
	clear(c.block[:])
	if !ok {
		return false
	}
	c.xorBody(seq, pkt[4:end], pkt[4:end])
	return true
}

// xorBody writes to dst src XORed with K_2's keystream for seq from
// block 1 on; dst and src are the same length, and the same or disjoint.
// Without the assembly it uses x/crypto/chacha20 (which has its own
// assembly on arm64 and others); the cipher value stays on the stack.
func (c *Cipher) xorBody(seq uint32, dst, src []byte) {
	if !c.asm {
		c.setNonce(seq)
		s, err := chacha20.NewUnauthenticatedCipher(c.k2b[:], c.nonce[:])
		if err != nil {
			panic("chachapoly: chacha20: " + err.Error()) // sizes are fixed
		}
		s.SetCounter(1)
		s.XORKeyStream(dst, src[:len(dst)])
		return
	}
	n := seqNonce(seq)
	st := [16]uint32{chachaC0, chachaC1, chachaC2, chachaC3,
		c.k2[0], c.k2[1], c.k2[2], c.k2[3], c.k2[4], c.k2[5], c.k2[6], c.k2[7],
		1, n[0], n[1], n[2]}
	src = src[:len(dst)]
	chunks := len(dst) / 1024
	if chunks > 0 {
		chachaXORAVX512(&st, &dst[0], &src[0], chunks)
		st[12] += uint32(16 * chunks)
	}
	if rest := dst[chunks*1024:]; len(rest) > 0 {
		var tail [1024]byte
		copy(tail[:], src[chunks*1024:])
		chachaXORAVX512(&st, &tail[0], &tail[0], 1)
		copy(rest, tail[:])
		clear(tail[:])
	}
}

// chachaBlock computes the ChaCha20 block function of RFC 8439 section
// 2.3 for key, a 32-bit block counter and a 96-bit nonce (all as
// little-endian words), and writes the 64-byte keystream block to out.
func chachaBlock(out *[64]byte, key *[8]uint32, counter uint32, nonce *[3]uint32) {
	const c0, c1, c2, c3 = chachaC0, chachaC1, chachaC2, chachaC3
	x0, x1, x2, x3 := uint32(c0), uint32(c1), uint32(c2), uint32(c3)
	x4, x5, x6, x7 := key[0], key[1], key[2], key[3]
	x8, x9, x10, x11 := key[4], key[5], key[6], key[7]
	x12, x13, x14, x15 := counter, nonce[0], nonce[1], nonce[2]

	for range 10 {
		// Column round.
		x0, x4, x8, x12 = quarterRound(x0, x4, x8, x12)
		x1, x5, x9, x13 = quarterRound(x1, x5, x9, x13)
		x2, x6, x10, x14 = quarterRound(x2, x6, x10, x14)
		x3, x7, x11, x15 = quarterRound(x3, x7, x11, x15)
		// Diagonal round.
		x0, x5, x10, x15 = quarterRound(x0, x5, x10, x15)
		x1, x6, x11, x12 = quarterRound(x1, x6, x11, x12)
		x2, x7, x8, x13 = quarterRound(x2, x7, x8, x13)
		x3, x4, x9, x14 = quarterRound(x3, x4, x9, x14)
	}

	le := binary.LittleEndian
	le.PutUint32(out[0:], x0+c0)
	le.PutUint32(out[4:], x1+c1)
	le.PutUint32(out[8:], x2+c2)
	le.PutUint32(out[12:], x3+c3)
	le.PutUint32(out[16:], x4+key[0])
	le.PutUint32(out[20:], x5+key[1])
	le.PutUint32(out[24:], x6+key[2])
	le.PutUint32(out[28:], x7+key[3])
	le.PutUint32(out[32:], x8+key[4])
	le.PutUint32(out[36:], x9+key[5])
	le.PutUint32(out[40:], x10+key[6])
	le.PutUint32(out[44:], x11+key[7])
	le.PutUint32(out[48:], x12+counter)
	le.PutUint32(out[52:], x13+nonce[0])
	le.PutUint32(out[56:], x14+nonce[1])
	le.PutUint32(out[60:], x15+nonce[2])
}

// quarterRound is the ChaCha quarter round (RFC 8439 section 2.1).
func quarterRound(a, b, c, d uint32) (uint32, uint32, uint32, uint32) {
	a += b
	d = bits.RotateLeft32(d^a, 16)
	c += d
	b = bits.RotateLeft32(b^c, 12)
	a += b
	d = bits.RotateLeft32(d^a, 8)
	c += d
	b = bits.RotateLeft32(b^c, 7)
	return a, b, c, d
}

package transport

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"
)

// chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305,
// draft-ietf-sshm-chacha20-poly1305).
//
// The 64 bytes of key material are K_2 (first 32: payload and Poly1305
// key) and K_1 (last 32: packet length only). Both ChaCha20 instances use
// the sequence number as a 64-bit big-endian nonce. K_1 at block 0
// encrypts the length; the first 32 bytes of K_2's block 0 are the
// Poly1305 key; K_2 from block 1 on encrypts the rest of the packet. The
// tag is Poly1305 over the encrypted length and the ciphertext.
//
// Speed: the bulk XOR runs in AVX-512 assembly where the CPU has it
// (chacha_amd64.s). Elsewhere it uses the RFC 8439 AEAD of x/crypto
// (vectorised on amd64 and arm64): its 32-bit counter and 96-bit nonce
// with the first four nonce bytes zero give the very keystream of the
// 64-bit-nonce layout, and its Seal starts at block 1; its tag covers
// another message and is discarded. The tag is polySum (poly.go: AVX-512
// IFMA where the CPU has it, x/crypto/poly1305 otherwise). The two blocks
// at counter 0 come from chachaBlock below.

const (
	// The ChaCha20 constants, "expand 32-byte k" as little-endian words.
	chachaC0, chachaC1, chachaC2, chachaC3 = 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574

	chachaKeySize = 64
	chachaTagSize = poly1305.TagSize
)

type chachaCipher struct {
	frame  frameInfo
	k2b    [32]byte  // K_2 as bytes, for x/crypto/chacha20 (without asm)
	k1, k2 [8]uint32 // K_1 and K_2 as little-endian words
	nonce  [12]byte  // 4 zero bytes, then the sequence number as a uint64
	block  [64]byte  // scratch keystream block
	rng    *rand.ChaCha8
	asm    bool // bulk XOR in chacha_amd64.s, not x/crypto/chacha20
}

func newChaChaCipher(key []byte) (*chachaCipher, error) {
	if len(key) != chachaKeySize {
		return nil, fmt.Errorf("transport: %s needs a %d-byte key, got %d", cipherChaCha20Poly1305, chachaKeySize, len(key))
	}
	c := &chachaCipher{
		frame: frameInfo{align: 8, macLen: chachaTagSize},
		rng:   newPaddingSource(),
		asm:   chachaAVX512,
	}
	copy(c.k2b[:], key[:32])
	for i := range 8 {
		c.k2[i] = binary.LittleEndian.Uint32(key[4*i:])
		c.k1[i] = binary.LittleEndian.Uint32(key[32+4*i:])
	}
	return c, nil
}

func (c *chachaCipher) lengthBytes() int { return 4 }
func (c *chachaCipher) overhead() int    { return chachaTagSize }

// seqNonce returns the ChaCha20 nonce words for seq: the IETF 96-bit
// nonce 00000000 || uint64be(seq), read as three little-endian words.
// The upper half of the 64-bit sequence number is always zero in SSH.
func seqNonce(seq uint32) [3]uint32 {
	return [3]uint32{0, 0, bits.ReverseBytes32(seq)}
}

// setNonce stores the byte form of the nonce for the AEAD.
func (c *chachaCipher) setNonce(seq uint32) {
	binary.BigEndian.PutUint32(c.nonce[8:], seq)
}

// lengthMask computes the K_1 keystream that covers packet_length.
func (c *chachaCipher) lengthMask(seq uint32) uint32 {
	n := seqNonce(seq)
	chachaBlock(&c.block, &c.k1, 0, &n)
	return binary.BigEndian.Uint32(c.block[:4])
}

// polyKey computes the Poly1305 key for seq into the first 32 bytes of
// c.block and returns it.
func (c *chachaCipher) polyKey(seq uint32) *[32]byte {
	n := seqNonce(seq)
	chachaBlock(&c.block, &c.k2, 0, &n)
	return (*[32]byte)(c.block[:32])
}

func (c *chachaCipher) appendPacket(dst []byte, seq uint32, payload []byte) []byte {
	out, pkt := c.frame.appendFrame(dst, payload, c.rng)
	c.seal(seq, pkt)
	return out
}

// seal encrypts and authenticates in place a framed plaintext packet pkt
// (length, body, then chachaTagSize bytes of room for the tag).
func (c *chachaCipher) seal(seq uint32, pkt []byte) {
	n := len(pkt) - chachaTagSize
	c.xorBody(seq, pkt[4:n], pkt[4:n])
	binary.BigEndian.PutUint32(pkt, binary.BigEndian.Uint32(pkt)^c.lengthMask(seq))
	polySum((*[16]byte)(pkt[n:]), pkt[:n], c.polyKey(seq))
	clear(c.block[:])
}

func (c *chachaCipher) appendFramed(dst []byte, seq uint32, frame []byte) ([]byte, bool) {
	pkt, ok := c.frame.frameInPlace(frame, c.rng)
	if !ok {
		return dst, false
	}
	n := len(pkt)
	out, o := growFor(dst, n+chachaTagSize)
	c.xorBody(seq, o[4:n], pkt[4:])
	binary.BigEndian.PutUint32(o, binary.BigEndian.Uint32(pkt)^c.lengthMask(seq))
	polySum((*[16]byte)(o[n:]), o[:n], c.polyKey(seq))
	clear(c.block[:])
	return out, true
}

func (c *chachaCipher) packetLength(seq uint32, head []byte) (int, error) {
	if len(head) < 4 {
		return 0, fmt.Errorf("%w: %d bytes of packet head", errBadPacket, len(head))
	}
	// head stays encrypted: the tag covers it as it came.
	n := binary.BigEndian.Uint32(head) ^ c.lengthMask(seq)
	clear(c.block[:])
	if err := c.frame.checkLength(n); err != nil {
		return 0, err
	}
	return int(n) + chachaTagSize, nil
}

func (c *chachaCipher) openPacket(seq uint32, pkt []byte) ([]byte, error) {
	if len(pkt) < 4+chachaTagSize {
		return nil, fmt.Errorf("%w: %d bytes of packet", errBadPacket, len(pkt))
	}
	packetLen := binary.BigEndian.Uint32(pkt) ^ c.lengthMask(seq)
	n, err := c.frame.checkPacket(packetLen, pkt)
	if err != nil {
		clear(c.block[:])
		return nil, err
	}
	end := 4 + n
	ok := polyVerify((*[16]byte)(pkt[end:]), pkt[:end], c.polyKey(seq))
	clear(c.block[:])
	if !ok {
		return nil, errMAC
	}
	c.xorBody(seq, pkt[4:end], pkt[4:end])
	binary.BigEndian.PutUint32(pkt, packetLen)
	return splitBody(pkt[4:end])
}

// xorBody writes to dst src XORed with K_2's keystream for seq from
// block 1 on; dst and src are the same length, and the same or disjoint.
// Without the assembly it uses x/crypto/chacha20 (which has its own
// assembly on arm64 and others); the cipher value stays on the stack.
func (c *chachaCipher) xorBody(seq uint32, dst, src []byte) {
	if !c.asm {
		c.setNonce(seq)
		s, err := chacha20.NewUnauthenticatedCipher(c.k2b[:], c.nonce[:])
		if err != nil {
			panic("transport: chacha20: " + err.Error()) // sizes are fixed
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

package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// aes128-gcm@openssh.com and aes256-gcm@openssh.com (RFC 5647 as OpenSSH
// implements it, PROTOCOL section 1.6): the packet_length is in the clear
// and authenticated as AAD; padding aligns the rest to 16 bytes; the
// 12-byte nonce is the IV from the key derivation, whose last 8 bytes are a
// big-endian invocation counter incremented after every packet; the tag is
// 16 bytes. The negotiated MAC is ignored.

const (
	gcmIVSize  = 12
	gcmTagSize = 16
)

type gcmCipher struct {
	frame frameInfo
	aead  cipher.AEAD
	// vaes, where the CPU has VAES and VPCLMULQDQ, does what aead does
	// at about twice its speed (gcm_vaes_amd64.s).
	vaes  *gcmVAESKey
	nonce [gcmIVSize]byte
	rng   *rand.ChaCha8
}

func newGCMCipher(key, iv []byte) (*gcmCipher, error) {
	if len(iv) != gcmIVSize {
		return nil, fmt.Errorf("transport: AES-GCM needs a %d-byte IV, got %d", gcmIVSize, len(iv))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("transport: AES-GCM: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("transport: AES-GCM: %w", err)
	}
	c := &gcmCipher{
		frame: frameInfo{align: aes.BlockSize, macLen: gcmTagSize},
		aead:  aead,
		rng:   newPaddingSource(),
	}
	if gcmVAESOK {
		c.vaes = newGCMVAESKey(key, block)
	}
	copy(c.nonce[:], iv)
	return c, nil
}

func (c *gcmCipher) lengthBytes() int { return 4 }
func (c *gcmCipher) overhead() int    { return gcmTagSize }

// useVAES says whether the assembly takes a body of n bytes: it works in
// whole blocks, which the framing always gives (the 16-byte alignment is
// checked on what arrives); anything else goes to crypto/cipher.
func (c *gcmCipher) useVAES(n int) bool { return c.vaes != nil && n%16 == 0 }

// nextNonce increments the invocation counter (RFC 5647 section 7.1).
func (c *gcmCipher) nextNonce() {
	ctr := c.nonce[4:]
	binary.BigEndian.PutUint64(ctr, binary.BigEndian.Uint64(ctr)+1)
}

func (c *gcmCipher) appendPacket(dst []byte, seq uint32, payload []byte) []byte {
	out, pkt := c.frame.appendFrame(dst, payload, c.rng)
	c.seal(seq, pkt)
	return out
}

// seal encrypts and authenticates in place a framed plaintext packet pkt
// (length, body, then gcmTagSize bytes of room for the tag).
func (c *gcmCipher) seal(seq uint32, pkt []byte) {
	n := len(pkt) - gcmTagSize
	if c.useVAES(n - 4) {
		tag := c.vaes.crypt(pkt[4:n], pkt[4:n], pkt[:4], &c.nonce, false)
		copy(pkt[n:], tag[:])
	} else {
		c.aead.Seal(pkt[4:4], c.nonce[:], pkt[4:n], pkt[:4])
	}
	c.nextNonce()
}

func (c *gcmCipher) appendFramed(dst []byte, seq uint32, frame []byte) ([]byte, bool) {
	pkt, ok := c.frame.frameInPlace(frame, c.rng)
	if !ok {
		return dst, false
	}
	out, o := growFor(dst, len(pkt)+gcmTagSize)
	copy(o[:4], pkt[:4]) // packet_length goes in the clear, as the AAD
	if n := len(pkt); c.useVAES(n - 4) {
		tag := c.vaes.crypt(o[4:n], pkt[4:], pkt[:4], &c.nonce, false)
		copy(o[n:], tag[:])
	} else {
		c.aead.Seal(o[4:4], c.nonce[:], pkt[4:], pkt[:4])
	}
	c.nextNonce()
	return out, true
}

func (c *gcmCipher) packetLength(seq uint32, head []byte) (int, error) {
	if len(head) < 4 {
		return 0, fmt.Errorf("%w: %d bytes of packet head", errBadPacket, len(head))
	}
	n := binary.BigEndian.Uint32(head)
	if err := c.frame.checkLength(n); err != nil {
		return 0, err
	}
	return int(n) + gcmTagSize, nil
}

// openPacket authenticates and decrypts pkt in one call to the standard
// library's GCM, which releases no plaintext unless the tag verifies (on a
// mismatch it zeroes what it wrote).
func (c *gcmCipher) openPacket(seq uint32, pkt []byte) ([]byte, error) {
	if len(pkt) < 4 {
		return nil, fmt.Errorf("%w: %d bytes of packet", errBadPacket, len(pkt))
	}
	n, err := c.frame.checkPacket(binary.BigEndian.Uint32(pkt), pkt)
	if err != nil {
		return nil, err
	}
	if c.useVAES(n) {
		// Decrypted in place and then checked: on a mismatch nothing
		// decrypted is left behind either.
		body := pkt[4 : 4+n]
		tag := c.vaes.crypt(body, body, pkt[:4], &c.nonce, true)
		if subtle.ConstantTimeCompare(tag[:], pkt[4+n:]) != 1 {
			clear(body)
			return nil, errMAC
		}
	} else if _, err := c.aead.Open(pkt[4:4], c.nonce[:], pkt[4:], pkt[:4]); err != nil {
		return nil, errMAC
	}
	c.nextNonce()
	return splitBody(pkt[4 : 4+n])
}

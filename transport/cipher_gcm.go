package transport

import (
	"crypto/aes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/rsftp/rsftp/transport/internal/gcmvaes"
)

// aes128-gcm@openssh.com and aes256-gcm@openssh.com (RFC 5647 as OpenSSH
// implements it, PROTOCOL section 1.6): the packet_length is in the clear
// and authenticated as AAD; padding aligns the rest to 16 bytes; the
// 12-byte nonce is the IV from the key derivation, whose last 8 bytes are a
// big-endian invocation counter incremented after every packet; the tag is
// 16 bytes. The negotiated MAC is ignored.

// The cryptography (AES-GCM, in VAES assembly where the CPU has it) is in
// transport/internal/gcmvaes; this file frames and checks packets and
// counts the nonce.

const (
	gcmIVSize  = gcmvaes.NonceSize
	gcmTagSize = gcmvaes.TagSize
)

type gcmCipher struct {
	frame frameInfo
	aead  *gcmvaes.AEAD
	nonce [gcmIVSize]byte
	rng   *rand.ChaCha8
}

func newGCMCipher(key, iv []byte) (*gcmCipher, error) {
	if len(iv) != gcmIVSize {
		return nil, fmt.Errorf("transport: AES-GCM needs a %d-byte IV, got %d", gcmIVSize, len(iv))
	}
	aead, err := gcmvaes.New(key)
	if err != nil {
		return nil, fmt.Errorf("transport: AES-GCM: %w", err)
	}
	c := &gcmCipher{
		frame: frameInfo{align: aes.BlockSize, macLen: gcmTagSize},
		aead:  aead,
		rng:   newPaddingSource(),
	}
	copy(c.nonce[:], iv)
	return c, nil
}

func (c *gcmCipher) lengthBytes() int { return 4 }
func (c *gcmCipher) overhead() int    { return gcmTagSize }

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
// (length, body, then gcmTagSize bytes of room for the tag); the
// packet_length stays in the clear, as the AAD.
func (c *gcmCipher) seal(seq uint32, pkt []byte) {
	c.aead.Seal(pkt[4:], pkt[4:len(pkt)-gcmTagSize], pkt[:4], &c.nonce)
	c.nextNonce()
}

func (c *gcmCipher) appendFramed(dst []byte, seq uint32, frame []byte) ([]byte, bool) {
	pkt, ok := c.frame.frameInPlace(frame, c.rng)
	if !ok {
		return dst, false
	}
	out, o := growFor(dst, len(pkt)+gcmTagSize)
	copy(o[:4], pkt[:4]) // packet_length goes in the clear, as the AAD
	c.aead.Seal(o[4:], pkt[4:], pkt[:4], &c.nonce)
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

// openPacket authenticates and decrypts pkt in place, releasing no
// plaintext unless the tag verifies (on a mismatch nothing decrypted is
// left behind).
func (c *gcmCipher) openPacket(seq uint32, pkt []byte) ([]byte, error) {
	if len(pkt) < 4 {
		return nil, fmt.Errorf("%w: %d bytes of packet", errBadPacket, len(pkt))
	}
	n, err := c.frame.checkPacket(binary.BigEndian.Uint32(pkt), pkt)
	if err != nil {
		return nil, err
	}
	if !c.aead.Open(pkt[4:], pkt[:4], &c.nonce) {
		return nil, errMAC
	}
	c.nextNonce()
	return splitBody(pkt[4 : 4+n])
}

package transport

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/rsftp/rsftp/transport/internal/chachapoly"
)

// chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305,
// draft-ietf-sshm-chacha20-poly1305): the packet_length is encrypted
// under K_1, the rest under K_2, and the Poly1305 tag covers both as sent;
// padding aligns the packet to 8 bytes. The cryptography (ChaCha20 and
// Poly1305, in AVX-512 assembly where the CPU has it) is in
// transport/internal/chachapoly; this file frames and checks packets.

const (
	chachaKeySize = chachapoly.KeySize
	chachaTagSize = chachapoly.TagSize
)

type chachaCipher struct {
	frame frameInfo
	aead  *chachapoly.Cipher
	rng   *rand.ChaCha8
}

func newChaChaCipher(key []byte) (*chachaCipher, error) {
	if len(key) != chachaKeySize {
		return nil, fmt.Errorf("transport: %s needs a %d-byte key, got %d", cipherChaCha20Poly1305, chachaKeySize, len(key))
	}
	aead, err := chachapoly.New(key)
	if err != nil {
		return nil, fmt.Errorf("transport: %s: %w", cipherChaCha20Poly1305, err)
	}
	return &chachaCipher{
		frame: frameInfo{align: 8, macLen: chachaTagSize},
		aead:  aead,
		rng:   newPaddingSource(),
	}, nil
}

func (c *chachaCipher) lengthBytes() int { return 4 }
func (c *chachaCipher) overhead() int    { return chachaTagSize }

func (c *chachaCipher) appendPacket(dst []byte, seq uint32, payload []byte) []byte {
	out, pkt := c.frame.appendFrame(dst, payload, c.rng)
	c.seal(seq, pkt)
	return out
}

// seal encrypts and authenticates in place a framed plaintext packet pkt
// (length, body, then chachaTagSize bytes of room for the tag).
func (c *chachaCipher) seal(seq uint32, pkt []byte) {
	c.aead.Seal(seq, pkt, pkt[:len(pkt)-chachaTagSize])
}

func (c *chachaCipher) appendFramed(dst []byte, seq uint32, frame []byte) ([]byte, bool) {
	pkt, ok := c.frame.frameInPlace(frame, c.rng)
	if !ok {
		return dst, false
	}
	out, o := growFor(dst, len(pkt)+chachaTagSize)
	c.aead.Seal(seq, o, pkt)
	return out, true
}

func (c *chachaCipher) packetLength(seq uint32, head []byte) (int, error) {
	if len(head) < 4 {
		return 0, fmt.Errorf("%w: %d bytes of packet head", errBadPacket, len(head))
	}
	// head stays encrypted: the tag covers it as it came.
	n := c.aead.Length(seq, head)
	if err := c.frame.checkLength(n); err != nil {
		return 0, err
	}
	return int(n) + chachaTagSize, nil
}

func (c *chachaCipher) openPacket(seq uint32, pkt []byte) ([]byte, error) {
	if len(pkt) < 4+chachaTagSize {
		return nil, fmt.Errorf("%w: %d bytes of packet", errBadPacket, len(pkt))
	}
	packetLen := c.aead.Length(seq, pkt)
	n, err := c.frame.checkPacket(packetLen, pkt)
	if err != nil {
		return nil, err
	}
	end := 4 + n
	if !c.aead.Open(seq, pkt) {
		return nil, errMAC
	}
	binary.BigEndian.PutUint32(pkt, packetLen)
	return splitBody(pkt[4:end])
}

package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
	"math/rand/v2"
)

// aes128-ctr and aes256-ctr (RFC 4344) with an HMAC-SHA2 (RFC 6668, and
// OpenSSH's -etm@openssh.com variants, PROTOCOL section 1.7).
//
// The CTR keystream runs on across packets: the counter block starts at
// the IV and is incremented once per 16-byte block for the whole life of
// the keys.
//
// Encrypt-and-MAC (RFC 4253 section 6.4): everything including the length
// is encrypted; MAC = HMAC(uint32 seq || plaintext packet). The receiver
// must decrypt the first block to learn the length, and the whole packet,
// length included, is a multiple of 16 bytes.
//
// Encrypt-then-MAC: the length stays in the clear; MAC = HMAC(uint32 seq
// || length || ciphertext), checked before anything is decrypted; the
// encrypted part (padding_length through padding) is a multiple of 16.

type ctrCipher struct {
	frame  frameInfo
	etm    bool
	stream cipher.Stream
	mac    hash.Hash
	// headOpen is set between packetLength, which in encrypt-and-MAC mode
	// decrypts the first block, and openPacket, which decrypts the rest.
	headOpen bool
	seqBuf   [4]byte
	sum      [sha512.Size]byte
	rng      *rand.ChaCha8
}

func newCTRCipher(key, iv []byte, macName string, macKey []byte) (*ctrCipher, error) {
	if len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("transport: AES-CTR needs a %d-byte IV, got %d", aes.BlockSize, len(iv))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("transport: AES-CTR: %w", err)
	}
	macLen, ok := macKeySize(macName)
	if !ok {
		return nil, fmt.Errorf("transport: unsupported MAC %q", macName)
	}
	if len(macKey) != macLen {
		return nil, fmt.Errorf("transport: %s needs a %d-byte key, got %d", macName, macLen, len(macKey))
	}
	var h func() hash.Hash
	etm := false
	switch macName {
	case macHMACSHA256ETM:
		h, etm = sha256.New, true
	case macHMACSHA256:
		h = sha256.New
	case macHMACSHA512ETM:
		h, etm = sha512.New, true
	case macHMACSHA512:
		h = sha512.New
	}
	return &ctrCipher{
		frame:  frameInfo{align: aes.BlockSize, withLength: !etm, macLen: macLen},
		etm:    etm,
		stream: cipher.NewCTR(block, iv),
		mac:    hmac.New(h, macKey),
		rng:    newPaddingSource(),
	}, nil
}

func (c *ctrCipher) lengthBytes() int {
	if c.etm {
		return 4
	}
	return aes.BlockSize
}

func (c *ctrCipher) overhead() int { return c.frame.macLen }

// computeMAC returns HMAC(seq || data) in c.sum.
func (c *ctrCipher) computeMAC(seq uint32, data []byte) []byte {
	binary.BigEndian.PutUint32(c.seqBuf[:], seq)
	c.mac.Reset()
	c.mac.Write(c.seqBuf[:])
	c.mac.Write(data)
	return c.mac.Sum(c.sum[:0])
}

func (c *ctrCipher) appendPacket(dst []byte, seq uint32, payload []byte) []byte {
	out, pkt := c.frame.appendFrame(dst, payload, c.rng)
	c.seal(seq, pkt)
	return out
}

// seal encrypts and authenticates in place a framed plaintext packet pkt
// (length, body, then the MAC's size of room).
func (c *ctrCipher) seal(seq uint32, pkt []byte) {
	n := len(pkt) - c.frame.macLen
	if c.etm {
		c.stream.XORKeyStream(pkt[4:n], pkt[4:n])
		copy(pkt[n:], c.computeMAC(seq, pkt[:n]))
		return
	}
	copy(pkt[n:], c.computeMAC(seq, pkt[:n]))
	c.stream.XORKeyStream(pkt[:n], pkt[:n])
}

func (c *ctrCipher) packetLength(seq uint32, head []byte) (int, error) {
	if c.etm {
		if len(head) < 4 {
			return 0, fmt.Errorf("%w: %d bytes of packet head", errBadPacket, len(head))
		}
		n := binary.BigEndian.Uint32(head)
		if err := c.frame.checkLength(n); err != nil {
			return 0, err
		}
		return int(n) + c.frame.macLen, nil
	}
	if len(head) < aes.BlockSize {
		return 0, fmt.Errorf("%w: %d bytes of packet head", errBadPacket, len(head))
	}
	if c.headOpen {
		return 0, fmt.Errorf("%w: packet length read twice", errBadPacket)
	}
	c.stream.XORKeyStream(head[:aes.BlockSize], head[:aes.BlockSize])
	c.headOpen = true
	n := binary.BigEndian.Uint32(head)
	if err := c.frame.checkLength(n); err != nil {
		return 0, err
	}
	// checkLength guarantees 4+n is a positive multiple of the block size.
	return 4 + int(n) - aes.BlockSize + c.frame.macLen, nil
}

func (c *ctrCipher) openPacket(seq uint32, pkt []byte) ([]byte, error) {
	if c.etm {
		return c.openETM(seq, pkt)
	}
	if !c.headOpen {
		return nil, fmt.Errorf("%w: packet opened before its length was read", errBadPacket)
	}
	c.headOpen = false
	if len(pkt) < aes.BlockSize {
		return nil, fmt.Errorf("%w: %d bytes of packet", errBadPacket, len(pkt))
	}
	n, err := c.frame.checkPacket(binary.BigEndian.Uint32(pkt), pkt)
	if err != nil {
		return nil, err
	}
	end := 4 + n
	c.stream.XORKeyStream(pkt[aes.BlockSize:end], pkt[aes.BlockSize:end])
	if subtle.ConstantTimeCompare(c.computeMAC(seq, pkt[:end]), pkt[end:]) != 1 {
		return nil, errMAC
	}
	return splitBody(pkt[4:end])
}

func (c *ctrCipher) openETM(seq uint32, pkt []byte) ([]byte, error) {
	if len(pkt) < 4 {
		return nil, fmt.Errorf("%w: %d bytes of packet", errBadPacket, len(pkt))
	}
	n, err := c.frame.checkPacket(binary.BigEndian.Uint32(pkt), pkt)
	if err != nil {
		return nil, err
	}
	end := 4 + n
	if subtle.ConstantTimeCompare(c.computeMAC(seq, pkt[:end]), pkt[end:]) != 1 {
		return nil, errMAC
	}
	c.stream.XORKeyStream(pkt[4:end], pkt[4:end])
	return splitBody(pkt[4:end])
}

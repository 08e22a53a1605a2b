package transport

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/rsftp/rsftp/internal/wire"
)

// packetCipher seals and opens the whole binary packets (RFC 4253 section
// 6) of one direction. Implementations keep per-direction state (the CTR
// keystream position, the GCM invocation counter), so one value serves one
// direction and sees its packets in order.
//
// On the receiving side each packet takes exactly one packetLength call
// followed by one openPacket call; any error from either is fatal for the
// connection.
type packetCipher interface {
	// appendPacket appends to dst the complete wire form of one packet
	// carrying payload (uint32 packet_length, byte padding_length,
	// payload, random padding of 4 bytes or more, then the MAC or tag),
	// sealed under sequence number seq. It does not allocate when
	// cap(dst)-len(dst) >= packetSize(payload) (at most
	// len(payload)+4+1+19+overhead()). payload may lie anywhere, including
	// in dst's spare capacity: building it at dst[len(dst)+5:] saves a
	// copy. The caller keeps len(payload) small enough for packet_length
	// to stay within maxPacketLength.
	appendPacket(dst []byte, seq uint32, payload []byte) []byte
	// lengthBytes is how many leading bytes of a packet packetLength
	// needs: 4 where the length is in the clear or separately encrypted,
	// the cipher block size for encrypt-and-MAC CTR.
	lengthBytes() int
	// packetLength inspects head, the first lengthBytes() bytes of a
	// packet (possibly decrypting them in place), and returns how many
	// more bytes make up the packet, MAC or tag included. It rejects a
	// packet_length above maxPacketLength, too small to hold the padding,
	// or not aligned to the cipher's block, before anything is allocated
	// or awaited.
	packetLength(seq uint32, head []byte) (rest int, err error)
	// openPacket authenticates and decrypts in place the complete packet
	// pkt (the head as packetLength left it, then the rest bytes), checks
	// the padding, and returns the payload, which aliases pkt. The MAC or
	// tag is checked in constant time before any plaintext is used; for
	// chacha20-poly1305 and EtM MACs before anything is decrypted.
	openPacket(seq uint32, pkt []byte) (payload []byte, err error)
	// overhead is the MAC or tag size in bytes.
	overhead() int
}

// Cipher and MAC names (RFC 4253, RFC 4344, RFC 6668, OpenSSH PROTOCOL).
const (
	cipherChaCha20Poly1305 = "chacha20-poly1305@openssh.com"
	cipherAES128GCM        = "aes128-gcm@openssh.com"
	cipherAES256GCM        = "aes256-gcm@openssh.com"
	cipherAES128CTR        = "aes128-ctr"
	cipherAES256CTR        = "aes256-ctr"

	macHMACSHA256ETM = "hmac-sha2-256-etm@openssh.com"
	macHMACSHA512ETM = "hmac-sha2-512-etm@openssh.com"
	macHMACSHA256    = "hmac-sha2-256"
	macHMACSHA512    = "hmac-sha2-512"
)

// supportedCiphers is our default cipher preference, best first.
var supportedCiphers = []string{
	cipherChaCha20Poly1305,
	cipherAES128GCM, cipherAES256GCM,
	cipherAES128CTR, cipherAES256CTR,
}

// supportedMACs is our default MAC preference, best first. Only the CTR
// ciphers use one.
var supportedMACs = []string{
	macHMACSHA256ETM, macHMACSHA512ETM,
	macHMACSHA256, macHMACSHA512,
}

// cipherKeySizes reports the key and IV lengths the key derivation must
// produce for cipherName, and whether it is an AEAD cipher (no MAC
// negotiated).
func cipherKeySizes(cipherName string) (keyLen, ivLen int, aead bool, ok bool) {
	switch cipherName {
	case cipherChaCha20Poly1305:
		return chachaKeySize, 0, true, true
	case cipherAES128GCM:
		return 16, gcmIVSize, true, true
	case cipherAES256GCM:
		return 32, gcmIVSize, true, true
	case cipherAES128CTR:
		return 16, 16, false, true
	case cipherAES256CTR:
		return 32, 16, false, true
	}
	return 0, 0, false, false
}

// macKeySize reports the key length of macName, which is also its output
// length for the HMACs we support.
func macKeySize(macName string) (int, bool) {
	switch macName {
	case macHMACSHA256, macHMACSHA256ETM:
		return 32, true
	case macHMACSHA512, macHMACSHA512ETM:
		return 64, true
	}
	return 0, false
}

// newPacketCipher builds the cipher of one direction for a negotiated
// algorithm pair. macName and macKey are ignored for AEAD ciphers. Key and
// IV lengths must be exactly what cipherKeySizes and macKeySize report.
// The cipher keeps no reference to the slices passed in.
func newPacketCipher(cipherName, macName string, key, iv, macKey []byte) (packetCipher, error) {
	keyLen, ivLen, aead, ok := cipherKeySizes(cipherName)
	if !ok {
		return nil, fmt.Errorf("transport: unsupported cipher %q", cipherName)
	}
	if len(key) != keyLen {
		return nil, fmt.Errorf("transport: %s needs a %d-byte key, got %d", cipherName, keyLen, len(key))
	}
	if len(iv) != ivLen {
		return nil, fmt.Errorf("transport: %s needs a %d-byte IV, got %d", cipherName, ivLen, len(iv))
	}
	if !aead {
		macLen, ok := macKeySize(macName)
		if !ok {
			return nil, fmt.Errorf("transport: unsupported MAC %q", macName)
		}
		if len(macKey) != macLen {
			return nil, fmt.Errorf("transport: %s needs a %d-byte key, got %d", macName, macLen, len(macKey))
		}
	}
	switch cipherName {
	case cipherChaCha20Poly1305:
		return newChaChaCipher(key)
	case cipherAES128GCM, cipherAES256GCM:
		return newGCMCipher(key, iv)
	default:
		return newCTRCipher(key, iv, macName, macKey)
	}
}

// Errors of the packet layer. Every error the ciphers return wraps one of
// these, so the caller can pick a disconnect reason with errors.Is.
var (
	// errMAC: the MAC or AEAD tag did not verify (SSH_DISCONNECT_MAC_ERROR).
	errMAC = errors.New("transport: message authentication failed")
	// errBadPacket: a malformed length or padding, or a packet that does
	// not match what packetLength announced (SSH_DISCONNECT_PROTOCOL_ERROR).
	errBadPacket = errors.New("transport: malformed packet")
)

// minPadding is the least padding RFC 4253 section 6 allows.
const minPadding = 4

// packetSize is how many bytes appendPacket adds for payload under a
// cipher with the given alignment and overhead, an upper bound good for
// every cipher when align is 16.
func packetSize(payloadLen, align, overhead int) int {
	return 4 + 1 + payloadLen + minPadding + align - 1 + overhead
}

// frameInfo describes the framing rules of a cipher.
type frameInfo struct {
	// align is the block size the padded part must be a multiple of
	// (at least 8).
	align int
	// withLength says whether the 4-byte packet_length counts in the
	// alignment: true for encrypt-and-MAC modes and none, false where
	// the length is AAD, in the clear or separately encrypted.
	withLength bool
	// macLen is the size of the MAC or tag after the packet.
	macLen int
}

// appendFrame appends the plaintext packet for payload to dst, with room
// for the MAC or tag after it, and returns the extended dst and the
// packet (length field through MAC space) within it. The padding comes
// from rng. payload may overlap dst's spare capacity.
func (f frameInfo) appendFrame(dst, payload []byte, rng *rand.ChaCha8) (out, pkt []byte) {
	unpadded := 1 + len(payload)
	if f.withLength {
		unpadded += 4
	}
	padLen := f.align - unpadded%f.align
	if padLen < minPadding {
		padLen += f.align
	}
	packetLen := 1 + len(payload) + padLen
	total := 4 + packetLen + f.macLen

	start := len(dst)
	out = slices.Grow(dst, total)[:start+total]
	pkt = out[start:]
	// Move the payload first: it may sit where the header goes.
	copy(pkt[5:], payload)
	binary.BigEndian.PutUint32(pkt, uint32(packetLen))
	pkt[4] = byte(padLen)
	_, _ = rng.Read(pkt[5+len(payload) : 4+packetLen])
	return out, pkt
}

// frameInPlace frames the payload at buf[wire.FrameHeadroom:] where it
// lies: it writes packet_length and padding_length into the headroom and
// the padding into buf's spare capacity, and returns the plaintext packet
// (length field through padding, no MAC room). ok is false when the
// capacity after the payload cannot hold the padding.
func (f frameInfo) frameInPlace(buf []byte, rng *rand.ChaCha8) (pkt []byte, ok bool) {
	payloadLen := len(buf) - wire.FrameHeadroom
	unpadded := 1 + payloadLen
	if f.withLength {
		unpadded += 4
	}
	padLen := f.align - unpadded%f.align
	if padLen < minPadding {
		padLen += f.align
	}
	packetLen := 1 + payloadLen + padLen
	if payloadLen < 0 || cap(buf) < 4+packetLen {
		return nil, false
	}
	pkt = buf[:4+packetLen]
	binary.BigEndian.PutUint32(pkt, uint32(packetLen))
	pkt[4] = byte(padLen)
	_, _ = rng.Read(pkt[5+payloadLen:])
	return pkt, true
}

// framedSealer is implemented by ciphers that seal a packet from one
// buffer into another (the AEAD modes): appendFramed frames the payload
// at frame[wire.FrameHeadroom:] in place (frameInPlace) and appends its
// sealed wire form to dst, reading the payload once. The payload is left
// as it was; the headroom and the capacity after the payload are
// overwritten. ok is false, with nothing appended, when frame lacks the
// room; the caller then uses appendPacket.
type framedSealer interface {
	appendFramed(dst []byte, seq uint32, frame []byte) (out []byte, ok bool)
}

// growFor extends dst by n bytes and returns it with the new part.
func growFor(dst []byte, n int) (out, added []byte) {
	start := len(dst)
	out = slices.Grow(dst, n)[:start+n]
	return out, out[start:]
}

// checkLength validates a packet_length read from the peer.
func (f frameInfo) checkLength(packetLen uint32) error {
	if packetLen > maxPacketLength {
		return fmt.Errorf("%w: packet length %d exceeds the limit of %d", errBadPacket, packetLen, maxPacketLength)
	}
	if packetLen < 1+minPadding {
		return fmt.Errorf("%w: packet length %d is too small", errBadPacket, packetLen)
	}
	n := packetLen
	if f.withLength {
		n += 4
	}
	if n%uint32(f.align) != 0 {
		return fmt.Errorf("%w: packet length %d is not aligned to the %d-byte block", errBadPacket, packetLen, f.align)
	}
	return nil
}

// checkPacket validates packetLen and that pkt is exactly the packet it
// announces, and returns packetLen as an int.
func (f frameInfo) checkPacket(packetLen uint32, pkt []byte) (int, error) {
	if err := f.checkLength(packetLen); err != nil {
		return 0, err
	}
	n := int(packetLen)
	if len(pkt) != 4+n+f.macLen {
		return 0, fmt.Errorf("%w: %d bytes given for a packet of %d", errBadPacket, len(pkt), 4+n+f.macLen)
	}
	return n, nil
}

// splitBody checks the padding of a decrypted body (padding_length,
// payload, padding) and returns the payload.
func splitBody(body []byte) ([]byte, error) {
	if len(body) < 1 {
		return nil, fmt.Errorf("%w: empty packet", errBadPacket)
	}
	padLen := int(body[0])
	if padLen < minPadding {
		return nil, fmt.Errorf("%w: padding length %d is below %d", errBadPacket, padLen, minPadding)
	}
	end := len(body) - padLen
	if end < 1 {
		return nil, fmt.Errorf("%w: padding length %d exceeds the packet length %d", errBadPacket, padLen, len(body))
	}
	return body[1:end:end], nil
}

// newPaddingSource returns a generator for padding bytes, seeded from the
// system's CSPRNG. Padding needs no secrecy under an encrypting cipher
// (OpenSSH fills it from its arc4random); a per-direction ChaCha8 keeps the
// hot path free of system calls and allocation.
func newPaddingSource() *rand.ChaCha8 {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (Go 1.24+ crashes instead)
	return rand.NewChaCha8(seed)
}

// noneCipher is the initial state of both directions: no encryption and
// no MAC, block size 8 (RFC 4253 section 6).
type noneCipher struct {
	frame frameInfo
	rng   *rand.ChaCha8
}

// newNoneCipher returns the cipher in force before the first NEWKEYS.
func newNoneCipher() packetCipher {
	return &noneCipher{frame: frameInfo{align: 8, withLength: true}, rng: newPaddingSource()}
}

func (c *noneCipher) appendPacket(dst []byte, seq uint32, payload []byte) []byte {
	out, _ := c.frame.appendFrame(dst, payload, c.rng)
	return out
}

func (c *noneCipher) lengthBytes() int { return 4 }
func (c *noneCipher) overhead() int    { return 0 }

func (c *noneCipher) packetLength(seq uint32, head []byte) (int, error) {
	if len(head) < 4 {
		return 0, fmt.Errorf("%w: %d bytes of packet head", errBadPacket, len(head))
	}
	n := binary.BigEndian.Uint32(head)
	if err := c.frame.checkLength(n); err != nil {
		return 0, err
	}
	return int(n), nil
}

func (c *noneCipher) openPacket(seq uint32, pkt []byte) ([]byte, error) {
	if len(pkt) < 4 {
		return nil, fmt.Errorf("%w: %d bytes of packet", errBadPacket, len(pkt))
	}
	n, err := c.frame.checkPacket(binary.BigEndian.Uint32(pkt), pkt)
	if err != nil {
		return nil, err
	}
	return splitBody(pkt[4 : 4+n])
}

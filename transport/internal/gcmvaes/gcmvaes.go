// Package gcmvaes is AES-GCM for the SSH ciphers aes128-gcm@openssh.com
// and aes256-gcm@openssh.com (RFC 5647 as OpenSSH implements it): the
// encryption and tag of one packet body in place, under a nonce and
// additional data the caller gives (the packet_length, in the clear).
// Framing, padding and the invocation counter of the nonce are the
// caller's (package transport).
//
// Where the CPU has VAES and VPCLMULQDQ on AVX-512, a body of whole
// 16-byte blocks runs in gcm_vaes_amd64.s, about twice as fast as
// crypto/cipher's GCM; anything else, any other CPU, and -tags purego take
// crypto/cipher's GCM. Both give the same bytes: the tests here compare
// the assembly, and a Go model of its arithmetic, with crypto/cipher.
package gcmvaes

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
)

const (
	// NonceSize is the size of a GCM nonce: the IV of the SSH key
	// derivation, its last 8 bytes counting packets.
	NonceSize = 12
	// TagSize is the size of the tag that ends a packet.
	TagSize = 16
)

// AEAD is AES-GCM under one key.
type AEAD struct {
	aead cipher.AEAD
	// vaes, where the CPU has VAES and VPCLMULQDQ, does what aead does
	// at about twice its speed (gcm_vaes_amd64.s).
	vaes *gcmVAESKey
}

// New returns AES-GCM under key (16 or 32 bytes: AES-128 or AES-256). Its
// errors are those of crypto/aes and crypto/cipher.
func New(key []byte) (*AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	a := &AEAD{aead: aead}
	if gcmVAESOK {
		a.vaes = newGCMVAESKey(key, block)
	}
	return a, nil
}

// useVAES says whether the assembly takes a body of n bytes: it works in
// whole blocks, which SSH's framing always gives (the 16-byte alignment is
// checked on what arrives); anything else goes to crypto/cipher.
func (a *AEAD) useVAES(n int) bool { return a.vaes != nil && n%16 == 0 }

// Seal encrypts plaintext under nonce with the additional data aad and
// writes the ciphertext and the tag to dst, which must be
// len(plaintext)+TagSize bytes long. dst[:len(plaintext)] and plaintext
// are the same memory or do not overlap.
func (a *AEAD) Seal(dst, plaintext, aad []byte, nonce *[NonceSize]byte) {
	n := len(plaintext)
	if len(dst) != n+TagSize {
		panic("gcmvaes: bad Seal buffer sizes")
	}
	if a.useVAES(n) {
		tag := a.vaes.crypt(dst[:n], plaintext, aad, nonce, false)
		copy(dst[n:], tag[:])
	} else {
		a.aead.Seal(dst[:0], nonce[:], plaintext, aad)
	}
}

// Open checks the tag that ends sealed (ciphertext, then TagSize bytes of
// tag) under nonce and aad and decrypts the ciphertext in place. On a
// wrong tag (or a sealed shorter than TagSize) it returns false and
// leaves no plaintext behind: crypto/cipher zeroes what it wrote, and the
// VAES path, which decrypts and checks in one pass, clears the
// ciphertext.
func (a *AEAD) Open(sealed, aad []byte, nonce *[NonceSize]byte) bool {
	n := len(sealed) - TagSize
	if n >= 0 && a.useVAES(n) {
		body := sealed[:n]
		tag := a.vaes.crypt(body, body, aad, nonce, true)
		if subtle.ConstantTimeCompare(tag[:], sealed[n:]) != 1 {
			clear(body)
			return false
		}
		return true
	}
	_, err := a.aead.Open(sealed[:0], nonce[:], sealed, aad)
	return err == nil
}

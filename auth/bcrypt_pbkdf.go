package auth

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/blowfish"
)

// bcrypt_pbkdf is the key derivation function OpenSSH uses for
// passphrase-protected openssh-key-v1 files (kdfname "bcrypt"). It is the
// OpenBSD construction: PBKDF2-like iteration over a bcrypt-based hash of
// SHA-512 digests, with the output blocks interleaved across the key.

// Limits on bcrypt_pbkdf inputs. The round count comes from the key file,
// so it is bounded to keep a hostile file from pinning the CPU for hours:
// ssh-keygen defaults to 16 and a few hundred is already slow.
const (
	bcryptMaxRounds  = 1 << 16
	bcryptMaxKeyLen  = 32 * 32 // the OpenBSD implementation's own limit
	bcryptMaxSaltLen = 1 << 10
	bcryptHashSize   = 32
)

// bcryptMagic is the 32-byte plaintext that bcrypt_hash encrypts.
var bcryptMagic = [bcryptHashSize]byte([]byte("OxychromaticBlowfishSwatDynamite"))

// bcryptPBKDF derives keyLen bytes from password and salt with the given
// number of rounds.
func bcryptPBKDF(password, salt []byte, rounds, keyLen int) ([]byte, error) {
	switch {
	case rounds < 1 || rounds > bcryptMaxRounds:
		return nil, fmt.Errorf("bcrypt_pbkdf: %d rounds is outside 1..%d", rounds, bcryptMaxRounds)
	case keyLen < 1 || keyLen > bcryptMaxKeyLen:
		return nil, fmt.Errorf("bcrypt_pbkdf: key length %d is outside 1..%d", keyLen, bcryptMaxKeyLen)
	case len(salt) == 0 || len(salt) > bcryptMaxSaltLen:
		return nil, fmt.Errorf("bcrypt_pbkdf: salt length %d is outside 1..%d", len(salt), bcryptMaxSaltLen)
	case len(password) == 0:
		return nil, errors.New("bcrypt_pbkdf: empty password")
	}

	// The key is produced in nBlocks hash-sized blocks; byte i of block b
	// lands at key[i*nBlocks+b], so every block contributes to the whole key.
	nBlocks := (keyLen + bcryptHashSize - 1) / bcryptHashSize
	perBlock := (keyLen + nBlocks - 1) / nBlocks

	key := make([]byte, keyLen)
	shaPass := sha512.Sum512(password)
	countSalt := make([]byte, len(salt)+4)
	copy(countSalt, salt)

	var acc, h [bcryptHashSize]byte
	for b := range nBlocks {
		binary.BigEndian.PutUint32(countSalt[len(salt):], uint32(b+1))
		shaSalt := sha512.Sum512(countSalt)
		bcryptHash(&h, shaPass[:], shaSalt[:])
		acc = h
		for range rounds - 1 {
			shaSalt = sha512.Sum512(h[:])
			bcryptHash(&h, shaPass[:], shaSalt[:])
			for i := range acc {
				acc[i] ^= h[i]
			}
		}
		for i := range perBlock {
			dst := i*nBlocks + b
			if dst >= keyLen {
				break
			}
			key[dst] = acc[i]
		}
	}
	return key, nil
}

// bcryptHash is the inner function: an expensive Blowfish key schedule
// keyed by both digests, then 64 encryptions of the magic string, output
// as little-endian 32-bit words.
func bcryptHash(out *[bcryptHashSize]byte, shaPass, shaSalt []byte) {
	c, err := blowfish.NewSaltedCipher(shaPass, shaSalt)
	if err != nil {
		// Only an empty key fails, and shaPass is always 64 bytes.
		panic("auth: blowfish rejected a SHA-512 digest as key: " + err.Error())
	}
	for range 64 {
		blowfish.ExpandKey(shaSalt, c)
		blowfish.ExpandKey(shaPass, c)
	}
	buf := bcryptMagic
	for off := 0; off < bcryptHashSize; off += blowfish.BlockSize {
		blk := buf[off : off+blowfish.BlockSize]
		for range 64 {
			c.Encrypt(blk, blk)
		}
	}
	// Blowfish works on big-endian words; bcrypt_hash emits them
	// little-endian.
	for i := 0; i < bcryptHashSize; i += 4 {
		w := binary.BigEndian.Uint32(buf[i:])
		binary.LittleEndian.PutUint32(out[i:], w)
	}
}

package gcmvaes

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// maxPacketLength is transport's bound on packet_length (256 KiB).
const maxPacketLength = 256 * 1024

// gcmModelSeal is AES-GCM for one SSH packet written with the Go model of
// the assembly's arithmetic (gfMul, gfHashKey) and crypto/aes for the
// block cipher: plain is the body after the 4-byte AAD.
func gcmModelSeal(t *testing.T, key, nonce, aad, plain []byte) []byte {
	t.Helper()
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	var h [16]byte
	blk.Encrypt(h[:], h[:])
	h2 := gfHashKey(h[:])
	var ctr [16]byte
	copy(ctr[:], nonce)
	ctr[15] = 1
	var ek0 [16]byte
	blk.Encrypt(ek0[:], ctr[:])
	var acc gfElem
	absorb := func(b []byte) {
		var blkb [16]byte
		copy(blkb[:], b)
		x := gfFromBlock(blkb[:])
		acc = gfMul(gfElem{lo: acc.lo ^ x.lo, hi: acc.hi ^ x.hi}, h2)
	}
	for i := 0; i < len(aad); i += 16 {
		absorb(aad[i:min(i+16, len(aad))])
	}
	out := make([]byte, len(plain))
	for i := 0; i < len(plain); i += 16 {
		binary.BigEndian.PutUint32(ctr[12:], binary.BigEndian.Uint32(ctr[12:])+1)
		var ks [16]byte
		blk.Encrypt(ks[:], ctr[:])
		for j := i; j < min(i+16, len(plain)); j++ {
			out[j] = plain[j] ^ ks[j-i]
		}
		absorb(out[i:min(i+16, len(plain))])
	}
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[:8], uint64(len(aad))*8)
	binary.BigEndian.PutUint64(lens[8:], uint64(len(plain))*8)
	absorb(lens[:])
	var tag [16]byte
	acc.putBlock(tag[:])
	for i := range tag {
		tag[i] ^= ek0[i]
	}
	return append(out, tag[:]...)
}

// The Go model of the assembly's GHASH arithmetic gives the standard
// library's AES-GCM output.
func TestGCMModelAgainstStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, keyLen := range []int{16, 32} {
		for _, n := range []int{0, 16, 32, 48, 256, 272, 1024, 4096 + 48} {
			key := make([]byte, keyLen)
			nonce := make([]byte, 12)
			aad := make([]byte, 4)
			plain := make([]byte, n)
			for _, b := range [][]byte{key, nonce, aad, plain} {
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
			}
			blk, _ := aes.NewCipher(key)
			aead, _ := cipher.NewGCM(blk)
			want := aead.Seal(nil, nonce, plain, aad)
			if got := gcmModelSeal(t, key, nonce, aad, plain); !bytes.Equal(got, want) {
				t.Fatalf("key %d bytes, %d bytes: model %x, stdlib %x", keyLen, n, got[len(got)-16:], want[len(want)-16:])
			}
		}
	}
}

// The key expansion matches crypto/aes (checked through one block).
func TestAESExpandKey(t *testing.T) {
	if aesSbox[0] != 0x63 || aesSbox[1] != 0x7c || aesSbox[0x53] != 0xed {
		t.Fatalf("S-box: %x %x %x", aesSbox[0], aesSbox[1], aesSbox[0x53])
	}
	// FIPS 197 appendix A.1: the last round key of 2b7e1516...
	key := []byte{0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c}
	w, rounds := aesExpandKey(key)
	last := []byte{0xd0, 0x14, 0xf9, 0xa8, 0xc9, 0xee, 0x25, 0x89, 0xe1, 0x3f, 0x0c, 0xc8, 0xb6, 0x63, 0x0c, 0xa6}
	if rounds != 10 || !bytes.Equal(w[160:], last) {
		t.Fatalf("AES-128 round key 10: %x", w[160:])
	}
	// FIPS 197 appendix A.3: w[59] of 603deb10... is 706c631e.
	key256 := []byte{0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
		0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4}
	w, rounds = aesExpandKey(key256)
	if rounds != 14 || !bytes.Equal(w[236:240], []byte{0x70, 0x6c, 0x63, 0x1e}) {
		t.Fatalf("AES-256 w[59]: %x", w[236:240])
	}
}

// gcmVAESKey.crypt gives the standard library's ciphertext and tag for
// every block count around the 16-block loop, in place and not, and
// decrypts back.
func TestGCMVAESAgainstStdlib(t *testing.T) {
	if !gcmVAESOK {
		t.Skip("no VAES/VPCLMULQDQ on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	for _, keyLen := range []int{16, 32} {
		for blocks := 0; blocks <= 70; blocks++ {
			for _, inPlace := range []bool{false, true} {
				key := make([]byte, keyLen)
				var nonce [NonceSize]byte
				aad := make([]byte, 4)
				plain := make([]byte, 16*blocks)
				fill(key)
				fill(nonce[:])
				fill(aad)
				fill(plain)
				blk, _ := aes.NewCipher(key)
				aead, _ := cipher.NewGCM(blk)
				want := aead.Seal(nil, nonce[:], plain, aad)
				k := newGCMVAESKey(key, blk)
				out := make([]byte, len(plain))
				src := plain
				if inPlace {
					copy(out, plain)
					src = out
				}
				tag := k.crypt(out, src, aad, &nonce, false)
				if !bytes.Equal(out, want[:len(plain)]) || !bytes.Equal(tag[:], want[len(plain):]) {
					t.Fatalf("AES-%d, %d blocks, in place %v: differs from crypto/cipher", keyLen*8, blocks, inPlace)
				}
				back := make([]byte, len(out))
				if inPlace {
					back = out
				}
				tag2 := k.crypt(back, out, aad, &nonce, true)
				if tag2 != tag || !bytes.Equal(back, plain) {
					t.Fatalf("AES-%d, %d blocks, in place %v: decryption differs", keyLen*8, blocks, inPlace)
				}
			}
		}
	}
}

// newAEAD returns AES-GCM under key, with the VAES path or without.
func newAEAD(t testing.TB, key []byte, vaes bool) *AEAD {
	t.Helper()
	a, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	if !vaes {
		a.vaes = nil
	}
	return a
}

// Packets sealed by the VAES path open with crypto/cipher's and the other
// way round, at sizes on both sides of the 16-block loop (bodies of whole
// blocks, as SSH frames them, and others, which take crypto/cipher's path
// either way), in place and not, and a flipped bit anywhere fails the VAES
// open without leaving plaintext behind.
func TestCipherGCMVAESAgainstAEADPath(t *testing.T) {
	if !gcmVAESOK {
		t.Skip("no VAES/VPCLMULQDQ on this CPU")
	}
	for _, keyLen := range []int{16, 32} {
		key := bytes.Repeat([]byte{byte(keyLen)}, keyLen)
		var nonce [NonceSize]byte
		copy(nonce[:], "ssh gcm iv..")
		for _, dir := range []bool{true, false} {
			tx, rx := newAEAD(t, key, dir), newAEAD(t, key, !dir)
			for i, n := range []int{16, 32, 208, 256, 1008, 4096, 32768 + 16, 65008, 1, 27, 251} {
				plain := bytes.Repeat([]byte{byte(i + 1)}, n)
				aad := binary.BigEndian.AppendUint32(nil, uint32(n))
				nonce[11] = byte(i)
				sealed := make([]byte, n+TagSize)
				if i%2 == 0 {
					copy(sealed, plain)
					tx.Seal(sealed, sealed[:n], aad, &nonce)
				} else {
					tx.Seal(sealed, plain, aad, &nonce)
				}
				if !rx.Open(sealed, aad, &nonce) || !bytes.Equal(sealed[:n], plain) {
					t.Fatalf("AES-%d, sealed with VAES %v, %d bytes: does not open", keyLen*8, dir, n)
				}
			}
		}
		tx, rx := newAEAD(t, key, false), newAEAD(t, key, true)
		plain := bytes.Repeat([]byte("secret!!"), 600)
		aad := []byte{0, 0, 0x12, 0xc0}
		for _, flip := range []int{-4, 0, 100, 4000, -1} {
			sealed := make([]byte, len(plain)+TagSize)
			tx.Seal(sealed, plain, aad, &nonce)
			a := aad
			if flip == -4 {
				a = []byte{1, 0, 0x12, 0xc0}
			} else {
				at := flip
				if at < 0 {
					at = len(sealed) - 1
				}
				sealed[at] ^= 0x40
			}
			if rx.Open(sealed, a, &nonce) {
				t.Fatalf("AES-%d: a flipped bit at %d went unnoticed", keyLen*8, flip)
			}
			if bytes.Contains(sealed, []byte("secret!!")) {
				t.Fatalf("AES-%d: plaintext left behind after a failed open", keyLen*8)
			}
		}
	}
}

// FuzzGCMVAES checks the VAES AES-GCM assembly against crypto/cipher: the
// ciphertext and tag of any key, nonce, AAD and whole number of blocks,
// and decryption back.
func FuzzGCMVAES(f *testing.F) {
	f.Add([]byte("key"), []byte("nonce"), uint32(0), []byte("hello"), false)
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 12), uint32(0xffffffff), make([]byte, 4096+13), true)
	f.Fuzz(func(t *testing.T, keySeed, nonceSeed []byte, aadWord uint32, msg []byte, long bool) {
		if !gcmVAESOK {
			t.Skip("no VAES/VPCLMULQDQ on this CPU")
		}
		if len(msg) > maxPacketLength {
			return
		}
		keyLen := 16
		if long {
			keyLen = 32
		}
		key := make([]byte, keyLen)
		for i := range key {
			if len(keySeed) > 0 {
				key[i] = keySeed[i%len(keySeed)] ^ byte(i)
			}
		}
		var nonce [NonceSize]byte
		copy(nonce[:], nonceSeed)
		aad := binary.BigEndian.AppendUint32(nil, aadWord)
		plain := msg[:len(msg)/16*16]
		blk, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := cipher.NewGCM(blk)
		want := ref.Seal(nil, nonce[:], plain, aad)
		k := newGCMVAESKey(key, blk)
		got := make([]byte, len(plain))
		tag := k.crypt(got, plain, aad, &nonce, false)
		if !bytes.Equal(got, want[:len(plain)]) || !bytes.Equal(tag[:], want[len(plain):]) {
			t.Fatalf("AES-%d, %d bytes: differs from crypto/cipher", keyLen*8, len(plain))
		}
		back := bytes.Clone(got)
		if tag2 := k.crypt(back, back, aad, &nonce, true); tag2 != tag || !bytes.Equal(back, plain) {
			t.Fatalf("AES-%d, %d bytes: decryption differs", keyLen*8, len(plain))
		}
	})
}

// benchBody is the encrypted part of the packet of a 32 KiB payload,
// OpenSSH's default channel packet size (padding_length, payload,
// padding to 16 bytes).
const benchBody = 1 + 32*1024 + 15

// BenchmarkSeal measures AEAD.Seal in place of one 32 KiB packet body,
// with the VAES path and with crypto/cipher's.
func BenchmarkSeal(b *testing.B) {
	for _, keyLen := range []int{16, 32} {
		for _, vaes := range []bool{true, false} {
			b.Run(fmt.Sprintf("AES-%d/vaes=%v", keyLen*8, vaes), func(b *testing.B) {
				if vaes && !gcmVAESOK {
					b.Skip("no VAES/VPCLMULQDQ on this CPU")
				}
				a := newAEAD(b, make([]byte, keyLen), vaes)
				var nonce [NonceSize]byte
				buf := make([]byte, benchBody+TagSize)
				aad := []byte{0, 0, 0x80, 0x10}
				b.SetBytes(benchBody)
				b.ReportAllocs()
				for b.Loop() {
					a.Seal(buf, buf[:benchBody], aad, &nonce)
					nonce[11]++
				}
			})
		}
	}
}

// BenchmarkOpen measures AEAD.Open in place of one 32 KiB packet body,
// with the VAES path and with crypto/cipher's. Opening decrypts in place,
// so each round opens a fresh copy of a sealed body (the copy is timed
// too; it is small next to the rest).
func BenchmarkOpen(b *testing.B) {
	for _, keyLen := range []int{16, 32} {
		for _, vaes := range []bool{true, false} {
			b.Run(fmt.Sprintf("AES-%d/vaes=%v", keyLen*8, vaes), func(b *testing.B) {
				if vaes && !gcmVAESOK {
					b.Skip("no VAES/VPCLMULQDQ on this CPU")
				}
				a := newAEAD(b, make([]byte, keyLen), vaes)
				var nonce [NonceSize]byte
				sealed := make([]byte, benchBody+TagSize)
				aad := []byte{0, 0, 0x80, 0x10}
				a.Seal(sealed, sealed[:benchBody], aad, &nonce)
				buf := make([]byte, len(sealed))
				b.SetBytes(benchBody)
				b.ReportAllocs()
				for b.Loop() {
					copy(buf, sealed)
					if !a.Open(buf, aad, &nonce) {
						b.Fatal("tag mismatch")
					}
				}
			})
		}
	}
}

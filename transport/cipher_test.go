package transport

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/testvectors"
	"github.com/rsftp/rsftp/transport/internal/chachapoly"
)

// cipherCombo is one negotiable cipher/MAC pair ("" MAC for AEAD ciphers,
// "none" cipher for the initial state).
type cipherCombo struct{ cipher, mac string }

func (c cipherCombo) String() string {
	if c.mac == "" {
		return c.cipher
	}
	return c.cipher + "+" + c.mac
}

// allCombos lists every supported cipher with every MAC it can use.
func allCombos() []cipherCombo {
	var out []cipherCombo
	for _, name := range supportedCiphers {
		if _, _, aead, _ := cipherKeySizes(name); aead {
			out = append(out, cipherCombo{cipher: name})
			continue
		}
		for _, mac := range supportedMACs {
			out = append(out, cipherCombo{cipher: name, mac: mac})
		}
	}
	return out
}

// comboKeys derives deterministic keys of the right sizes for c.
func comboKeys(t testing.TB, c cipherCombo, label string) (key, iv, macKey []byte) {
	t.Helper()
	keyLen, ivLen, _, ok := cipherKeySizes(c.cipher)
	if !ok {
		t.Fatalf("unknown cipher %q", c.cipher)
	}
	material := func(what string, n int) []byte {
		var out []byte
		for i := 0; len(out) < n; i++ {
			h := sha512.Sum512(fmt.Appendf(nil, "%s/%s/%s/%d", c, label, what, i))
			out = append(out, h[:]...)
		}
		return out[:n]
	}
	key = material("key", keyLen)
	iv = material("iv", ivLen)
	if c.mac != "" {
		n, ok := macKeySize(c.mac)
		if !ok {
			t.Fatalf("unknown MAC %q", c.mac)
		}
		macKey = material("mac", n)
	}
	return key, iv, macKey
}

// newCombo builds one direction's cipher; calling it twice with the same
// label gives the two ends of one direction.
func newCombo(t testing.TB, c cipherCombo, label string) packetCipher {
	t.Helper()
	if c.cipher == "none" {
		return newNoneCipher()
	}
	key, iv, macKey := comboKeys(t, c, label)
	pc, err := newPacketCipher(c.cipher, c.mac, key, iv, macKey)
	if err != nil {
		t.Fatalf("%s: %v", c, err)
	}
	return pc
}

// frameOf returns the framing rules of a cipher built by newPacketCipher.
func frameOf(t testing.TB, pc packetCipher) frameInfo {
	t.Helper()
	switch c := pc.(type) {
	case *noneCipher:
		return c.frame
	case *chachaCipher:
		return c.frame
	case *gcmCipher:
		return c.frame
	case *ctrCipher:
		return c.frame
	}
	t.Fatalf("unknown cipher type %T", pc)
	return frameInfo{}
}

// errIncomplete says the wire holds less than packetLength asked for.
var errIncomplete = errors.New("test: incomplete packet")

// readPacket runs the receive path of direction.go on the front of wire:
// packetLength on the head, then openPacket on the whole packet. It
// returns the payload and how many bytes the packet took.
func readPacket(rx packetCipher, seq uint32, wire []byte) ([]byte, int, error) {
	lb := rx.lengthBytes()
	if len(wire) < lb {
		return nil, 0, errIncomplete
	}
	rest, err := rx.packetLength(seq, wire[:lb])
	if err != nil {
		return nil, 0, err
	}
	if rest < 0 || rest > maxPacketLength+4+64 {
		return nil, 0, fmt.Errorf("packetLength returned %d", rest)
	}
	if lb+rest > len(wire) {
		return nil, 0, errIncomplete
	}
	payload, err := rx.openPacket(seq, wire[:lb+rest])
	return payload, lb + rest, err
}

// largestPayload is the largest payload whose packet stays within
// maxPacketLength under f.
func largestPayload(f frameInfo) int {
	for p := maxPacketLength - 1 - minPadding; ; p-- {
		out, _ := f.appendFrame(nil, make([]byte, p), newPaddingSource())
		if len(out)-4-f.macLen <= maxPacketLength {
			return p
		}
	}
}

func TestCipherRoundTrip(t *testing.T) {
	combos := append(allCombos(), cipherCombo{cipher: "none"})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range combos {
		t.Run(c.String(), func(t *testing.T) {
			tx, rx := newCombo(t, c, "rt"), newCombo(t, c, "rt")
			f := frameOf(t, tx)
			var sizes []int
			for n := 0; n <= 80; n++ {
				sizes = append(sizes, n)
			}
			sizes = append(sizes, 100, 255, 256, 1000, 4095, 32768, 65536+3,
				maxPacketLength-5-255, largestPayload(f))

			// One stream of packets, the sequence number wrapping at 2^32:
			// the CTR keystream and the GCM counter run on across them.
			const firstSeq = 0xffffffff - 40
			var wire []byte
			var payloads [][]byte
			seq := uint32(firstSeq)
			for _, n := range sizes {
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(rng.Uint32())
				}
				before := len(wire)
				wire = tx.appendPacket(wire, seq, p)
				size := len(wire) - before
				if size > packetSize(n, 16, tx.overhead()) {
					t.Fatalf("payload %d: %d bytes on the wire, more than packetSize's %d", n, size, packetSize(n, 16, tx.overhead()))
				}
				// The padding is 4 or more bytes, and less than 4 plus a block.
				packetLen := size - 4 - tx.overhead()
				if pad := packetLen - 1 - n; pad < minPadding || pad >= minPadding+f.align {
					t.Fatalf("payload %d: %d bytes of padding", n, pad)
				}
				payloads = append(payloads, p)
				seq++
			}
			seq = firstSeq
			for i, want := range payloads {
				got, used, err := readPacket(rx, seq, wire)
				if err != nil {
					t.Fatalf("packet %d (payload %d bytes, seq %d): %v", i, len(want), seq, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("packet %d (payload %d bytes): payload differs", i, len(want))
				}
				wire = wire[used:]
				seq++
			}
			if len(wire) != 0 {
				t.Fatalf("%d bytes left over", len(wire))
			}
		})
	}
}

// The payload may be built in dst's spare capacity, where the packet goes.
func TestCipherPayloadInPlace(t *testing.T) {
	for _, c := range append(allCombos(), cipherCombo{cipher: "none"}) {
		tx, rx := newCombo(t, c, "inplace"), newCombo(t, c, "inplace")
		for _, offset := range []int{0, 3, 5, 9} {
			want := bytes.Repeat([]byte("payload!"), 40)
			dst := make([]byte, 7, 1024)
			p := dst[7+offset : 7+offset+len(want)]
			copy(p, want)
			out := tx.appendPacket(dst, uint32(offset), p)
			got, _, err := readPacket(rx, uint32(offset), out[7:])
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: payload at offset %d: %v", c, offset, err)
			}
		}
	}
}

// The none cipher leaves the padding visible: it must not repeat.
func TestCipherPaddingIsRandom(t *testing.T) {
	tx := newNoneCipher()
	a := tx.appendPacket(nil, 0, []byte("x"))
	b := tx.appendPacket(nil, 1, []byte("x"))
	if len(a) != 16 || len(b) != 16 {
		t.Fatalf("packets of %d and %d bytes, want 16", len(a), len(b))
	}
	if bytes.Equal(a[6:], b[6:]) {
		t.Fatalf("the same padding twice: %x", a[6:])
	}
}

// Flipping any bit of a sealed packet (length, body or tag) makes the
// receiver fail, however the flipped length reads.
func TestCipherIntegrity(t *testing.T) {
	for _, c := range allCombos() {
		t.Run(c.String(), func(t *testing.T) {
			tx := newCombo(t, c, "integrity")
			const seq = 3
			payload := []byte("SSH_MSG_CHANNEL_DATA, more or less, and then some bytes")
			sealed := tx.appendPacket(nil, seq, payload)

			if got, _, err := readPacket(newCombo(t, c, "integrity"), seq, bytes.Clone(sealed)); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("untouched packet: %v", err)
			}
			for bit := range 8 * len(sealed) {
				flipped := bytes.Clone(sealed)
				flipped[bit/8] ^= 1 << (bit % 8)
				rx := newCombo(t, c, "integrity")
				_, _, err := readPacket(rx, seq, bytes.Clone(flipped))
				if errors.Is(err, errIncomplete) {
					// The length now says longer: feed the bytes it waits
					// for (fresh receivers: packetLength may decrypt the
					// head in place and move a keystream on).
					lb := rx.lengthBytes()
					rest, _ := newCombo(t, c, "integrity").packetLength(seq, bytes.Clone(flipped[:lb]))
					full := append(bytes.Clone(flipped), make([]byte, lb+rest-len(flipped))...)
					_, _, err = readPacket(newCombo(t, c, "integrity"), seq, full)
				}
				if err == nil {
					t.Fatalf("bit %d flipped and the packet still opened", bit)
				}
				if !errors.Is(err, errMAC) && !errors.Is(err, errBadPacket) {
					t.Fatalf("bit %d: error %v wraps neither errMAC nor errBadPacket", bit, err)
				}
			}

			// The right bytes under another sequence number do not open.
			if _, _, err := readPacket(newCombo(t, c, "integrity"), seq+1, bytes.Clone(sealed)); err == nil && c.cipher != cipherAES128GCM && c.cipher != cipherAES256GCM {
				t.Fatalf("opened under the wrong sequence number")
			}
			// A replay is refused: the second copy meets the next seq and
			// (for CTR and GCM) the moved-on keystream or counter.
			rx := newCombo(t, c, "integrity")
			if _, _, err := readPacket(rx, seq, bytes.Clone(sealed)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := readPacket(rx, seq+1, bytes.Clone(sealed)); err == nil {
				t.Fatalf("a replayed packet opened")
			}
		})
	}
}

// setLength rewrites the packet_length of a sealed packet whose length is
// in the clear or XORed with a keystream (every cipher here), keeping it
// consistently encrypted.
func setLength(wire []byte, from, to uint32) {
	binary.BigEndian.PutUint32(wire, binary.BigEndian.Uint32(wire)^from^to)
}

func TestCipherPacketLengthLimits(t *testing.T) {
	for _, c := range append(allCombos(), cipherCombo{cipher: "none"}) {
		t.Run(c.String(), func(t *testing.T) {
			tx := newCombo(t, c, "limits")
			f := frameOf(t, tx)
			const seq = 9
			sealed := tx.appendPacket(nil, seq, []byte("hello"))
			plen := uint32(len(sealed) - 4 - tx.overhead())

			valid := func(n uint32) bool {
				aligned := uint64(n)
				if f.withLength {
					aligned += 4
				}
				return n >= 5 && n <= maxPacketLength && aligned%uint64(f.align) == 0
			}
			candidates := []uint32{0, 1, 3, 4, 5, 8, 12, 16, 28, 32, plen, plen + 1, plen + 4, plen + 8, plen + 16,
				maxPacketLength - 16, maxPacketLength - 12, maxPacketLength - 4, maxPacketLength,
				maxPacketLength + 1, maxPacketLength + 4, maxPacketLength + 8, maxPacketLength + 16,
				1 << 20, 1<<31 - 4, 1 << 31, 0xfffffff0, 0xfffffffc, 0xffffffff}
			sawValid, sawInvalid := false, false
			for _, n := range candidates {
				wire := bytes.Clone(sealed)
				setLength(wire, plen, n)
				rx := newCombo(t, c, "limits")
				lb := rx.lengthBytes()
				rest, err := rx.packetLength(seq, wire[:lb])
				if !valid(n) {
					sawInvalid = true
					if err == nil {
						t.Errorf("packet_length %d accepted (rest %d)", n, rest)
					} else if !errors.Is(err, errBadPacket) {
						t.Errorf("packet_length %d: error %v does not wrap errBadPacket", n, err)
					}
					continue
				}
				sawValid = true
				if err != nil {
					t.Errorf("packet_length %d rejected: %v", n, err)
				} else if want := 4 + int(n) + tx.overhead() - lb; rest != want {
					t.Errorf("packet_length %d: rest %d, want %d", n, rest, want)
				}
			}
			if !sawValid || !sawInvalid {
				t.Fatalf("candidates did not cover both outcomes")
			}

			// Short heads and packets give errors, not panics.
			rx := newCombo(t, c, "limits")
			for n := range rx.lengthBytes() {
				if _, err := rx.packetLength(seq, make([]byte, n)); err == nil {
					t.Errorf("packetLength accepted a %d-byte head", n)
				}
			}
			for _, n := range []int{0, 1, 3, 4, 5, 15, 16, 20, len(sealed) - 1} {
				if n >= len(sealed) {
					continue
				}
				rx := newCombo(t, c, "limits")
				if _, err := rx.openPacket(seq, bytes.Clone(sealed[:n])); err == nil {
					t.Errorf("openPacket accepted %d bytes", n)
				}
			}
			// A packet of the wrong size for its length field is refused
			// even after a good packetLength.
			rx = newCombo(t, c, "limits")
			wire := append(bytes.Clone(sealed), 0)
			if _, err := rx.packetLength(seq, wire[:rx.lengthBytes()]); err != nil {
				t.Fatal(err)
			}
			if _, err := rx.openPacket(seq, wire); err == nil {
				t.Errorf("openPacket accepted a packet one byte too long")
			}
		})
	}
}

// sealer is implemented by the encrypting ciphers: it seals a framed
// plaintext packet in place, so tests can seal any framing they like.
type sealer interface {
	seal(seq uint32, pkt []byte)
}

// sealFramed seals a plaintext packet (length field, body) with pc.
func sealFramed(t testing.TB, pc packetCipher, seq uint32, plain []byte) []byte {
	t.Helper()
	pkt := append(bytes.Clone(plain), make([]byte, pc.overhead())...)
	if s, ok := pc.(sealer); ok {
		s.seal(seq, pkt)
	} else if _, ok := pc.(*noneCipher); !ok {
		t.Fatalf("%T cannot seal a framed packet", pc)
	}
	return pkt
}

// Padding rules, checked on packets whose MAC is good.
func TestCipherPadding(t *testing.T) {
	for _, c := range append(allCombos(), cipherCombo{cipher: "none"}) {
		t.Run(c.String(), func(t *testing.T) {
			f := frameOf(t, newCombo(t, c, "padding"))
			// Two aligned sizes: the shortest packet and a longer one.
			for _, plen := range []int{16 - 4*boolInt(f.withLength), 48 - 4*boolInt(f.withLength)} {
				for _, padLen := range []int{0, 1, 3, 4, 5, plen - 2, plen - 1, plen, plen + 1, 254, 255} {
					plain := make([]byte, 4+plen)
					binary.BigEndian.PutUint32(plain, uint32(plen))
					plain[4] = byte(padLen)
					for i := 5; i < len(plain); i++ {
						plain[i] = byte(i)
					}
					const seq = 1
					wire := sealFramed(t, newCombo(t, c, "padding"), seq, plain)
					payload, _, err := readPacket(newCombo(t, c, "padding"), seq, wire)
					ok := padLen >= 4 && padLen <= plen-1
					switch {
					case ok && err != nil:
						t.Errorf("packet_length %d, padding_length %d: %v", plen, padLen, err)
					case ok && !bytes.Equal(payload, plain[5:4+plen-padLen]):
						t.Errorf("packet_length %d, padding_length %d: wrong payload", plen, padLen)
					case !ok && err == nil:
						t.Errorf("packet_length %d, padding_length %d accepted", plen, padLen)
					case !ok && (errors.Is(err, errMAC) || !errors.Is(err, errBadPacket)):
						t.Errorf("packet_length %d, padding_length %d: %v, want a padding error", plen, padLen, err)
					}
				}
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCipherAllocs(t *testing.T) {
	for _, c := range append(allCombos(), cipherCombo{cipher: "none"}) {
		t.Run(c.String(), func(t *testing.T) {
			tx, rx := newCombo(t, c, "allocs"), newCombo(t, c, "allocs")
			payload := make([]byte, 1000)
			buf := make([]byte, 0, packetSize(len(payload), 16, tx.overhead()))
			seq := uint32(0)
			var err error
			seal := testing.AllocsPerRun(50, func() {
				buf = tx.appendPacket(buf[:0], seq, payload)
				lb := rx.lengthBytes()
				var rest int
				rest, err = rx.packetLength(seq, buf[:lb])
				if err == nil {
					_, err = rx.openPacket(seq, buf[:lb+rest])
				}
				seq++
			})
			if err != nil {
				t.Fatal(err)
			}
			if seal != 0 {
				t.Errorf("%v allocations per appendPacket+packetLength+openPacket, want 0", seal)
			}
		})
	}
}

func TestCipherKeySizes(t *testing.T) {
	want := map[string][3]int{ // key, iv, aead
		cipherChaCha20Poly1305: {64, 0, 1},
		cipherAES128GCM:        {16, 12, 1},
		cipherAES256GCM:        {32, 12, 1},
		cipherAES128CTR:        {16, 16, 0},
		cipherAES256CTR:        {32, 16, 0},
	}
	if len(want) != len(supportedCiphers) {
		t.Fatalf("supportedCiphers has %d entries, the table %d", len(supportedCiphers), len(want))
	}
	for _, name := range supportedCiphers {
		k, iv, aead, ok := cipherKeySizes(name)
		if w := want[name]; !ok || k != w[0] || iv != w[1] || boolInt(aead) != w[2] {
			t.Errorf("cipherKeySizes(%q) = %d, %d, %v, %v", name, k, iv, aead, ok)
		}
	}
	for name, n := range map[string]int{macHMACSHA256: 32, macHMACSHA256ETM: 32, macHMACSHA512: 64, macHMACSHA512ETM: 64} {
		if got, ok := macKeySize(name); !ok || got != n {
			t.Errorf("macKeySize(%q) = %d, %v", name, got, ok)
		}
	}
	for _, bad := range []string{"", "none", "aes192-ctr", "3des-cbc", "AES128-CTR", "chacha20-poly1305"} {
		if _, _, _, ok := cipherKeySizes(bad); ok {
			t.Errorf("cipherKeySizes(%q) ok", bad)
		}
	}
	for _, bad := range []string{"", "none", "hmac-sha1", "hmac-md5", "umac-64@openssh.com"} {
		if _, ok := macKeySize(bad); ok {
			t.Errorf("macKeySize(%q) ok", bad)
		}
	}

	for _, c := range allCombos() {
		key, iv, macKey := comboKeys(t, c, "sizes")
		if _, err := newPacketCipher(c.cipher, c.mac, key, iv, macKey); err != nil {
			t.Errorf("%s: %v", c, err)
		}
		cut := func(b []byte, d int) []byte { return append(bytes.Clone(b), make([]byte, 1)...)[:len(b)+d] }
		for _, d := range []int{-1, 1} {
			if len(key)+d >= 0 {
				if _, err := newPacketCipher(c.cipher, c.mac, cut(key, d), iv, macKey); err == nil {
					t.Errorf("%s: key of %d bytes accepted", c, len(key)+d)
				}
			}
			if len(iv)+d >= 0 {
				if _, err := newPacketCipher(c.cipher, c.mac, key, cut(iv, d), macKey); err == nil {
					t.Errorf("%s: IV of %d bytes accepted", c, len(iv)+d)
				}
			}
			if c.mac != "" {
				if _, err := newPacketCipher(c.cipher, c.mac, key, iv, cut(macKey, d)); err == nil {
					t.Errorf("%s: MAC key of %d bytes accepted", c, len(macKey)+d)
				}
			}
		}
		if c.mac != "" {
			if _, err := newPacketCipher(c.cipher, "hmac-sha1", key, iv, macKey); err == nil {
				t.Errorf("%s: unsupported MAC accepted", c)
			}
		} else if _, err := newPacketCipher(c.cipher, "whatever", key, iv, nil); err != nil {
			t.Errorf("%s: the MAC of an AEAD cipher is not ignored: %v", c, err)
		}
	}
	if _, err := newPacketCipher("aes192-cbc", macHMACSHA256, make([]byte, 24), make([]byte, 16), make([]byte, 32)); err == nil {
		t.Errorf("unsupported cipher accepted")
	}
}

func chachaPackets(t *testing.T) []testvectors.ChaChaPacket {
	t.Helper()
	published, err := testvectors.OpenSSHChaCha()
	if err != nil {
		t.Fatal(err)
	}
	generated, err := testvectors.OpenSSHChaChaGenerated()
	if err != nil {
		t.Fatal(err)
	}
	if len(published.Vectors) == 0 || len(generated.Vectors) < 10 {
		t.Fatalf("too few vectors: %d published, %d generated", len(published.Vectors), len(generated.Vectors))
	}
	return append(published.Vectors, generated.Vectors...)
}

// chacha20-poly1305@openssh.com against the published worked example and
// the reference-generated packets: seal gives the exact bytes, open gives
// the payload back.
func TestCipherChaChaKnownAnswers(t *testing.T) {
	for i, v := range chachaPackets(t) {
		c, err := newPacketCipher(cipherChaCha20Poly1305, "", v.Key, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := sealFramed(t, c, v.Seq, v.Plaintext)
		want := append(bytes.Clone(v.Ciphertext), v.Tag...)
		if !bytes.Equal(got, want) {
			t.Errorf("vector %d (%s): sealed\n%x\nwant\n%x", i, v.Comment, got, want)
		}
		payload, used, err := readPacket(c, v.Seq, want)
		if err != nil {
			t.Fatalf("vector %d (%s): %v", i, v.Comment, err)
		}
		padLen := int(v.Plaintext[4])
		if used != len(want) || !bytes.Equal(payload, v.Plaintext[5:len(v.Plaintext)-padLen]) {
			t.Errorf("vector %d (%s): opened to %x", i, v.Comment, payload)
		}
	}
}

// AES-GCM against the standard library used directly as RFC 5647
// describes: nonce = the 12-byte IV with its last 8 bytes counting packets,
// packet_length as AAD.
func TestCipherGCMAgainstStdlib(t *testing.T) {
	for _, name := range []string{cipherAES128GCM, cipherAES256GCM} {
		c := cipherCombo{cipher: name}
		key, iv, _ := comboKeys(t, c, "stdlib")
		// Start near the counter's wrap so it is crossed.
		binary.BigEndian.PutUint64(iv[4:], 0xffffffffffffffff-2)
		ours, err := newPacketCipher(name, "", key, iv, nil)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := aes.NewCipher(key)
		ref, _ := cipher.NewGCM(block)
		nonce := bytes.Clone(iv)
		for i := range 6 {
			payload := bytes.Repeat([]byte{byte(i)}, 17*i)
			wire := ours.appendPacket(nil, uint32(i), payload)
			plain, err := ref.Open(nil, nonce, wire[4:], wire[:4])
			if err != nil {
				t.Fatalf("%s packet %d: the standard library refuses it: %v", name, i, err)
			}
			if len(plain)%16 != 0 || int(binary.BigEndian.Uint32(wire)) != len(plain) {
				t.Fatalf("%s packet %d: %d bytes encrypted, length field %d", name, i, len(plain), binary.BigEndian.Uint32(wire))
			}
			padLen := int(plain[0])
			if padLen < 4 || !bytes.Equal(plain[1:len(plain)-padLen], payload) {
				t.Fatalf("%s packet %d: bad framing %x", name, i, plain)
			}
			// And the other way, with the same nonce for a second receiver.
			refWire := ref.Seal(bytes.Clone(wire[:4]), nonce, plain, wire[:4])
			if !bytes.Equal(refWire, wire) {
				t.Fatalf("%s packet %d: the standard library seals it differently", name, i)
			}
			binary.BigEndian.PutUint64(nonce[4:], binary.BigEndian.Uint64(nonce[4:])+1)
		}
		if !bytes.Equal(nonce[:4], iv[:4]) || binary.BigEndian.Uint64(nonce[4:]) != 3 {
			t.Fatalf("test nonce did not wrap as expected: %x", nonce)
		}
		if g := ours.(*gcmCipher); !bytes.Equal(g.nonce[:], nonce) {
			t.Fatalf("invocation counter %x, want %x", g.nonce, nonce)
		}
	}
}

// AES-CTR with each HMAC against the standard library composed directly
// from RFC 4253 section 6 (encrypt-and-MAC) and OpenSSH's PROTOCOL 1.7
// (encrypt-then-MAC), both ways, over several packets of one keystream.
func TestCipherCTRAgainstStdlib(t *testing.T) {
	for _, c := range allCombos() {
		if _, _, aead, _ := cipherKeySizes(c.cipher); aead {
			continue
		}
		t.Run(c.String(), func(t *testing.T) {
			key, iv, macKey := comboKeys(t, c, "stdlib")
			tx, err := newPacketCipher(c.cipher, c.mac, key, iv, macKey)
			if err != nil {
				t.Fatal(err)
			}
			rx, _ := newPacketCipher(c.cipher, c.mac, key, iv, macKey)
			block, _ := aes.NewCipher(key)
			refDec := cipher.NewCTR(block, iv)
			refEnc := cipher.NewCTR(block, iv)
			h := sha256.New
			if c.mac == macHMACSHA512 || c.mac == macHMACSHA512ETM {
				h = sha512.New
			}
			etm := c.mac == macHMACSHA256ETM || c.mac == macHMACSHA512ETM
			mac := func(seq uint32, data []byte) []byte {
				m := hmac.New(h, macKey)
				m.Write(binary.BigEndian.AppendUint32(nil, seq))
				m.Write(data)
				return m.Sum(nil)
			}
			for i := range 5 {
				seq := uint32(1000 + i)
				payload := bytes.Repeat([]byte{0xa0 | byte(i)}, 30*i+1)
				wire := tx.appendPacket(nil, seq, payload)
				macLen := tx.overhead()
				body, tag := bytes.Clone(wire[:len(wire)-macLen]), wire[len(wire)-macLen:]
				var want []byte
				if etm {
					want = mac(seq, body)
					refDec.XORKeyStream(body[4:], body[4:])
				} else {
					refDec.XORKeyStream(body, body)
					want = mac(seq, body)
				}
				if !bytes.Equal(tag, want) {
					t.Fatalf("packet %d: MAC differs from HMAC over the RFC's input", i)
				}
				plen := int(binary.BigEndian.Uint32(body))
				aligned := plen
				if !etm {
					aligned += 4
				}
				padLen := int(body[4])
				if plen != len(body)-4 || aligned%16 != 0 || padLen < 4 || !bytes.Equal(body[5:4+plen-padLen], payload) {
					t.Fatalf("packet %d: bad framing %x", i, body)
				}

				// The reference seals the same plaintext; we open it.
				ref := bytes.Clone(body)
				if etm {
					refEnc.XORKeyStream(ref[4:], ref[4:])
					ref = append(ref, mac(seq, ref)...)
				} else {
					m := mac(seq, ref)
					refEnc.XORKeyStream(ref, ref)
					ref = append(ref, m...)
				}
				got, _, err := readPacket(rx, seq, ref)
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("packet %d: the reference's packet does not open: %v", i, err)
				}
			}
		})
	}
}

// A hash.Hash check that the MACs really are HMAC-SHA2 of the right width.
func TestCipherMACSizes(t *testing.T) {
	for _, c := range allCombos() {
		if c.mac == "" {
			continue
		}
		pc := newCombo(t, c, "macsize")
		var want hash.Hash = sha256.New()
		if c.mac == macHMACSHA512 || c.mac == macHMACSHA512ETM {
			want = sha512.New()
		}
		if pc.overhead() != want.Size() {
			t.Errorf("%s: overhead %d, want %d", c, pc.overhead(), want.Size())
		}
	}
}

// setPaddingSource gives a cipher a deterministic padding source.
func setPaddingSource(t testing.TB, pc packetCipher, seed byte) {
	t.Helper()
	rng := rand.NewChaCha8([32]byte{seed})
	switch c := pc.(type) {
	case *noneCipher:
		c.rng = rng
	case *chachaCipher:
		c.rng = rng
	case *gcmCipher:
		c.rng = rng
	case *ctrCipher:
		c.rng = rng
	default:
		t.Fatalf("unknown cipher type %T", pc)
	}
}

// A payload sealed where it lies (SealFrame's path) gives the very
// bytes of the copying path, with the payload left untouched, whether the
// frame has room for the padding or not (then it falls back).
func TestCipherFramedSeal(t *testing.T) {
	type variant struct {
		combo cipherCombo
		asm   bool
	}
	var vs []variant
	for _, c := range append(allCombos(), cipherCombo{cipher: "none"}) {
		vs = append(vs, variant{c, false})
		if c.cipher == cipherChaCha20Poly1305 && chachapoly.Accelerated() {
			vs = append(vs, variant{c, true})
		}
	}
	for _, v := range vs {
		t.Run(fmt.Sprintf("%s/asm=%v", v.combo, v.asm), func(t *testing.T) {
			ref, framed, rx := newCombo(t, v.combo, "framed"), newCombo(t, v.combo, "framed"), newCombo(t, v.combo, "framed")
			for _, pc := range []packetCipher{ref, framed} {
				setPaddingSource(t, pc, 7)
				if c, ok := pc.(*chachaCipher); ok && !v.asm {
					c.aead.DisableAssembly()
				}
			}
			out := outbound{direction: direction{cipher: framed}}
			seq := uint32(0)
			lengths := []int{1, 2, 15, 16, 17, 100, 1023, 1024, 1025, 4096, 32768 + 9, 65000}
			for _, n := range lengths {
				for _, spare := range []int{0, 3, 18, 19, wire.FrameTailroom} {
					payload := make([]byte, n)
					for i := range payload {
						payload[i] = byte(i*7 + n)
					}
					buf := make([]byte, wire.FrameHeadroom+n, wire.FrameHeadroom+n+spare)
					copy(buf[wire.FrameHeadroom:], payload)
					want := ref.appendPacket([]byte("prefix"), seq, payload)
					got := out.sealFramed([]byte("prefix"), buf)
					if !bytes.Equal(got, want) {
						t.Fatalf("payload %d, %d spare: framed seal differs from appendPacket", n, spare)
					}
					if !bytes.Equal(buf[wire.FrameHeadroom:], payload) {
						t.Fatalf("payload %d, %d spare: the framed seal changed the payload", n, spare)
					}
					p, used, err := readPacket(rx, seq, got[len("prefix"):])
					if err != nil || used != len(got)-len("prefix") || !bytes.Equal(p, payload) {
						t.Fatalf("payload %d, %d spare: opened %d bytes of %d, %v", n, spare, used, len(got)-len("prefix"), err)
					}
					seq++
				}
			}
			if out.seq != seq {
				t.Fatalf("sequence number %d after %d packets", out.seq, seq)
			}
			// With FrameTailroom spare bytes the one-pass path must be taken:
			// the equality above holds for the fallback as well.
			if _, ok := framed.(framedSealer); ok {
				buf := make([]byte, wire.FrameHeadroom+10, wire.FrameHeadroom+10+wire.FrameTailroom)
				buf[wire.FrameHeadroom] = 94
				if _, ok := framed.(framedSealer).appendFramed(nil, seq, buf); !ok {
					t.Fatal("appendFramed refused a frame with FrameTailroom spare bytes")
				}
			}
		})
	}
}

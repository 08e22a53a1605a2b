package chachapoly

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rsftp/rsftp/testvectors"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"
)

// maxPacketLength is transport's bound on packet_length (256 KiB).
const maxPacketLength = 256 * 1024

// newCipher returns a Cipher for key, with the assembly or without.
func newCipher(t testing.TB, key []byte, asm bool) *Cipher {
	t.Helper()
	c, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	if !asm {
		c.DisableAssembly()
	}
	return c
}

// framePacket returns a plaintext packet as SSH frames it for this
// cipher: packet_length, padding_length, payload, random padding of 4
// bytes or more that aligns the packet to 8 bytes.
func framePacket(rng *rand.Rand, payload []byte) []byte {
	padLen := 8 - (4+1+len(payload))%8
	if padLen < 4 {
		padLen += 8
	}
	padLen += 8 * rng.IntN(4)
	pkt := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+padLen))
	pkt = append(pkt, byte(padLen))
	pkt = append(pkt, payload...)
	for range padLen {
		pkt = append(pkt, byte(rng.Uint32()))
	}
	return pkt
}

// chachaBlock against RFC 8439's block function vectors.
func TestCipherChaChaBlock(t *testing.T) {
	f, err := testvectors.ChaChaBlocks()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f.Vectors {
		var key [8]uint32
		for j := range key {
			key[j] = binary.LittleEndian.Uint32(v.Key[4*j:])
		}
		var nonce [3]uint32
		for j := range nonce {
			nonce[j] = binary.LittleEndian.Uint32(v.Nonce[4*j:])
		}
		var out [64]byte
		chachaBlock(&out, &key, v.Counter, &nonce)
		if !bytes.Equal(out[:len(v.Block)], v.Block) {
			t.Errorf("vector %d (%s):\n got %x\nwant %x", i, v.Comment, out[:len(v.Block)], v.Block)
		}
	}
	// The nonce of a sequence number is the IETF layout of OpenSSH's
	// 64-bit big-endian nonce.
	for _, seq := range []uint32{0, 1, 7, 0x01020304, 0xffffffff} {
		want := make([]byte, 12)
		binary.BigEndian.PutUint64(want[4:], uint64(seq))
		n := seqNonce(seq)
		got := make([]byte, 12)
		for j := range n {
			binary.LittleEndian.PutUint32(got[4*j:], n[j])
		}
		if !bytes.Equal(got, want) {
			t.Errorf("seqNonce(%#x) = %x, want %x", seq, got, want)
		}
	}
}

// Random packets both ways between Cipher and the slow reference built
// from x/crypto/chacha20 and x/crypto/poly1305, through the AVX-512
// assembly (where the CPU has it) and through x/crypto/chacha20; sealed
// in place and into another buffer; a flipped bit fails Open and leaves
// the packet as it was.
func TestCipherChaChaReference(t *testing.T) {
	for _, asm := range []bool{true, false} {
		t.Run(fmt.Sprintf("asm=%v", asm), func(t *testing.T) {
			if asm && !Accelerated() {
				t.Skip("no AVX-512 on this CPU")
			}
			testChaChaReference(t, asm)
		})
	}
}

func testChaChaReference(t *testing.T, asm bool) {
	rng := rand.New(rand.NewPCG(3, 4))
	key := make([]byte, KeySize)
	for i := range 300 {
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		c := newCipher(t, key, asm)
		seq := rng.Uint32()
		if i < 3 {
			seq = []uint32{0, 0xffffffff, 0x80000000}[i]
		}
		size := rng.IntN(3000)
		if i%10 == 0 {
			size = rng.IntN(maxPacketLength - 1024) // many 1024-byte chunks and a tail
		}
		payload := make([]byte, size)
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		plain := framePacket(rng, payload)
		n := len(plain)
		wire := append(bytes.Clone(plain), make([]byte, TagSize)...)
		if i%2 == 0 {
			c.Seal(seq, wire, wire[:n])
		} else {
			c.Seal(seq, wire, plain)
		}
		got, err := testvectors.ReferenceChaChaOpen(key, seq, wire[:n], wire[n:])
		if err != nil {
			t.Fatalf("packet %d: the reference refuses our packet: %v", i, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("packet %d: the reference reads another packet", i)
		}

		ct, tag, err := testvectors.ReferenceChaChaSeal(key, seq, plain)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ct, wire[:n]) || !bytes.Equal(tag, wire[n:]) {
			t.Fatalf("packet %d: the reference seals it differently", i)
		}
		pkt := append(ct, tag...)
		if l := c.Length(seq, pkt); int(l) != n-4 || !bytes.Equal(pkt[:4], wire[:4]) {
			t.Fatalf("packet %d: Length %d, want %d (head %x)", i, l, n-4, pkt[:4])
		}
		bad := bytes.Clone(pkt)
		bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
		before := bytes.Clone(bad)
		if c.Open(seq, bad) {
			t.Fatalf("packet %d: a flipped bit went unnoticed", i)
		}
		if !bytes.Equal(bad, before) {
			t.Fatalf("packet %d: a failed Open changed the packet", i)
		}
		if !c.Open(seq, pkt) {
			t.Fatalf("packet %d: the reference's packet does not open", i)
		}
		if !bytes.Equal(pkt[4:n], plain[4:]) || !bytes.Equal(pkt[:4], wire[:4]) {
			t.Fatalf("packet %d: opened to another packet", i)
		}
	}
}

// The AVX-512 keystream against x/crypto/chacha20 for every whole number
// of chunks up to 4, at counters that cross byte and word boundaries,
// with dst and src apart and the same.
func TestChaChaAVX512Keystream(t *testing.T) {
	if !chachaAVX512 {
		t.Skip("no AVX-512 on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 200 {
		var key [32]byte
		var nonce [12]byte
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		for j := range nonce {
			nonce[j] = byte(rng.Uint32())
		}
		counter := []uint32{0, 1, 250, 0xff00, rng.Uint32() >> 8}[i%5]
		chunks := 1 + i%4
		src := make([]byte, chunks*1024)
		for j := range src {
			src[j] = byte(rng.Uint32())
		}
		ref, err := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
		if err != nil {
			t.Fatal(err)
		}
		ref.SetCounter(counter)
		want := make([]byte, len(src))
		ref.XORKeyStream(want, src)

		var st [16]uint32
		st[0], st[1], st[2], st[3] = 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574
		for j := range 8 {
			st[4+j] = binary.LittleEndian.Uint32(key[4*j:])
		}
		st[12] = counter
		for j := range 3 {
			st[13+j] = binary.LittleEndian.Uint32(nonce[4*j:])
		}
		before := st
		got := make([]byte, len(src))
		chachaXORAVX512(&st, &got[0], &src[0], chunks)
		if st != before {
			t.Fatalf("case %d: the state changed", i)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d (counter %d, %d chunks): keystream differs from x/crypto/chacha20", i, counter, chunks)
		}
		chachaXORAVX512(&st, &src[0], &src[0], chunks)
		if !bytes.Equal(src, want) {
			t.Fatalf("case %d: in place differs", i)
		}
	}
}

// FuzzChaChaPolySIMD checks the assembly of chacha20-poly1305@openssh.com
// against the portable code for fuzzer-chosen keys, sequence numbers and
// lengths: the AVX-512 keystream against x/crypto/chacha20, the IFMA
// Poly1305 against x/crypto/poly1305, and a whole packet sealed by one
// opened by the other. Where the CPU lacks the instructions both sides
// are the portable code and the target checks only the round trip.
func FuzzChaChaPolySIMD(f *testing.F) {
	f.Add([]byte("key"), uint32(0), []byte("hello"))
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint32(0xffffffff), bytes.Repeat([]byte{0xff}, 1500))
	f.Add([]byte{1, 2, 3}, uint32(7), make([]byte, 4096+13))
	f.Fuzz(func(t *testing.T, keySeed []byte, seq uint32, msg []byte) {
		if len(msg) > maxPacketLength-1024 {
			return
		}
		key := make([]byte, KeySize)
		for i := range key {
			if len(keySeed) > 0 {
				key[i] = keySeed[i%len(keySeed)] ^ byte(i)
			}
		}
		fast := newCipher(t, key, chachaAVX512)
		slow := newCipher(t, key, false)

		a := append(bytes.Clone(msg), make([]byte, TagSize)...)
		b := bytes.Clone(a)
		fast.xorBody(seq, a[:len(msg)], a[:len(msg)])
		slow.xorBody(seq, b[:len(msg)], b[:len(msg)])
		if !bytes.Equal(a[:len(msg)], b[:len(msg)]) {
			t.Fatalf("keystreams differ for %d bytes at seq %d", len(msg), seq)
		}

		var pk [32]byte
		copy(pk[:], key[:32])
		var got, want [16]byte
		polySum(&got, msg, &pk)
		poly1305.Sum(&want, msg, &pk)
		if got != want {
			t.Fatalf("Poly1305 of %d bytes: %x, x/crypto %x", len(msg), got, want)
		}
		if polyIFMA && len(msg) >= 128 {
			polySumIFMA(&got, msg, &pk)
			if got != want {
				t.Fatalf("IFMA Poly1305 of %d bytes: %x, x/crypto %x", len(msg), got, want)
			}
		}

		// A packet: a length field, then msg as the rest.
		plain := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
		plain = append(plain, msg...)
		for _, dir := range []struct{ tx, rx *Cipher }{{fast, slow}, {slow, fast}} {
			wire := make([]byte, len(plain)+TagSize)
			dir.tx.Seal(seq, wire, plain)
			if n := dir.rx.Length(seq, wire); n != uint32(len(msg)) {
				t.Fatalf("length %d read back as %d", len(msg), n)
			}
			if !dir.rx.Open(seq, wire) || !bytes.Equal(wire[4:len(plain)], msg) {
				t.Fatalf("a packet sealed with the assembly %v does not open without", dir.tx.asm)
			}
		}
	})
}

// benchPacket is the size of the plaintext packet (length field,
// padding_length, padding) of a 32 KiB payload, OpenSSH's default channel
// packet size, what SFTP transfers fill.
const benchPacket = 4 + 1 + 32*1024 + 11

// BenchmarkSeal measures Cipher.Seal in place on one 32 KiB packet, with
// the assembly and without.
func BenchmarkSeal(b *testing.B) {
	for _, asm := range []bool{true, false} {
		b.Run(fmt.Sprintf("asm=%v", asm), func(b *testing.B) {
			if asm && !Accelerated() {
				b.Skip("no AVX-512 on this CPU")
			}
			c := newCipher(b, make([]byte, KeySize), asm)
			pkt := make([]byte, benchPacket+TagSize)
			b.SetBytes(benchPacket)
			b.ReportAllocs()
			seq := uint32(0)
			for b.Loop() {
				c.Seal(seq, pkt, pkt[:benchPacket])
				seq++
			}
		})
	}
}

// BenchmarkOpen measures Length and Open of one 32 KiB packet, with the
// assembly and without. Opening decrypts in place, so each round opens a
// fresh copy of a sealed packet (the copy is timed too; it is small next
// to the rest).
func BenchmarkOpen(b *testing.B) {
	for _, asm := range []bool{true, false} {
		b.Run(fmt.Sprintf("asm=%v", asm), func(b *testing.B) {
			if asm && !Accelerated() {
				b.Skip("no AVX-512 on this CPU")
			}
			c := newCipher(b, make([]byte, KeySize), asm)
			sealed := make([]byte, benchPacket+TagSize)
			c.Seal(7, sealed, sealed[:benchPacket])
			pkt := make([]byte, len(sealed))
			b.SetBytes(benchPacket)
			b.ReportAllocs()
			for b.Loop() {
				copy(pkt, sealed)
				c.Length(7, pkt)
				if !c.Open(7, pkt) {
					b.Fatal("tag mismatch")
				}
			}
		})
	}
}

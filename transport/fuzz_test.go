package transport

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"

	"golang.org/x/crypto/poly1305"
)

// FuzzInboundPacket feeds arbitrary bytes to the packet decoder under
// every cipher: it must return packets or errors, never panic, and never
// claim more bytes than it was given.
func FuzzInboundPacket(f *testing.F) {
	f.Add(uint8(0), []byte{0, 0, 0, 12, 4, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add(uint8(1), bytes.Repeat([]byte{0xff}, 64))
	f.Add(uint8(3), make([]byte, 200))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		in := newInbound()
		names := append([]string{"none"}, supportedCiphers...)
		name := names[int(which)%len(names)]
		if name != "none" {
			keyLen, ivLen, aead, _ := cipherKeySizes(name)
			mac := ""
			var macKey []byte
			if !aead {
				mac = supportedMACs[int(which/8)%len(supportedMACs)]
				n, _ := macKeySize(mac)
				macKey = make([]byte, n)
			}
			c, err := newPacketCipher(name, mac, make([]byte, keyLen), make([]byte, ivLen), macKey)
			if err != nil {
				t.Fatal(err)
			}
			in.cipher = c
		}
		r := bytes.NewReader(data)
		for i := 0; i < 1000; i++ {
			p, err := in.next()
			if err == errNeedMore {
				if in.fill(r) != nil {
					return
				}
				continue
			}
			if err != nil {
				return
			}
			if len(p) > maxPacketLength {
				t.Fatalf("payload of %d bytes", len(p))
			}
		}
	})
}

func FuzzParseKexInit(f *testing.F) {
	m, _ := newKexInit(&Config{}, true, true, DefaultHostKeyAlgorithms)
	f.Add(m.marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parseKexInit(data)
		if err != nil {
			return
		}
		// What parses must survive a marshal/parse round trip.
		k2, err := parseKexInit(k.marshal())
		if err != nil || !reflect.DeepEqual(k, k2) {
			t.Fatalf("round trip differs: %v", err)
		}
	})
}

func FuzzReadVersion(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n"), true)
	f.Add([]byte("hello\r\nSSH-2.0-x\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, fromServer bool) {
		v, err := readVersion(bufio.NewReader(bytes.NewReader(data)), fromServer)
		if err == nil && (len(v) > maxVersionLine || !bytes.HasPrefix(v, []byte("SSH-"))) {
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzChaChaPolySIMD checks the assembly of chacha20-poly1305@openssh.com
// against the portable code for fuzzer-chosen keys, sequence numbers and
// lengths: the AVX-512 keystream against the AEAD path, the IFMA
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
		key := make([]byte, chachaKeySize)
		for i := range key {
			if len(keySeed) > 0 {
				key[i] = keySeed[i%len(keySeed)] ^ byte(i)
			}
		}
		fast := newChaChaForFuzz(t, key, chachaAVX512)
		slow := newChaChaForFuzz(t, key, false)

		a := append(bytes.Clone(msg), make([]byte, chachaTagSize)...)
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

		wire := fast.appendPacket(nil, seq, msg)
		payload, _, err := readPacket(slow, seq, wire)
		if err != nil || !bytes.Equal(payload, msg) {
			t.Fatalf("a packet sealed by the assembly does not open in the portable code: %v", err)
		}
		wire = slow.appendPacket(nil, seq, msg)
		payload, _, err = readPacket(fast, seq, wire)
		if err != nil || !bytes.Equal(payload, msg) {
			t.Fatalf("a packet sealed by the portable code does not open in the assembly: %v", err)
		}
	})
}

func newChaChaForFuzz(t *testing.T, key []byte, asm bool) *chachaCipher {
	c, err := newChaChaCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	c.asm = asm
	return c
}

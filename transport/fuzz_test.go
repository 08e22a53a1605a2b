package transport

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"
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

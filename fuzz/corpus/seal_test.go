package corpus

// Sealing of recorded payloads as transport's FuzzInboundPacket opens
// them for a cipher other than "none": every key, IV and MAC key all
// zeros, sequence numbers from 0. Written from RFC 4253, RFC 5647 and
// OpenSSH's PROTOCOL.chacha20poly1305 and PROTOCOL (etm), so that a
// mistake here shows as seeds that fail to decrypt, not as a shared bug.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"strings"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"

	"github.com/rsftp/rsftp/transport"
)

// recCombo is a cipher (and MAC) and the FuzzInboundPacket selector
// that picks it.
type recCombo struct {
	which       uint8
	cipher, mac string
}

// recCipherCombos lists every cipher and, for those that take one, every
// MAC, with the smallest selector the target maps to it: cipher
// ["none", ciphers...][which % n], MAC macs[which/8 % m].
func recCipherCombos() []recCombo {
	names := append([]string{"none"}, transport.SupportedCiphers()...)
	macs := transport.SupportedMACs()
	seen := map[string]bool{}
	var out []recCombo
	for w := 0; w < 256; w++ {
		c := names[w%len(names)]
		if c == "none" {
			continue
		}
		m := ""
		if !recAEAD(c) {
			m = macs[w/8%len(macs)]
		}
		if !seen[c+" "+m] {
			seen[c+" "+m] = true
			out = append(out, recCombo{uint8(w), c, m})
		}
	}
	return out
}

func recAEAD(c string) bool { return strings.Contains(c, "gcm") || strings.Contains(c, "chacha") }

// recPad frames payload as padding_length || payload || padding with at
// least 4 bytes of padding, so that prefix plus that is a multiple of 16.
func recPad(prefix int, payload []byte) []byte {
	pad := 16 - (prefix+1+len(payload))%16
	if pad < 4 {
		pad += 16
	}
	b := append([]byte{byte(pad)}, payload...)
	return append(b, make([]byte, pad)...)
}

// recSeal seals payloads as consecutive packets from sequence number 0.
func recSeal(cipherName, macName string, payloads [][]byte) []byte {
	var out []byte
	switch {
	case strings.HasPrefix(cipherName, "chacha20-poly1305"):
		var key [32]byte // both halves of the all-zero key
		for seq, p := range payloads {
			body := recPad(0, p)
			var nonce [12]byte
			binary.BigEndian.PutUint64(nonce[4:], uint64(seq))
			var l [4]byte
			binary.BigEndian.PutUint32(l[:], uint32(len(body)))
			hc, _ := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
			hc.XORKeyStream(l[:], l[:])
			mc, _ := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
			var polyKey [32]byte
			mc.XORKeyStream(polyKey[:], polyKey[:])
			mc.SetCounter(1)
			mc.XORKeyStream(body, body)
			pkt := append(l[:], body...)
			tag := new([16]byte)
			poly1305.Sum(tag, pkt, &polyKey)
			out = append(out, pkt...)
			out = append(out, tag[:]...)
		}
	case strings.Contains(cipherName, "gcm"):
		block, _ := aes.NewCipher(make([]byte, recKeyLen(cipherName)))
		aead, _ := cipher.NewGCM(block)
		nonce := make([]byte, 12)
		for _, p := range payloads {
			body := recPad(0, p)
			l := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
			out = append(out, l...)
			out = aead.Seal(out, nonce, body, l)
			binary.BigEndian.PutUint64(nonce[4:], binary.BigEndian.Uint64(nonce[4:])+1)
		}
	default: // AES-CTR with an HMAC, encrypt-and-MAC or encrypt-then-MAC
		block, _ := aes.NewCipher(make([]byte, recKeyLen(cipherName)))
		stream := cipher.NewCTR(block, make([]byte, 16))
		newHash := sha256.New
		macKey := make([]byte, 32)
		if strings.Contains(macName, "512") {
			newHash, macKey = func() hash.Hash { return sha512.New() }, make([]byte, 64)
		}
		etm := strings.HasSuffix(macName, "-etm@openssh.com")
		for seq, p := range payloads {
			mac := hmac.New(newHash, macKey)
			mac.Write(binary.BigEndian.AppendUint32(nil, uint32(seq)))
			if etm {
				body := recPad(0, p)
				l := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
				stream.XORKeyStream(body, body)
				mac.Write(l)
				mac.Write(body)
				out = append(out, l...)
				out = append(out, body...)
			} else {
				body := recPad(4, p)
				pkt := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
				mac.Write(pkt)
				stream.XORKeyStream(pkt, pkt)
				out = append(out, pkt...)
			}
			out = mac.Sum(out)
		}
	}
	return out
}

func recKeyLen(cipherName string) int {
	if strings.Contains(cipherName, "256") {
		return 32
	}
	return 16
}

// Package testvectors holds known-answer test data for rsftp's
// cryptography, with loaders and slow reference implementations for tests
// of other packages. It is imported only by tests. README.md gives the
// source of every vector set.
package testvectors

import (
	"embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"
)

//go:embed data/*.json
var data embed.FS

// Hex is a byte string written in JSON as lowercase hexadecimal.
type Hex []byte

// UnmarshalJSON decodes a hexadecimal JSON string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// MarshalJSON encodes h as a hexadecimal JSON string.
func (h Hex) MarshalJSON() ([]byte, error) {
	return json.Marshal(hex.EncodeToString(h))
}

// ChaChaPacket is one chacha20-poly1305@openssh.com packet: the 64 bytes
// of key material of its direction (K_2 then K_1), its sequence number,
// the whole plaintext packet (packet_length through padding), what goes on
// the wire before the tag, and the tag.
type ChaChaPacket struct {
	Comment    string `json:"comment"`
	Key        Hex    `json:"key"`
	Seq        uint32 `json:"seq"`
	Plaintext  Hex    `json:"plaintext"`
	Ciphertext Hex    `json:"ciphertext"`
	Tag        Hex    `json:"tag"`
}

// ChaChaBlock is one ChaCha20 block function vector (RFC 8439 layout:
// 32-bit counter, 96-bit nonce). Block may be a prefix of the 64 bytes.
type ChaChaBlock struct {
	Comment string `json:"comment"`
	Key     Hex    `json:"key"`
	Nonce   Hex    `json:"nonce"`
	Counter uint32 `json:"counter"`
	Block   Hex    `json:"block"`
}

// File is the layout of every data file: where the vectors come from,
// then the vectors.
type File[V any] struct {
	Source  string `json:"source"`
	Vectors []V    `json:"vectors"`
}

// Data file names.
const (
	OpenSSHChaChaFile          = "data/chacha20poly1305-openssh.json"
	OpenSSHChaChaGeneratedFile = "data/chacha20poly1305-openssh-generated.json"
	ChaChaBlockFile            = "data/chacha20-block-rfc8439.json"
)

func load[V any](name string) (File[V], error) {
	var f File[V]
	b, err := data.ReadFile(name)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%s: %w", name, err)
	}
	if f.Source == "" || len(f.Vectors) == 0 {
		return f, fmt.Errorf("%s: no source or no vectors", name)
	}
	return f, nil
}

// OpenSSHChaCha returns the published chacha20-poly1305@openssh.com
// vectors.
func OpenSSHChaCha() (File[ChaChaPacket], error) {
	return loadChaChaPackets(OpenSSHChaChaFile)
}

// OpenSSHChaChaGenerated returns chacha20-poly1305@openssh.com vectors
// computed by ReferenceChaChaSeal over a spread of sequence numbers and
// sizes (see chacha_test.go, TestGenerateChaChaVectors).
func OpenSSHChaChaGenerated() (File[ChaChaPacket], error) {
	return loadChaChaPackets(OpenSSHChaChaGeneratedFile)
}

func loadChaChaPackets(name string) (File[ChaChaPacket], error) {
	f, err := load[ChaChaPacket](name)
	if err != nil {
		return f, err
	}
	for i, v := range f.Vectors {
		if len(v.Key) != 64 || len(v.Tag) != 16 || len(v.Plaintext) < 4 || len(v.Ciphertext) != len(v.Plaintext) {
			return f, fmt.Errorf("%s: vector %d has bad field sizes", name, i)
		}
	}
	return f, nil
}

// ChaChaBlocks returns the RFC 8439 ChaCha20 block function vectors.
func ChaChaBlocks() (File[ChaChaBlock], error) {
	f, err := load[ChaChaBlock](ChaChaBlockFile)
	if err != nil {
		return f, err
	}
	for i, v := range f.Vectors {
		if len(v.Key) != 32 || len(v.Nonce) != 12 || len(v.Block) == 0 || len(v.Block) > 64 {
			return f, fmt.Errorf("%s: vector %d has bad field sizes", ChaChaBlockFile, i)
		}
	}
	return f, nil
}

// chachaNonce is the 96-bit RFC 8439 nonce equivalent to OpenSSH's 64-bit
// nonce for seq: four zero bytes, then seq as a big-endian uint64.
func chachaNonce(seq uint32) []byte {
	n := make([]byte, chacha20.NonceSize)
	binary.BigEndian.PutUint64(n[4:], uint64(seq))
	return n
}

// ReferenceChaChaSeal is a slow, straightforward chacha20-poly1305@openssh.com
// built from x/crypto/chacha20 and x/crypto/poly1305, written from
// PROTOCOL.chacha20poly1305 and independent of rsftp's transport code.
// packet is the whole plaintext packet, packet_length included.
func ReferenceChaChaSeal(key []byte, seq uint32, packet []byte) (ciphertext, tag []byte, err error) {
	if len(key) != 64 {
		return nil, nil, errors.New("testvectors: chacha20-poly1305@openssh.com needs 64 bytes of key")
	}
	if len(packet) < 4 {
		return nil, nil, errors.New("testvectors: packet shorter than its length field")
	}
	k2, k1 := key[:32], key[32:]
	nonce := chachaNonce(seq)

	ciphertext = make([]byte, len(packet))
	lengthCipher, err := chacha20.NewUnauthenticatedCipher(k1, nonce)
	if err != nil {
		return nil, nil, err
	}
	lengthCipher.XORKeyStream(ciphertext[:4], packet[:4])

	polyCipher, err := chacha20.NewUnauthenticatedCipher(k2, nonce)
	if err != nil {
		return nil, nil, err
	}
	var polyKey [32]byte
	polyCipher.XORKeyStream(polyKey[:], polyKey[:])

	bodyCipher, err := chacha20.NewUnauthenticatedCipher(k2, nonce)
	if err != nil {
		return nil, nil, err
	}
	bodyCipher.SetCounter(1)
	bodyCipher.XORKeyStream(ciphertext[4:], packet[4:])

	var t [16]byte
	poly1305.Sum(&t, ciphertext, &polyKey)
	return ciphertext, t[:], nil
}

// ReferenceChaChaOpen checks the tag and decrypts with the same
// construction as ReferenceChaChaSeal.
func ReferenceChaChaOpen(key []byte, seq uint32, ciphertext, tag []byte) ([]byte, error) {
	if len(key) != 64 || len(tag) != 16 || len(ciphertext) < 4 {
		return nil, errors.New("testvectors: bad sizes")
	}
	nonce := chachaNonce(seq)
	polyCipher, err := chacha20.NewUnauthenticatedCipher(key[:32], nonce)
	if err != nil {
		return nil, err
	}
	var polyKey [32]byte
	polyCipher.XORKeyStream(polyKey[:], polyKey[:])
	if !poly1305.Verify((*[16]byte)(tag), ciphertext, &polyKey) {
		return nil, errors.New("testvectors: tag mismatch")
	}
	packet := make([]byte, len(ciphertext))
	lengthCipher, err := chacha20.NewUnauthenticatedCipher(key[32:], nonce)
	if err != nil {
		return nil, err
	}
	lengthCipher.XORKeyStream(packet[:4], ciphertext[:4])
	bodyCipher, err := chacha20.NewUnauthenticatedCipher(key[:32], nonce)
	if err != nil {
		return nil, err
	}
	bodyCipher.SetCounter(1)
	bodyCipher.XORKeyStream(packet[4:], ciphertext[4:])
	return packet, nil
}

// ReferenceChaChaBlock computes one ChaCha20 block with x/crypto/chacha20.
func ReferenceChaChaBlock(key, nonce []byte, counter uint32) ([]byte, error) {
	c, err := chacha20.NewUnauthenticatedCipher(key, nonce)
	if err != nil {
		return nil, err
	}
	if counter > 0 {
		c.SetCounter(counter)
	}
	out := make([]byte, 64)
	c.XORKeyStream(out, out)
	return out, nil
}

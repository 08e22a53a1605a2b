package transport

import (
	"crypto/rand"
	"io"
	"slices"
	"time"

	"github.com/rsftp/rsftp/kex"
)

// Default rekeying policy: whichever comes first.
const (
	DefaultRekeyBytes    = 1 << 30
	DefaultRekeyInterval = time.Hour
	DefaultKexTimeout    = 2 * time.Minute
)

// Config configures one end of a transport. The zero value is usable by a
// client that accepts any host key only if HostKeyCallback says so; a
// server needs at least one host key.
type Config struct {
	// Rand is the source of randomness; crypto/rand if nil.
	Rand io.Reader
	// Version is our identification string; DefaultVersion if empty.
	Version string
	// KexAlgorithms, Ciphers and MACs are in preference order; our
	// defaults if nil.
	KexAlgorithms []string
	Ciphers       []string
	MACs          []string
	// HostKeyAlgorithms is the client's preference of host key signature
	// algorithms; all we support if nil.
	HostKeyAlgorithms []string

	// RekeyBytes and RekeyInterval start a new key exchange after that
	// much traffic in either direction or that much time.
	RekeyBytes    uint64
	RekeyInterval time.Duration
	// KexTimeout bounds a key exchange once we have sent our KEXINIT; a
	// peer that stalls it past this is disconnected.
	KexTimeout time.Duration

	// HostKeyCallback is called by a client during the first key
	// exchange, after the server proved it holds the key. A non-nil error
	// aborts the connection with that error.
	HostKeyCallback func(key kex.PublicKey) error

	// HostKeys are the server's host keys.
	HostKeys []kex.Signer

	// Extensions are the in-band extensions of the layers above that we
	// offer in the first KEXINIT (see Extension; the session resumption
	// extension of docs/PROTOCOL.resume.md is one). Peers that do not
	// know one ignore the offer.
	Extensions []Extension

	// NoKexGuess, on a client, sends no guessed first kex packet (RFC
	// 4253 section 7): by default the init message of the first of
	// KexAlgorithms follows the first KEXINIT, which saves a round trip
	// when the server prefers that method and the first of
	// HostKeyAlgorithms; a server that prefers others ignores it.
	NoKexGuess bool

	// NoPingExtension, on a server, leaves ping@openssh.com out of
	// EXT_INFO, as servers before OpenSSH 9.2 do (pings are still
	// answered). For tests of clients facing such servers; a server that
	// offers resumption should advertise ping.
	NoPingExtension bool

	// Tap, if set, sees the payload of every packet in the clear: sent
	// (true) as it is sealed, received (false) once it is authenticated
	// and decrypted, with its sequence number. It is called with the
	// connection's lock held on the sending side, so it must be quick and
	// must not call back into the Conn, and it must not retain or modify
	// payload. For debugging and for recording fuzz corpora; it sees
	// passwords and everything else a session carries.
	Tap func(sent bool, seq uint32, payload []byte)
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Config) version() string {
	if c.Version != "" {
		return c.Version
	}
	return DefaultVersion
}

func (c *Config) kexAlgorithms() []string {
	if c.KexAlgorithms != nil {
		return c.KexAlgorithms
	}
	return kex.SupportedMethods()
}

func (c *Config) ciphers() []string {
	if c.Ciphers != nil {
		return c.Ciphers
	}
	return supportedCiphers
}

func (c *Config) macs() []string {
	if c.MACs != nil {
		return c.MACs
	}
	return supportedMACs
}

func (c *Config) rekeyBytes() uint64 {
	if c.RekeyBytes != 0 {
		return c.RekeyBytes
	}
	return DefaultRekeyBytes
}

func (c *Config) rekeyInterval() time.Duration {
	if c.RekeyInterval != 0 {
		return c.RekeyInterval
	}
	return DefaultRekeyInterval
}

func (c *Config) kexTimeout() time.Duration {
	if c.KexTimeout != 0 {
		return c.KexTimeout
	}
	return DefaultKexTimeout
}

// DefaultHostKeyAlgorithms are the host key signature algorithms a client
// offers, best first.
var DefaultHostKeyAlgorithms = []string{
	kex.KeyAlgoED25519,
	kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521,
	kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA256,
}

func (c *Config) hostKeyAlgorithms() []string {
	if c.HostKeyAlgorithms != nil {
		return c.HostKeyAlgorithms
	}
	return DefaultHostKeyAlgorithms
}

// SupportedCiphers lists the ciphers we implement, in our order of
// preference (the default for Config.Ciphers).
func SupportedCiphers() []string { return slices.Clone(supportedCiphers) }

// SupportedMACs lists the MACs we implement, in our order of preference
// (the default for Config.MACs; AEAD ciphers ignore MACs).
func SupportedMACs() []string { return slices.Clone(supportedMACs) }

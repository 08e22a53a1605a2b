package transport

import (
	"fmt"
	"io"
	"slices"

	"github.com/rsftp/rsftp/internal/wire"
)

// Names of pseudo-algorithms that signal extensions in KEXINIT.
const (
	kexStrictClient = "kex-strict-c-v00@openssh.com"
	kexStrictServer = "kex-strict-s-v00@openssh.com"
	extInfoClient   = "ext-info-c"
	extInfoServer   = "ext-info-s"
)

// maxNameList bounds the number of names in one KEXINIT list.
const maxNameList = 128

// kexInitMsg is SSH_MSG_KEXINIT (RFC 4253 section 7.1).
type kexInitMsg struct {
	Cookie                  [16]byte
	KexAlgos                []string
	HostKeyAlgos            []string
	CiphersClientServer     []string
	CiphersServerClient     []string
	MACsClientServer        []string
	MACsServerClient        []string
	CompressionClientServer []string
	CompressionServerClient []string
	LanguagesClientServer   []string
	LanguagesServerClient   []string
	FirstKexFollows         bool
	Reserved                uint32
}

func (m *kexInitMsg) marshal() []byte {
	b := make([]byte, 0, 1024)
	b = append(b, wire.MsgKexInit)
	b = append(b, m.Cookie[:]...)
	for _, l := range [][]string{m.KexAlgos, m.HostKeyAlgos, m.CiphersClientServer, m.CiphersServerClient,
		m.MACsClientServer, m.MACsServerClient, m.CompressionClientServer, m.CompressionServerClient,
		m.LanguagesClientServer, m.LanguagesServerClient} {
		b = wire.AppendNameList(b, l)
	}
	b = wire.AppendBool(b, m.FirstKexFollows)
	return wire.AppendUint32(b, m.Reserved)
}

func parseKexInit(p []byte) (*kexInitMsg, error) {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexInit {
		return nil, fmt.Errorf("transport: not a KEXINIT message")
	}
	m := new(kexInitMsg)
	copy(m.Cookie[:], r.Fixed(16))
	for _, l := range []*[]string{&m.KexAlgos, &m.HostKeyAlgos, &m.CiphersClientServer, &m.CiphersServerClient,
		&m.MACsClientServer, &m.MACsServerClient, &m.CompressionClientServer, &m.CompressionServerClient,
		&m.LanguagesClientServer, &m.LanguagesServerClient} {
		*l = r.NameList()
		if len(*l) > maxNameList {
			return nil, fmt.Errorf("transport: KEXINIT name-list of %d names exceeds %d", len(*l), maxNameList)
		}
	}
	m.FirstKexFollows = r.Bool()
	m.Reserved = r.Uint32()
	// RFC 4253 leaves no room for trailing bytes in KEXINIT.
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("transport: malformed KEXINIT: %w", err)
	}
	return m, nil
}

// newKexInit builds our KEXINIT from the configuration. first marks the
// initial key exchange, the only one that carries the strict-kex and
// ext-info markers and the names of Config.Extensions, in that order.
func newKexInit(cfg *Config, isClient, first bool, hostKeyAlgos []string) (*kexInitMsg, error) {
	m := &kexInitMsg{
		KexAlgos:                slices.Clone(cfg.kexAlgorithms()),
		HostKeyAlgos:            hostKeyAlgos,
		CiphersClientServer:     cfg.ciphers(),
		CiphersServerClient:     cfg.ciphers(),
		MACsClientServer:        cfg.macs(),
		MACsServerClient:        cfg.macs(),
		CompressionClientServer: []string{"none"},
		CompressionServerClient: []string{"none"},
	}
	if _, err := io.ReadFull(cfg.rand(), m.Cookie[:]); err != nil {
		return nil, fmt.Errorf("transport: reading random cookie: %w", err)
	}
	if first {
		if isClient {
			m.KexAlgos = append(m.KexAlgos, extInfoClient, kexStrictClient)
		} else {
			m.KexAlgos = append(m.KexAlgos, extInfoServer, kexStrictServer)
		}
		for _, e := range cfg.Extensions {
			ours, _ := e.names(isClient)
			m.KexAlgos = append(m.KexAlgos, ours)
		}
	}
	return m, nil
}

// Algorithms is the outcome of a KEXINIT negotiation.
type Algorithms struct {
	Kex      string
	HostKey  string
	CipherCS string // client to server
	CipherSC string
	MACCS    string // empty for AEAD ciphers
	MACSC    string
}

// chooseAlgorithm picks the first of the client's names that the server
// also lists (RFC 4253 section 7.1).
func chooseAlgorithm(what string, client, server []string) (string, error) {
	for _, c := range client {
		if slices.Contains(server, c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("transport: no common %s algorithm (we offer %v, peer offers %v)", what, client, server)
}

// isPseudoAlgo reports names that mark transport extensions, not kex
// methods.
func isPseudoAlgo(n string) bool {
	switch n {
	case kexStrictClient, kexStrictServer, extInfoClient, extInfoServer:
		return true
	}
	return false
}

// negotiate computes the algorithms from the client's and server's
// KEXINIT; the names of exts, like the transport's own pseudo-algorithms,
// are never chosen as the kex method.
func negotiate(c, s *kexInitMsg, exts []Extension) (*Algorithms, error) {
	var a Algorithms
	var err error
	pseudo := func(n string) bool { return isPseudoAlgo(n) || isExtensionName(exts, n) }
	ck := slices.DeleteFunc(slices.Clone(c.KexAlgos), pseudo)
	sk := slices.DeleteFunc(slices.Clone(s.KexAlgos), pseudo)
	if a.Kex, err = chooseAlgorithm("key exchange", ck, sk); err != nil {
		return nil, err
	}
	if a.HostKey, err = chooseAlgorithm("host key", c.HostKeyAlgos, s.HostKeyAlgos); err != nil {
		return nil, err
	}
	if a.CipherCS, err = chooseAlgorithm("client-to-server cipher", c.CiphersClientServer, s.CiphersClientServer); err != nil {
		return nil, err
	}
	if a.CipherSC, err = chooseAlgorithm("server-to-client cipher", c.CiphersServerClient, s.CiphersServerClient); err != nil {
		return nil, err
	}
	if _, _, aead, _ := cipherKeySizes(a.CipherCS); !aead {
		if a.MACCS, err = chooseAlgorithm("client-to-server MAC", c.MACsClientServer, s.MACsClientServer); err != nil {
			return nil, err
		}
	}
	if _, _, aead, _ := cipherKeySizes(a.CipherSC); !aead {
		if a.MACSC, err = chooseAlgorithm("server-to-client MAC", c.MACsServerClient, s.MACsServerClient); err != nil {
			return nil, err
		}
	}
	if _, err = chooseAlgorithm("client-to-server compression", c.CompressionClientServer, s.CompressionClientServer); err != nil {
		return nil, err
	}
	if _, err = chooseAlgorithm("server-to-client compression", c.CompressionServerClient, s.CompressionServerClient); err != nil {
		return nil, err
	}
	return &a, nil
}

// guessWrong reports whether a peer's guessed first kex packet must be
// ignored: its guess is right only when the first kex and host key
// algorithms of both sides agree (RFC 4253 section 7).
func guessWrong(c, s *kexInitMsg) bool {
	if len(c.KexAlgos) == 0 || len(s.KexAlgos) == 0 || len(c.HostKeyAlgos) == 0 || len(s.HostKeyAlgos) == 0 {
		return true
	}
	return c.KexAlgos[0] != s.KexAlgos[0] || c.HostKeyAlgos[0] != s.HostKeyAlgos[0]
}

package transport

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// The key exchange state machine. Our half (sending KEXINIT, then our kex
// message, then NEWKEYS) is guarded by the engine's locker because a
// rekey may be started by a writer; the peer's half is driven by the
// reader in dispatch. Every message it sends is sealed into the engine's
// output (writeKexLocked), for its driver to send.
//
//	idle --(we or peer start)--> KEXINIT sent ----> peer KEXINIT received
//	  client: send ECDH_INIT; on ECDH_REPLY: verify, send NEWKEYS (kexOut ends)
//	  server: on ECDH_INIT: send ECDH_REPLY, NEWKEYS (kexOut ends)
//	on peer NEWKEYS: switch the inbound cipher; round over when both sent.

func (e *engine) hostKeyAlgos() []string {
	if e.isClient {
		return e.cfg.hostKeyAlgorithms()
	}
	var algos []string
	for _, k := range e.cfg.HostKeys {
		for _, a := range k.Algorithms() {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func (e *engine) startKexLocked(first bool) error {
	if e.kexOut {
		return nil
	}
	m, err := newKexInit(&e.cfg, e.isClient, first, e.hostKeyAlgos())
	if err != nil {
		return err
	}
	// A client guesses its first kex packet (RFC 4253 section 7): the
	// init message of its preferred method follows KEXINIT at once. A
	// server whose preferred kex and host key algorithms are ours
	// answers it without waiting for another, a round trip less (issue
	// 17); any other ignores it, and the init message of the negotiated
	// method follows its KEXINIT as without a guess.
	var guess kex.ClientMethod
	if first && e.isClient && !e.cfg.NoKexGuess && len(m.KexAlgos) > 0 && len(m.HostKeyAlgos) > 0 {
		if g, err := kex.NewClient(m.KexAlgos[0], e.cfg.rand()); err == nil {
			guess = g
			m.FirstKexFollows = true
		}
	}
	p := m.marshal()
	e.kexOut = true
	e.ourKexInit = p
	if !first && e.onKexStart != nil {
		e.onKexStart(p)
	}
	if err := e.writeKexLocked(p); err != nil {
		return err
	}
	if guess != nil {
		e.guess, e.guessAlgo = guess, m.KexAlgos[0]
		return e.writeKexLocked(guess.InitMessage())
	}
	return nil
}

func (e *engine) handleKexInit(p []byte) error {
	if e.rk.peerKexInit != nil {
		return errors.New("transport: peer sent KEXINIT twice in one key exchange")
	}
	peer, err := parseKexInit(p)
	if err != nil {
		return err
	}
	e.rk.peerKexInit = bytes.Clone(p)

	e.lock()
	if !e.kexOut {
		if err := e.startKexLocked(false); err != nil {
			e.unlock()
			return err
		}
	}
	ours := e.ourKexInit
	e.unlock()
	mine, err := parseKexInit(ours)
	if err != nil {
		return err
	}

	first := !e.rk.firstDone
	cli, srv := mine, peer
	magics := &kex.Magics{ClientVersion: e.clientVersion, ServerVersion: e.serverVersion,
		ClientKexInit: ours, ServerKexInit: e.rk.peerKexInit}
	if !e.isClient {
		cli, srv = peer, mine
		magics.ClientKexInit, magics.ServerKexInit = e.rk.peerKexInit, ours
	}
	if first {
		if e.isClient {
			e.strict = slices.Contains(peer.KexAlgos, kexStrictServer)
		} else {
			e.strict = slices.Contains(peer.KexAlgos, kexStrictClient)
			e.peerExtInfoWanted = slices.Contains(peer.KexAlgos, extInfoClient)
		}
		e.negotiateExtensions(peer)
		if e.strict && e.in.total != 1 {
			return errors.New("transport: strict kex violation: KEXINIT was not the first packet")
		}
	}
	algs, err := negotiate(cli, srv, e.cfg.Extensions)
	if err != nil {
		e.failDisconnect(wire.DisconnectKeyExchangeFailed, err.Error())
		return err
	}
	if _, _, _, ok := cipherKeySizes(algs.CipherCS); !ok {
		return fmt.Errorf("transport: negotiated unknown cipher %q", algs.CipherCS)
	}
	e.rk.algs = algs
	e.rk.magics = magics
	e.rk.ignoreNext = peer.FirstKexFollows && guessWrong(cli, srv)
	if e.isClient {
		e.lock()
		guess, guessAlgo := e.guess, e.guessAlgo
		e.guess, e.guessAlgo = nil, ""
		e.unlock()
		if guess != nil && first && !guessWrong(cli, srv) && algs.Kex == guessAlgo {
			e.rk.client = guess // the server takes the guessed init
			return nil
		}
		m, err := kex.NewClient(algs.Kex, e.cfg.rand())
		if err != nil {
			return err
		}
		e.rk.client = m
		e.lock()
		err = e.writeKexLocked(m.InitMessage())
		e.unlock()
		return err
	}
	return nil
}

func (e *engine) handleKexMessage(p []byte) error {
	if e.rk.peerKexInit == nil {
		return fmt.Errorf("transport: key exchange message %d outside a key exchange", p[0])
	}
	if e.rk.ignoreNext {
		e.rk.ignoreNext = false
		return nil
	}
	if e.rk.sentNewKeys {
		return fmt.Errorf("transport: unexpected key exchange message %d after NEWKEYS", p[0])
	}
	var res *kex.Result
	var err error
	if e.isClient {
		if p[0] != wire.MsgKexECDHReply {
			return fmt.Errorf("transport: expected the kex reply (31), got message %d", p[0])
		}
		res, err = e.rk.client.HandleReply(p, e.rk.magics, e.rk.algs.HostKey)
		if err != nil {
			e.failDisconnect(wire.DisconnectKeyExchangeFailed, "key exchange failed")
			return fmt.Errorf("transport: key exchange: %w", err)
		}
		if e.rk.firstDone {
			if !bytes.Equal(res.HostKey.Marshal(), e.hostKey.Marshal()) {
				e.failDisconnect(wire.DisconnectHostKeyNotVerifiable, "host key changed during rekey")
				return errors.New("transport: server presented a different host key in a rekey")
			}
		} else {
			if e.cfg.HostKeyCallback == nil {
				return errors.New("transport: no HostKeyCallback configured; refusing to trust any host key")
			}
			if err := e.cfg.HostKeyCallback(res.HostKey); err != nil {
				e.failDisconnect(wire.DisconnectHostKeyNotVerifiable, "host key not accepted")
				return err
			}
			e.hostKey = res.HostKey
		}
		return e.sendNewKeys(res, nil)
	}
	if p[0] != wire.MsgKexECDHInit {
		return fmt.Errorf("transport: expected the kex init (30), got message %d", p[0])
	}
	signer := e.hostKeyFor(e.rk.algs.HostKey)
	if signer == nil {
		return fmt.Errorf("transport: no host key for %s", e.rk.algs.HostKey)
	}
	reply, res, err := kex.Server(e.rk.algs.Kex, e.cfg.rand(), p, e.rk.magics, signer, e.rk.algs.HostKey)
	if err != nil {
		e.failDisconnect(wire.DisconnectKeyExchangeFailed, "key exchange failed")
		return fmt.Errorf("transport: key exchange: %w", err)
	}
	if !e.rk.firstDone {
		e.hostKey = signer.PublicKey()
	}
	return e.sendNewKeys(res, reply)
}

func (e *engine) hostKeyFor(algo string) kex.Signer {
	for _, k := range e.cfg.HostKeys {
		if slices.Contains(k.Algorithms(), algo) {
			return k
		}
	}
	return nil
}

// sendNewKeys derives the new keys, sends reply (server) and NEWKEYS, and
// switches our outbound direction; queued messages then go out under the
// new keys.
func (e *engine) sendNewKeys(res *kex.Result, reply []byte) error {
	first := e.sessionID == nil
	if first {
		e.sessionID = bytes.Clone(res.H)
		// The only use of the first kex's secret after it: keys the
		// negotiated extensions derive (ExportKey).
		e.keepExporter(res)
	}
	outC, inC, err := e.deriveCiphers(res)
	if err != nil {
		return err
	}
	e.rk.newIn = inC
	e.rk.sentNewKeys = true

	e.lock()
	defer e.unlock()
	if reply != nil {
		if err := e.writeKexLocked(reply); err != nil {
			return err
		}
	}
	if err := e.writeKexLocked([]byte{wire.MsgNewKeys}); err != nil {
		return err
	}
	e.out.changeCipher(outC, e.strict)
	if first && !e.isClient && e.peerExtInfoWanted {
		exts := [][2]string{{"server-sig-algs", joinNames(serverSigAlgs())}}
		if !e.cfg.NoPingExtension {
			exts = append(exts, [2]string{"ping@openssh.com", "0"})
		}
		ext := marshalExtInfo(exts)
		e.sealLocked(ext)
	}
	e.kexOut = false
	e.ourKexInit = nil
	e.algs = e.rk.algs
	for _, q := range e.queued {
		e.sealLocked(q)
	}
	e.queued, e.queuedLen = nil, 0
	if e.onKexEnd != nil {
		e.onKexEnd()
	}
	return nil
}

func (e *engine) handleNewKeys(p []byte) error {
	if len(p) != 1 {
		return errors.New("transport: malformed NEWKEYS")
	}
	if !e.rk.sentNewKeys {
		e.failDisconnect(wire.DisconnectProtocolError, "NEWKEYS before the key exchange finished")
		return errors.New("transport: peer sent NEWKEYS before the key exchange finished")
	}
	e.in.changeCipher(e.rk.newIn, e.strict)
	e.rk = readKexState{firstDone: true}
	e.lock()
	e.kexCount++
	e.lastKex = time.Now()
	e.unlock()
	return nil
}

// deriveCiphers builds the outbound and inbound ciphers from a kex result
// (RFC 4253 section 7.2: letters A..F, A/C/E for client to server).
func (e *engine) deriveCiphers(res *kex.Result) (out, in packetCipher, err error) {
	a := e.rk.algs
	mk := func(cipherName, macName string, ivL, keyL, macL byte) (packetCipher, error) {
		keyLen, ivLen, aead, ok := cipherKeySizes(cipherName)
		if !ok {
			return nil, fmt.Errorf("transport: unknown cipher %q", cipherName)
		}
		var macKey []byte
		if !aead {
			n, ok := macKeySize(macName)
			if !ok {
				return nil, fmt.Errorf("transport: unknown MAC %q", macName)
			}
			macKey = kex.DeriveKey(res.Hash, res.K, res.H, macL, e.sessionID, n)
		}
		iv := kex.DeriveKey(res.Hash, res.K, res.H, ivL, e.sessionID, ivLen)
		key := kex.DeriveKey(res.Hash, res.K, res.H, keyL, e.sessionID, keyLen)
		return newPacketCipher(cipherName, macName, key, iv, macKey)
	}
	cs, err := mk(a.CipherCS, a.MACCS, 'A', 'C', 'E')
	if err != nil {
		return nil, nil, err
	}
	sc, err := mk(a.CipherSC, a.MACSC, 'B', 'D', 'F')
	if err != nil {
		return nil, nil, err
	}
	if e.isClient {
		return cs, sc, nil
	}
	return sc, cs, nil
}

// serverSigAlgs lists the signature algorithms we verify for user keys.
func serverSigAlgs() []string {
	return []string{kex.KeyAlgoED25519, kex.KeyAlgoSKED25519, kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521,
		kex.KeyAlgoSKECDSA256, kex.SigAlgoWebAuthnSKECDSA256, kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA256}
}

func joinNames(n []string) string {
	var b []byte
	for i, s := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	return string(b)
}

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
// message, then NEWKEYS) is guarded by c.mu because a rekey may be started
// by a writer; the peer's half is driven by the reader in dispatch.
//
//	idle --(we or peer start)--> KEXINIT sent ----> peer KEXINIT received
//	  client: send ECDH_INIT; on ECDH_REPLY: verify, send NEWKEYS (kexOut ends)
//	  server: on ECDH_INIT: send ECDH_REPLY, NEWKEYS (kexOut ends)
//	on peer NEWKEYS: switch the inbound cipher; round over when both sent.

func (c *Conn) startKex(first bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startKexLocked(first)
}

func (c *Conn) hostKeyAlgos() []string {
	if c.isClient {
		return c.cfg.hostKeyAlgorithms()
	}
	var algos []string
	for _, k := range c.cfg.HostKeys {
		for _, a := range k.Algorithms() {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func (c *Conn) startKexLocked(first bool) error {
	if c.kexOut {
		return nil
	}
	m, err := newKexInit(&c.cfg, c.isClient, first, c.hostKeyAlgos())
	if err != nil {
		return err
	}
	p := m.marshal()
	c.kexOut = true
	c.ourKexInit = p
	if !first {
		d := c.cfg.kexTimeout()
		c.kexTimer = time.AfterFunc(d, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.kexOut && bytes.Equal(c.ourKexInit, p) {
				c.failLocked(fmt.Errorf("transport: key exchange did not complete within %v", d))
			}
		})
	}
	return c.writeKexLocked(p)
}

func (c *Conn) handleKexInit(p []byte) error {
	if c.rk.peerKexInit != nil {
		return errors.New("transport: peer sent KEXINIT twice in one key exchange")
	}
	peer, err := parseKexInit(p)
	if err != nil {
		return err
	}
	c.rk.peerKexInit = bytes.Clone(p)

	c.mu.Lock()
	if !c.kexOut {
		if err := c.startKexLocked(false); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	ours := c.ourKexInit
	c.mu.Unlock()
	mine, err := parseKexInit(ours)
	if err != nil {
		return err
	}

	first := !c.rk.firstDone
	cli, srv := mine, peer
	magics := &kex.Magics{ClientVersion: c.clientVersion, ServerVersion: c.serverVersion,
		ClientKexInit: ours, ServerKexInit: c.rk.peerKexInit}
	if !c.isClient {
		cli, srv = peer, mine
		magics.ClientKexInit, magics.ServerKexInit = c.rk.peerKexInit, ours
	}
	if first {
		if c.isClient {
			c.strict = slices.Contains(peer.KexAlgos, kexStrictServer)
		} else {
			c.strict = slices.Contains(peer.KexAlgos, kexStrictClient)
			c.peerExtInfoWanted = slices.Contains(peer.KexAlgos, extInfoClient)
		}
		c.negotiateExtensions(peer)
		if c.strict && c.in.total != 1 {
			return errors.New("transport: strict kex violation: KEXINIT was not the first packet")
		}
	}
	algs, err := negotiate(cli, srv, c.cfg.Extensions)
	if err != nil {
		c.failDisconnect(wire.DisconnectKeyExchangeFailed, err.Error())
		return err
	}
	if _, _, _, ok := cipherKeySizes(algs.CipherCS); !ok {
		return fmt.Errorf("transport: negotiated unknown cipher %q", algs.CipherCS)
	}
	c.rk.algs = algs
	c.rk.magics = magics
	c.rk.ignoreNext = peer.FirstKexFollows && guessWrong(cli, srv)
	if c.isClient {
		m, err := kex.NewClient(algs.Kex, c.cfg.rand())
		if err != nil {
			return err
		}
		c.rk.client = m
		c.mu.Lock()
		err = c.writeKexLocked(m.InitMessage())
		c.mu.Unlock()
		return err
	}
	return nil
}

func (c *Conn) handleKexMessage(p []byte) error {
	if c.rk.peerKexInit == nil {
		return fmt.Errorf("transport: key exchange message %d outside a key exchange", p[0])
	}
	if c.rk.ignoreNext {
		c.rk.ignoreNext = false
		return nil
	}
	if c.rk.sentNewKeys {
		return fmt.Errorf("transport: unexpected key exchange message %d after NEWKEYS", p[0])
	}
	var res *kex.Result
	var err error
	if c.isClient {
		if p[0] != wire.MsgKexECDHReply {
			return fmt.Errorf("transport: expected the kex reply (31), got message %d", p[0])
		}
		res, err = c.rk.client.HandleReply(p, c.rk.magics, c.rk.algs.HostKey)
		if err != nil {
			c.failDisconnect(wire.DisconnectKeyExchangeFailed, "key exchange failed")
			return fmt.Errorf("transport: key exchange: %w", err)
		}
		if c.rk.firstDone {
			if !bytes.Equal(res.HostKey.Marshal(), c.hostKey.Marshal()) {
				c.failDisconnect(wire.DisconnectHostKeyNotVerifiable, "host key changed during rekey")
				return errors.New("transport: server presented a different host key in a rekey")
			}
		} else {
			if c.cfg.HostKeyCallback == nil {
				return errors.New("transport: no HostKeyCallback configured; refusing to trust any host key")
			}
			if err := c.cfg.HostKeyCallback(res.HostKey); err != nil {
				c.failDisconnect(wire.DisconnectHostKeyNotVerifiable, "host key not accepted")
				return err
			}
			c.hostKey = res.HostKey
		}
		return c.sendNewKeys(res, nil)
	}
	if p[0] != wire.MsgKexECDHInit {
		return fmt.Errorf("transport: expected the kex init (30), got message %d", p[0])
	}
	signer := c.hostKeyFor(c.rk.algs.HostKey)
	if signer == nil {
		return fmt.Errorf("transport: no host key for %s", c.rk.algs.HostKey)
	}
	reply, res, err := kex.Server(c.rk.algs.Kex, c.cfg.rand(), p, c.rk.magics, signer, c.rk.algs.HostKey)
	if err != nil {
		c.failDisconnect(wire.DisconnectKeyExchangeFailed, "key exchange failed")
		return fmt.Errorf("transport: key exchange: %w", err)
	}
	if !c.rk.firstDone {
		c.hostKey = signer.PublicKey()
	}
	return c.sendNewKeys(res, reply)
}

func (c *Conn) hostKeyFor(algo string) kex.Signer {
	for _, k := range c.cfg.HostKeys {
		if slices.Contains(k.Algorithms(), algo) {
			return k
		}
	}
	return nil
}

// sendNewKeys derives the new keys, sends reply (server) and NEWKEYS, and
// switches our outbound direction; queued messages then go out under the
// new keys.
func (c *Conn) sendNewKeys(res *kex.Result, reply []byte) error {
	first := c.sessionID == nil
	if first {
		c.sessionID = bytes.Clone(res.H)
		// The only use of the first kex's secret after it: keys the
		// negotiated extensions derive (ExportKey).
		c.keepExporter(res)
	}
	outC, inC, err := c.deriveCiphers(res)
	if err != nil {
		return err
	}
	c.rk.newIn = inC
	c.rk.sentNewKeys = true

	c.mu.Lock()
	defer c.mu.Unlock()
	if reply != nil {
		if err := c.writeKexLocked(reply); err != nil {
			return err
		}
	}
	if err := c.writeKexLocked([]byte{wire.MsgNewKeys}); err != nil {
		return err
	}
	c.out.changeCipher(outC, c.strict)
	if first && !c.isClient && c.peerExtInfoWanted {
		exts := [][2]string{{"server-sig-algs", joinNames(serverSigAlgs())}}
		if !c.cfg.NoPingExtension {
			exts = append(exts, [2]string{"ping@openssh.com", "0"})
		}
		ext := marshalExtInfo(exts)
		c.sealLocked(ext)
	}
	c.kexOut = false
	c.ourKexInit = nil
	if c.kexTimer != nil {
		c.kexTimer.Stop()
		c.kexTimer = nil
	}
	c.algs = c.rk.algs
	for _, q := range c.queued {
		c.sealLocked(q)
	}
	c.queued, c.queuedLen = nil, 0
	c.cond.Broadcast()
	return c.flushLocked()
}

func (c *Conn) handleNewKeys(p []byte) error {
	if len(p) != 1 {
		return errors.New("transport: malformed NEWKEYS")
	}
	if !c.rk.sentNewKeys {
		return errors.New("transport: peer sent NEWKEYS before the key exchange finished")
	}
	c.in.changeCipher(c.rk.newIn, c.strict)
	c.rk = readKexState{firstDone: true}
	c.mu.Lock()
	c.kexCount++
	c.lastKex = time.Now()
	c.mu.Unlock()
	return nil
}

// deriveCiphers builds the outbound and inbound ciphers from a kex result
// (RFC 4253 section 7.2: letters A..F, A/C/E for client to server).
func (c *Conn) deriveCiphers(res *kex.Result) (out, in packetCipher, err error) {
	a := c.rk.algs
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
			macKey = kex.DeriveKey(res.Hash, res.K, res.H, macL, c.sessionID, n)
		}
		iv := kex.DeriveKey(res.Hash, res.K, res.H, ivL, c.sessionID, ivLen)
		key := kex.DeriveKey(res.Hash, res.K, res.H, keyL, c.sessionID, keyLen)
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
	if c.isClient {
		return cs, sc, nil
	}
	return sc, cs, nil
}

// serverSigAlgs lists the signature algorithms we verify for user keys.
func serverSigAlgs() []string {
	return []string{kex.KeyAlgoED25519, kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521,
		kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA256}
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

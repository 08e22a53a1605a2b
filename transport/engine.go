package transport

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// engine is the SSH transport without I/O, in the manner of OpenSSH's
// ssh_api.h: bytes received go into its inbound decoder, messages above
// the transport come out of readOne, and everything it sends (the version
// line, the key exchange, replies such as PONG and UNIMPLEMENTED, a
// DISCONNECT on failure, sealed application messages) is appended to
// wbuf. It never blocks, reads, writes or starts a goroutine; Conn drives
// one over a net.Conn, Engine exports one for callers (tests, fuzzers)
// that move the bytes themselves.
//
// The read half (in, rk, readErr) belongs to whoever drives input. The
// write half, the key exchange state shared by both halves and the
// results of the first key exchange are guarded by locker when it is set
// (Conn sets its mu): the read half takes it around what it shares, and
// callers of the *Locked methods hold it.
type engine struct {
	cfg      Config
	isClient bool

	clientVersion, serverVersion []byte
	versionDone                  bool // the peer's version line was read
	preambleLines                int  // lines a server sent before its version

	// Read half.
	in        *inbound
	pending   []byte // input beyond the free space of in (Engine.Input)
	rk        readKexState
	readErr   error
	decodeErr bool // readErr is a packet that failed to decode
	// replied says readOne handled a message that may have sealed
	// something for the peer (a transport message, a rekey it started):
	// the driver then sends the output without waiting. The driver
	// clears it; messages for the layers above never set it, so that
	// reading them takes no lock.
	replied bool

	locker sync.Locker

	// Write half, guarded by locker.
	out  outbound
	wbuf []byte // sealed bytes waiting to be sent
	werr error  // the engine's failure: nothing is sealed any more
	// flushNow says a transport message was sealed (key exchange,
	// replies, DISCONNECT) that must leave without waiting for more.
	flushNow bool
	// disconnectSent says a DISCONNECT for a transport failure was sealed.
	disconnectSent bool
	// kexOut is true from our KEXINIT until our NEWKEYS: only key exchange
	// messages may be sealed then.
	kexOut     bool
	ourKexInit []byte
	// guess is the client's guessed first kex method, whose init
	// message followed the first KEXINIT, until the server's KEXINIT
	// says whether it was right (guessAlgo is its name).
	guess     kex.ClientMethod
	guessAlgo string
	queued    [][]byte
	queuedLen int
	// onKexStart and onKexEnd, if set, are called (locker held) when we
	// send the KEXINIT of a key exchange after the first, and when we send
	// NEWKEYS: Conn arms and stops its kex timeout, and wakes writers.
	onKexStart func(kexInit []byte)
	onKexEnd   func()

	// Set by the first key exchange, then constant.
	sessionID         []byte
	strict            bool
	hostKey           kex.PublicKey
	peerExtInfoWanted bool // client sent ext-info-c: a server sends EXT_INFO

	// Guarded by locker.
	negotiated    []Extension // both named them in the first KEXINITs; set once, at the first KEXINIT
	exporter      *exporter   // the first kex's secret, if an extension was negotiated; set once
	algs          *Algorithms
	kexCount      int
	lastKex       time.Time
	extInfo       map[string]string
	authenticated bool
}

// readKexState is the part of key exchange driven by received packets.
type readKexState struct {
	peerKexInit []byte // payload copy of the peer's KEXINIT in this round
	ignoreNext  bool   // the peer guessed its first kex packet wrongly
	client      kex.ClientMethod
	magics      *kex.Magics
	algs        *Algorithms
	newIn       packetCipher
	sentNewKeys bool
	firstDone   bool // the first kex completed in both directions
}

func (e *engine) lock() {
	if e.locker != nil {
		e.locker.Lock()
	}
}

func (e *engine) unlock() {
	if e.locker != nil {
		e.locker.Unlock()
	}
}

// init checks the configuration and sets up the decoder and sealer.
func (e *engine) init(cfg *Config, isClient bool) error {
	if !isClient && len(cfg.HostKeys) == 0 {
		return errors.New("transport: server config has no host keys")
	}
	e.cfg = *cfg
	e.cfg.Extensions = slices.Clone(cfg.Extensions)
	e.isClient = isClient
	if err := checkVersion(e.cfg.version()); err != nil {
		return err
	}
	if err := checkExtensions(e.cfg.Extensions); err != nil {
		return err
	}
	e.in = newInbound()
	e.out.cipher = newNoneCipher()
	return nil
}

// start puts our version line and, right behind it, our first KEXINIT
// into the output. KEXINIT goes out before the peer's version arrives
// (RFC 4253 section 4.2 allows it; OpenSSH does the same): each side then
// has the other's KEXINIT one flight earlier, which saves a round trip on
// every connection (and every resumption).
func (e *engine) start() error {
	ours := []byte(e.cfg.version())
	if e.isClient {
		e.clientVersion = ours
	} else {
		e.serverVersion = ours
	}
	e.lock()
	defer e.unlock()
	e.wbuf = append(append(e.wbuf, ours...), '\r', '\n')
	return e.startKexLocked(true)
}

// readVersion consumes the peer's lines from the input up to and
// including its version line (RFC 4253 section 4.2; the bounds of
// readVersion). It returns errNeedMore until the version line is whole.
func (e *engine) readVersion() error {
	in := e.in
	for {
		avail := in.slab.buf[in.start:in.end]
		if len(avail) > maxVersionLine+1 {
			avail = avail[:maxVersionLine+1]
		}
		i := bytes.IndexByte(avail, '\n')
		if i < 0 {
			if len(avail) > maxVersionLine {
				return fmt.Errorf("transport: version line longer than %d bytes", maxVersionLine)
			}
			return errNeedMore
		}
		line := bytes.TrimSuffix(avail[:i], []byte("\r"))
		in.start += i + 1
		v, err := checkPeerLine(line, e.isClient)
		if err != nil {
			return err
		}
		if v != nil {
			v = bytes.Clone(v)
			e.lock()
			if e.isClient {
				e.serverVersion = v
			} else {
				e.clientVersion = v
			}
			e.unlock()
			e.versionDone = true
			return nil
		}
		if e.preambleLines++; e.preambleLines > maxPreambleLines {
			return errTooManyPreambleLines
		}
	}
}

// maxPacketsPerKey bounds the packets received under one key: past it
// the sequence numbers, which go on across NEWKEYS without strict kex,
// would repeat. Our policy renews keys at half of it; only a re-exchange
// the peer stalls while sending can come near it.
const maxPacketsPerKey = 1 << 32

// readOne decodes and handles one packet: it returns a message above the
// transport, nil and no error for a transport message it handled, or
// errNeedMore when the input holds no whole packet. Any other error is
// fatal; the caller records it in readErr.
func (e *engine) readOne() ([]byte, error) {
	if e.readErr != nil {
		return nil, e.readErr
	}
	if !e.versionDone {
		if err := e.readVersion(); err != nil {
			return nil, err
		}
	}
	p, err := e.readRaw()
	if err != nil {
		return nil, err
	}
	p, err = e.dispatch(p)
	if p == nil {
		e.replied = true
	}
	// Our rekey policy counts received bytes too; writers check the sent
	// ones. The counters are those of the keys the packets arrived
	// under, the peer's NEWKEYS resets them: what arrives between the
	// peer's KEXINIT and its NEWKEYS (dispatch) counts toward the old
	// keys, which that exchange retires, so there is nothing to start.
	// But the old keys must not outlive their sequence numbers: a peer
	// that sends 2^32 packets under one key (by stalling its re-exchange
	// while sending) would repeat them, and with them the nonces of
	// chacha20-poly1305.
	if err == nil && e.rk.peerKexInit != nil && e.in.packets >= maxPacketsPerKey {
		e.failDisconnect(wire.DisconnectProtocolError, "too many packets under one key")
		return nil, fmt.Errorf("transport: peer sent %d packets under one key during a key exchange", e.in.packets)
	}
	if err == nil && e.rk.firstDone && e.rk.peerKexInit == nil &&
		(e.in.bytes >= e.cfg.rekeyBytes() || e.in.packets >= 1<<31) {
		e.replied = true
		e.lock()
		if !e.kexOut && e.werr == nil {
			err = e.startKexLocked(false)
		}
		e.unlock()
	}
	return p, err
}

func (e *engine) readRaw() ([]byte, error) {
	for {
		p, err := e.in.next()
		if err == nil {
			if len(p) == 0 {
				e.failDisconnect(wire.DisconnectProtocolError, "empty packet")
				return nil, errors.New("transport: peer sent a packet with an empty payload")
			}
			if e.cfg.Tap != nil {
				e.cfg.Tap(false, e.in.seq-1, p)
			}
			return p, nil
		}
		if err != errNeedMore {
			e.decodeErr = true
			reason := uint32(wire.DisconnectProtocolError)
			if errors.Is(err, errMAC) {
				reason = wire.DisconnectMACError
			}
			e.failDisconnect(reason, "packet error")
			return nil, err
		}
		if !e.movePending() {
			return nil, errNeedMore
		}
	}
}

// movePending moves input that did not fit into the decoder's buffer,
// and reports whether it moved any.
func (e *engine) movePending() bool {
	moved := false
	for len(e.pending) > 0 {
		sp := e.in.space()
		if len(sp) == 0 {
			break
		}
		n := copy(sp, e.pending)
		e.in.commit(n)
		e.pending = e.pending[n:]
		moved = true
	}
	if len(e.pending) == 0 {
		e.pending = nil
	}
	return moved
}

// dispatch handles transport messages and returns others.
func (e *engine) dispatch(p []byte) ([]byte, error) {
	msg := p[0]
	if !e.rk.firstDone {
		// In the first key exchange only key exchange messages may
		// arrive between the peer's KEXINIT and its NEWKEYS; under
		// strict kex, not even IGNORE or DEBUG, nor anything before its
		// KEXINIT (the Terrapin defence).
		inKex := e.rk.peerKexInit != nil
		isKex := msg == wire.MsgKexInit || msg == wire.MsgNewKeys || (msg >= 30 && msg <= 49)
		if !isKex {
			switch {
			case e.strict:
				e.queueDisconnect(wire.DisconnectProtocolError, "strict kex: unexpected message during key exchange")
				return nil, fmt.Errorf("transport: strict kex violation: message %d during the first key exchange", msg)
			case msg == wire.MsgDisconnect, msg == wire.MsgIgnore, msg == wire.MsgDebug, msg == wire.MsgUnimplemented:
				// allowed in a non-strict kex
			case inKex:
				e.failDisconnect(wire.DisconnectProtocolError, "unexpected message during key exchange")
				return nil, fmt.Errorf("transport: peer sent message %d during key exchange", msg)
			}
		}
	}
	// In a re-exchange, the peer's messages between its KEXINIT and its
	// NEWKEYS are handled as at any other time. RFC 4253 section 7.1
	// allows only key exchange messages there, but OpenSSH accepts the
	// others after the first key exchange (strict kex covers only the
	// first) and passes them up, and peers rely on it: asyncssh keeps
	// sending channel data after its KEXINIT. They arrive under the old
	// keys, in order, and count toward them (readOne). The messages of
	// negotiated extensions (192-255, the resume extension's among them)
	// follow the same rule. What we send meanwhile still waits for our
	// NEWKEYS (kexOut).
	switch {
	case msg == wire.MsgDisconnect:
		d, err := parseDisconnect(p)
		if err != nil {
			return nil, err
		}
		return nil, d
	case msg == wire.MsgIgnore:
		return nil, nil
	case msg == wire.MsgDebug:
		if _, _, err := parseDebug(p); err != nil {
			return nil, err
		}
		return nil, nil
	case msg == wire.MsgUnimplemented:
		if _, err := parseUnimplemented(p); err != nil {
			return nil, err
		}
		return nil, nil
	case msg == wire.MsgExtInfo:
		return nil, e.handleExtInfo(p)
	case msg == wire.MsgKexInit:
		return nil, e.handleKexInit(p)
	case msg == wire.MsgNewKeys:
		return nil, e.handleNewKeys(p)
	case msg >= 30 && msg <= 49:
		return nil, e.handleKexMessage(p)
	case msg == wire.MsgPing:
		data, err := parsePing(p)
		if err != nil {
			return nil, err
		}
		e.lock()
		ok := e.authenticated
		e.unlock()
		if ok {
			return nil, e.reply(marshalPing(wire.MsgPong, data))
		}
		return nil, nil
	case msg == wire.MsgPong:
		if _, err := parsePing(p); err != nil {
			return nil, err
		}
		return nil, nil
	case msg == wire.MsgServiceRequest || msg == wire.MsgServiceAccept,
		msg >= 50 && msg <= 127:
		return p, nil
	case msg >= firstLocalMsg:
		// Messages of the extensions negotiated in the first KEXINITs.
		if e.extensionOwns(msg) {
			return p, nil
		}
	}
	// Unknown message: RFC 4253 section 11.4.
	return nil, e.reply(marshalUnimplemented(e.in.seq - 1))
}

func (e *engine) handleExtInfo(p []byte) error {
	exts, err := parseExtInfo(p)
	if err != nil || !e.isClient {
		// What a client announces changes nothing in a server.
		return err
	}
	e.lock()
	e.extInfo = exts
	e.unlock()
	return nil
}

// reply seals a message the transport sends on the peer's behalf (PONG,
// UNIMPLEMENTED), or queues it while our key exchange is in flight.
func (e *engine) reply(p []byte) error {
	e.lock()
	defer e.unlock()
	if e.werr != nil {
		return e.werr
	}
	if e.kexOut {
		return e.queueLocked(p)
	}
	e.sealLocked(p)
	e.flushNow = true
	return nil
}

// queueLocked keeps a copy of p until our NEWKEYS, within
// maxQueuedDuringKex.
func (e *engine) queueLocked(p []byte) error {
	if e.queuedLen+len(p)+queuedOverhead > maxQueuedDuringKex {
		return errors.New("transport: too many messages queued while the key exchange is stalled")
	}
	e.queued = append(e.queued, append([]byte(nil), p...))
	e.queuedLen += len(p) + queuedOverhead
	return nil
}

// checkPayload checks a payload given to be sent.
func checkPayload(p []byte) error {
	if len(p) == 0 {
		return errors.New("transport: empty payload")
	}
	if len(p) > maxPayload {
		return fmt.Errorf("transport: payload of %d bytes exceeds %d", len(p), maxPayload)
	}
	return nil
}

// sealLocked appends p, sealed under the current keys and sequence
// number, to the write buffer.
func (e *engine) sealLocked(p []byte) {
	if e.cfg.Tap != nil {
		e.cfg.Tap(true, e.out.seq, p)
	}
	e.wbuf = e.out.seal(e.wbuf, p)
}

// sealFramedLocked is sealLocked for payload p at frame[wire.FrameHeadroom:].
func (e *engine) sealFramedLocked(p, frame []byte) {
	if e.cfg.Tap != nil {
		e.cfg.Tap(true, e.out.seq, p)
	}
	e.wbuf = e.out.sealFramed(e.wbuf, frame)
}

// writeKexLocked seals a key exchange message, bypassing kexOut.
func (e *engine) writeKexLocked(p []byte) error {
	if e.werr != nil {
		return e.werr
	}
	e.sealLocked(p)
	e.flushNow = true
	return nil
}

// maybeRekeyLocked starts a key exchange when our policy says so.
func (e *engine) maybeRekeyLocked() error {
	if e.kexOut || e.werr != nil || e.kexCount == 0 {
		return nil
	}
	if e.out.bytes >= e.cfg.rekeyBytes() || e.out.packets >= 1<<31 ||
		time.Since(e.lastKex) >= e.cfg.rekeyInterval() {
		return e.startKexLocked(false)
	}
	return nil
}

// failDisconnect is queueDisconnect for a failure of the transport itself
// (a bad packet, a key exchange that fails or breaks the rules, a host key
// that changed in a rekey): it says nothing once a negotiated extension
// with Extension.QuietFailures is in effect (the resume extension of
// docs/PROTOCOL.resume.md). There a DISCONNECT ends the session, while a
// failure of this connection must only detach it, as a reset or a timeout
// does; DISCONNECT is for ending the session on purpose (Disconnect,
// Close). Before the first NEWKEYS no extension is in effect yet and the
// peer is told.
func (e *engine) failDisconnect(reason uint32, msg string) {
	if e.quietFailures() {
		return
	}
	e.queueDisconnect(reason, msg)
}

// queueDisconnect seals a DISCONNECT telling the peer why we are leaving,
// behind what was sealed before, unless the engine has failed already.
func (e *engine) queueDisconnect(reason uint32, msg string) {
	e.lock()
	defer e.unlock()
	if e.werr != nil {
		return
	}
	e.sealLocked(marshalDisconnect(reason, msg))
	e.flushNow = true
	e.disconnectSent = true
}

// SessionID is the exchange hash of the first key exchange.
func (e *engine) SessionID() []byte { return e.sessionID }

// ClientVersion is the client's identification string, without CR LF.
func (e *engine) ClientVersion() []byte { return e.clientVersion }

// ServerVersion is the server's identification string.
func (e *engine) ServerVersion() []byte { return e.serverVersion }

// HostKey is the server's host key, as verified in the first key exchange.
func (e *engine) HostKey() kex.PublicKey { return e.hostKey }

// StrictKex reports whether both sides agreed to OpenSSH's strict kex.
func (e *engine) StrictKex() bool { return e.strict }

// Algorithms returns the algorithms of the current keys.
func (e *engine) Algorithms() Algorithms {
	e.lock()
	defer e.unlock()
	if e.algs == nil {
		return Algorithms{}
	}
	return *e.algs
}

// KexCount is the number of completed key exchanges, the first included.
func (e *engine) KexCount() int {
	e.lock()
	defer e.unlock()
	return e.kexCount
}

// ExtInfo returns the value of an extension the peer announced in
// EXT_INFO.
func (e *engine) ExtInfo(name string) (string, bool) {
	e.lock()
	defer e.unlock()
	v, ok := e.extInfo[name]
	return v, ok
}

// ServerSigAlgs is the server's server-sig-algs extension, nil if it sent
// none.
func (e *engine) ServerSigAlgs() []string {
	v, ok := e.ExtInfo("server-sig-algs")
	if !ok {
		return nil
	}
	return splitNames(v)
}

// SetAuthenticated tells the transport that user authentication
// succeeded; from then on it answers ping@openssh.com.
func (e *engine) SetAuthenticated() {
	e.lock()
	e.authenticated = true
	e.unlock()
}

// Engine is the SSH transport with no I/O and no goroutine: the caller
// moves the bytes. It does what Conn does over a net.Conn (Conn is a loop
// over the same machinery): the version exchange, the binary packet
// protocol, key exchanges with strict kex and our rekey policy, replies
// to the peer's transport messages, and the extensions of
// Config.Extensions.
//
// Input appends bytes received from the peer; Next returns the next
// message above the transport, handling transport messages inside; Write
// seals a message; Output and Consume hand out the bytes to send, which
// include everything Next queued in reply (KEXINIT, key exchange replies,
// NEWKEYS, PONG, UNIMPLEMENTED, a DISCONNECT on failure). Output should be
// sent after each call to Next or Write. Engine enforces no timeouts
// (Config.KexTimeout is Conn's) and no bound on Output: its driver does.
//
// An Engine is not safe for concurrent use.
type Engine struct {
	engine
}

// NewClientEngine returns a client engine whose Output holds its version
// line and first KEXINIT.
func NewClientEngine(cfg *Config) (*Engine, error) { return newEngine(cfg, true) }

// NewServerEngine returns a server engine whose Output holds its version
// line and first KEXINIT.
func NewServerEngine(cfg *Config) (*Engine, error) { return newEngine(cfg, false) }

func newEngine(cfg *Config, isClient bool) (*Engine, error) {
	e := new(Engine)
	if err := e.init(cfg, isClient); err != nil {
		return nil, err
	}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

// Input appends bytes received from the peer. p is not retained.
func (e *Engine) Input(p []byte) {
	if e.readErr != nil || len(p) == 0 {
		return
	}
	if len(e.pending) == 0 {
		sp := e.in.space()
		n := copy(sp, p)
		e.in.commit(n)
		p = p[n:]
	}
	e.pending = append(e.pending, p...)
}

// Next returns the next message above the transport layer (service
// requests, authentication, channels, negotiated extensions), or nil and
// no error when the input holds no further whole message. The slice is
// valid until the next call. An error is fatal: Next and Write return it
// from then on, and Output may still hold a DISCONNECT for the peer.
func (e *Engine) Next() ([]byte, error) {
	for {
		p, err := e.readOne()
		switch {
		case err == errNeedMore:
			return nil, nil
		case err != nil:
			if e.readErr == nil {
				e.readErr = err
				e.in.close()
				e.pending = nil
			}
			if e.werr == nil {
				e.werr = err
			}
			return nil, err
		case p != nil:
			return p, nil
		}
	}
}

// Write seals one message for the peer, or queues it while a key exchange
// of ours is in flight (it is sealed behind our NEWKEYS; past
// maxQueuedDuringKex queued bytes the engine fails, as Conn does). It
// starts a key exchange when our rekey policy says so. p is not retained.
func (e *Engine) Write(p []byte) error {
	if err := checkPayload(p); err != nil {
		return err
	}
	if e.werr != nil {
		return e.werr
	}
	if e.kexOut {
		if err := e.queueLocked(p); err != nil {
			e.werr = err
			return err
		}
		return nil
	}
	e.sealLocked(p)
	if err := e.maybeRekeyLocked(); err != nil {
		e.werr = err
		return err
	}
	return nil
}

// Output returns the bytes waiting to be sent to the peer. They stay
// until consumed.
func (e *Engine) Output() []byte { return e.wbuf }

// Consume drops the first n bytes of Output, once sent.
func (e *Engine) Consume(n int) {
	m := copy(e.wbuf, e.wbuf[n:])
	e.wbuf = e.wbuf[:m]
	e.flushNow = false
}

// HandshakeComplete reports whether the first key exchange has completed
// in both directions: before, Next returns no message.
func (e *Engine) HandshakeComplete() bool { return e.rk.firstDone }

// Rekey starts a key exchange now unless one is already in flight.
func (e *Engine) Rekey() error {
	if e.werr != nil {
		return e.werr
	}
	return e.startKexLocked(false)
}

// Seq reports the sequence numbers and counters.
func (e *Engine) Seq() SeqState {
	return SeqState{In: e.in.seq, Out: e.out.seq, InTotal: e.in.total, OutTotal: e.out.total,
		InBytes: e.in.bytes, OutBytes: e.out.bytes}
}

// Disconnect seals a DISCONNECT with reason and message; Write fails from
// then on.
func (e *Engine) Disconnect(reason uint32, msg string) {
	if e.werr != nil {
		return
	}
	e.sealLocked(marshalDisconnect(reason, msg))
	e.werr = &DisconnectError{Reason: reason, Message: msg}
}

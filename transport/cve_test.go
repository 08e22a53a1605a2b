package transport

// Regression tests for published attacks on SSH transport layers, one
// test function per CVE (or attack class where none was assigned), so
// that `grep -rn CVE_ transport/` finds each. Every test drives our Conn
// (or its packet decoder) against a peer that misbehaves on purpose:
// either a second Conn behind a corrupting net.Conn, or rawPeer, a peer
// built by hand from this package's own parts (inbound, outbound,
// kexinit, kex.Server/kex.NewClient) that can inject, forge and
// mis-sequence packets at any point of the handshake.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// rawVersion is the identification string of rawPeer.
const rawVersion = "SSH-2.0-rawpeer"

// rawOpts says how rawPeer misbehaves.
type rawOpts struct {
	// cipher and mac are offered alone; chacha20-poly1305 if empty.
	cipher, mac string
	// noStrict leaves the strict-kex marker out of our KEXINIT.
	noStrict bool
	// noSeqReset keeps our outbound sequence number counting across
	// NEWKEYS even though strict kex was agreed.
	noSeqReset bool
	// Hooks at points of the first key exchange, in order.
	beforeKexInit, afterKexInit, beforeNewKeys func(rp *rawPeer) error
}

// rawPeer is one end of an SSH connection driven by hand.
type rawPeer struct {
	t        testing.TB
	nc       net.Conn
	br       *bufio.Reader
	in       *inbound
	out      outbound
	isClient bool
	strict   bool
}

func newRawPeer(t testing.TB, nc net.Conn, isClient bool) *rawPeer {
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	rp := &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc), in: newInbound(), isClient: isClient}
	rp.out.cipher = newNoneCipher()
	return rp
}

func (rp *rawPeer) write(b []byte) error {
	_, err := rp.nc.Write(b)
	return err
}

// send seals payload under the current outbound keys and sequence number.
func (rp *rawPeer) send(payload []byte) error { return rp.write(rp.out.seal(nil, payload)) }

// sealFramed seals a hand-made plaintext packet (packet_length,
// padding_length, payload, padding: any values at all) under the current
// outbound keys and sequence number, and returns its wire form.
func (rp *rawPeer) sealFramed(plain []byte) []byte {
	pkt := sealFramed(rp.t, rp.out.cipher, rp.out.seq, plain)
	rp.out.seq++
	return pkt
}

// read returns the next payload (a copy).
func (rp *rawPeer) read() ([]byte, error) {
	for {
		p, err := rp.in.next()
		if err == nil {
			return bytes.Clone(p), nil
		}
		if err != errNeedMore {
			return nil, err
		}
		if err := rp.in.fill(rp.br); err != nil {
			return nil, err
		}
	}
}

// readMsg returns the next payload that is not EXT_INFO or IGNORE.
func (rp *rawPeer) readMsg() ([]byte, error) {
	for {
		p, err := rp.read()
		if err != nil || (p[0] != wire.MsgExtInfo && p[0] != wire.MsgIgnore) {
			return p, err
		}
	}
}

func hook(h func(*rawPeer) error, rp *rawPeer) error {
	if h == nil {
		return nil
	}
	return h(rp)
}

// handshake runs the first key exchange (curve25519-sha256, ssh-ed25519)
// with the misbehaviour o asks for; hostKey is used by a server.
func (rp *rawPeer) handshake(o rawOpts, hostKey kex.Signer) error {
	if err := rp.write([]byte(rawVersion + "\r\n")); err != nil {
		return err
	}
	if err := hook(o.beforeKexInit, rp); err != nil {
		return err
	}
	cfg := &Config{KexAlgorithms: []string{kex.Curve25519SHA256}, Ciphers: []string{o.cipher}}
	if o.mac != "" {
		cfg.MACs = []string{o.mac}
	}
	mine, err := newKexInit(cfg, rp.isClient, true, []string{kex.KeyAlgoED25519})
	if err != nil {
		return err
	}
	if o.noStrict {
		mine.KexAlgos = slices.DeleteFunc(mine.KexAlgos, func(s string) bool {
			return s == kexStrictClient || s == kexStrictServer
		})
	}
	ours := mine.marshal()
	if err := rp.send(ours); err != nil {
		return err
	}
	if err := hook(o.afterKexInit, rp); err != nil {
		return err
	}
	theirVersion, err := readVersion(rp.br, rp.isClient)
	if err != nil {
		return err
	}
	theirs, err := rp.read()
	if err != nil {
		return err
	}
	peer, err := parseKexInit(theirs)
	if err != nil {
		return err
	}
	magics := &kex.Magics{ClientVersion: theirVersion, ServerVersion: []byte(rawVersion),
		ClientKexInit: theirs, ServerKexInit: ours}
	cli, srv, peerStrict := peer, mine, kexStrictClient
	if rp.isClient {
		magics = &kex.Magics{ClientVersion: []byte(rawVersion), ServerVersion: theirVersion,
			ClientKexInit: ours, ServerKexInit: theirs}
		cli, srv, peerStrict = mine, peer, kexStrictServer
	}
	rp.strict = !o.noStrict && slices.Contains(peer.KexAlgos, peerStrict)
	algs, err := negotiate(cli, srv, nil)
	if err != nil {
		return err
	}

	var res *kex.Result
	if rp.isClient {
		m, err := kex.NewClient(algs.Kex, rand.Reader)
		if err != nil {
			return err
		}
		if err := rp.send(m.InitMessage()); err != nil {
			return err
		}
		reply, err := rp.read()
		if err != nil {
			return err
		}
		if res, err = m.HandleReply(reply, magics, algs.HostKey); err != nil {
			return err
		}
	} else {
		if peer.FirstKexFollows && guessWrong(cli, srv) {
			// Our client's guessed kex packet, for another method.
			if _, err := rp.read(); err != nil {
				return err
			}
		}
		init, err := rp.read()
		if err != nil {
			return err
		}
		var reply []byte
		if reply, res, err = kex.Server(algs.Kex, rand.Reader, init, magics, hostKey, algs.HostKey); err != nil {
			return err
		}
		if err := rp.send(reply); err != nil {
			return err
		}
	}
	if err := hook(o.beforeNewKeys, rp); err != nil {
		return err
	}
	d := &engine{isClient: rp.isClient, sessionID: res.H}
	d.rk.algs = algs
	outC, inC, err := d.deriveCiphers(res)
	if err != nil {
		return err
	}
	if err := rp.send([]byte{wire.MsgNewKeys}); err != nil {
		return err
	}
	rp.out.changeCipher(outC, rp.strict && !o.noSeqReset)
	nk, err := rp.read()
	if err != nil {
		return err
	}
	if len(nk) != 1 || nk[0] != wire.MsgNewKeys {
		return fmt.Errorf("rawpeer: got message %d, want NEWKEYS", nk[0])
	}
	rp.in.changeCipher(inC, rp.strict)
	return nil
}

// rawHandshake connects our client (ourServer false) or server to a
// rawPeer over loopback TCP and runs both handshakes. It returns our Conn
// (nil on error), the raw peer, our side's handshake error, and the raw
// side's.
func rawHandshake(t *testing.T, ourServer bool, o rawOpts) (*Conn, *rawPeer, error, error) {
	t.Helper()
	if o.cipher == "" {
		o.cipher = cipherChaCha20Poly1305
	}
	ours, theirs := tcpPair(t)
	hostKey := testHostKey(t)
	rp := newRawPeer(t, theirs, ourServer)
	done := make(chan error, 1)
	go func() {
		err := rp.handshake(o, hostKey)
		if err != nil {
			theirs.Close()
		}
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *Conn
	var err error
	if ourServer {
		c, err = NewServerConn(ctx, ours, &Config{HostKeys: []kex.Signer{hostKey}})
	} else {
		cfg := &Config{HostKeyCallback: acceptAny, Ciphers: []string{o.cipher}}
		if o.mac != "" {
			cfg.MACs = []string{o.mac}
		}
		c, err = NewClientConn(ctx, ours, cfg)
	}
	if err != nil {
		theirs.Close()
	} else {
		t.Cleanup(func() { c.Close() })
	}
	return c, rp, err, <-done
}

// rawConnected is rawHandshake for tests that need both handshakes to
// succeed.
func rawConnected(t *testing.T, ourServer bool, o rawOpts) (*Conn, *rawPeer) {
	t.Helper()
	c, rp, err, rerr := rawHandshake(t, ourServer, o)
	if err != nil || rerr != nil {
		t.Fatalf("handshake: ours %v, raw peer %v", err, rerr)
	}
	return c, rp
}

// readFails reads one packet from c and checks that it fails with a
// packet-layer error (not a timeout, not a delivered payload).
func readFails(t *testing.T, c *Conn, what string) error {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := c.ReadPacket()
	if err == nil {
		t.Fatalf("%s: delivered a payload of %d bytes: %x", what, len(p), p[:min(len(p), 32)])
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: no error within 5 s: the receiver waited for more input", what)
	}
	if p2, err2 := c.ReadPacket(); err2 == nil {
		t.Fatalf("%s: a payload (%x) delivered after the error", what, p2)
	}
	return err
}

// isPacketError reports an error of the packet layer (malformed packet or
// failed MAC).
func isPacketError(err error) bool {
	return errors.Is(err, errMAC) || errors.Is(err, errBadPacket)
}

// noPanic runs f and turns a panic into a test failure naming what.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: panic: %v", what, r)
		}
	}()
	f()
}

// decode feeds wire to a fresh inbound decoder under a receiving copy of
// combo's cipher (label must match the sender's) and returns what next
// gives for the first packet. It never reports errNeedMore: a decoder
// that wants more than wire holds returns errIncomplete.
func decode(t *testing.T, c cipherCombo, label string, wire []byte) (in *inbound, payload []byte, err error) {
	t.Helper()
	in = newInbound()
	in.cipher = newCombo(t, c, label)
	in.commit(copy(in.space(), wire))
	noPanic(t, fmt.Sprintf("%s: decoding %x", c, wire[:min(len(wire), 24)]), func() {
		payload, err = in.next()
	})
	if err == errNeedMore {
		err = errIncomplete
	}
	return in, payload, err
}

// alignedLength returns the smallest packet_length >= n that the framing
// of f accepts.
func alignedLength(f frameInfo, n int) int {
	for ; ; n++ {
		m := n
		if f.withLength {
			m += 4
		}
		if m%f.align == 0 {
			return n
		}
	}
}

// framed returns a plaintext packet with the given packet_length field,
// padding_length byte, and bodyLen bytes of body (from padding_length on).
func framed(packetLen uint32, padLen byte, bodyLen int) []byte {
	b := make([]byte, 4+bodyLen)
	binary.BigEndian.PutUint32(b, packetLen)
	if bodyLen > 0 {
		b[4] = padLen
	}
	if bodyLen > 1 {
		b[5] = wire.MsgIgnore
	}
	for i := 6; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// --- 1. Terrapin -----------------------------------------------------------

// CVE-2023-48795 (Terrapin): a man in the middle injects a message (IGNORE,
// or any other) in the unencrypted phase of the first key exchange and
// deletes as many encrypted packets later, relying on sequence numbers
// that count on across NEWKEYS. OpenSSH's strict kex, which both our ends
// offer, defends in two ways that are each checked here: (a) in the first
// key exchange under strict kex only kex messages may arrive, and KEXINIT
// must be the very first packet; (b) each NEWKEYS resets the sequence
// number of its direction. A peer that does not offer strict kex keeps the
// old rules: IGNORE (and DEBUG, UNIMPLEMENTED) tolerated during the kex,
// sequence numbers counting on.
func TestCVE_2023_48795_TerrapinIgnoreDuringStrictKex(t *testing.T) {
	// The original test: an IGNORE before the server's KEXINIT.
	t.Run("existing/IGNORE before KEXINIT", TestTerrapinIgnoreDuringStrictKexIsFatal_CVE_2023_48795)

	injected := map[string][]byte{
		"IGNORE":        {wire.MsgIgnore, 0, 0, 0, 0},
		"DEBUG":         {wire.MsgDebug, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"UNIMPLEMENTED": marshalUnimplemented(1),
	}
	type point struct {
		name string
		set  func(o *rawOpts, h func(*rawPeer) error)
	}
	points := []point{
		{"before KEXINIT", func(o *rawOpts, h func(*rawPeer) error) { o.beforeKexInit = h }},
		{"after KEXINIT", func(o *rawOpts, h func(*rawPeer) error) { o.afterKexInit = h }},
		{"before NEWKEYS", func(o *rawOpts, h func(*rawPeer) error) { o.beforeNewKeys = h }},
	}
	for _, ourServer := range []bool{false, true} {
		role := map[bool]string{false: "our client", true: "our server"}[ourServer]
		for _, pt := range points {
			for _, name := range []string{"IGNORE", "DEBUG", "UNIMPLEMENTED"} {
				msg := injected[name]
				t.Run(fmt.Sprintf("strict/%s/%s %s", role, name, pt.name), func(t *testing.T) {
					var o rawOpts
					pt.set(&o, func(rp *rawPeer) error { return rp.send(msg) })
					_, _, err, _ := rawHandshake(t, ourServer, o)
					if err == nil || !strings.Contains(err.Error(), "strict kex") {
						t.Fatalf("handshake error %v, want a strict kex violation", err)
					}
				})
				t.Run(fmt.Sprintf("non-strict/%s/%s %s", role, name, pt.name), func(t *testing.T) {
					o := rawOpts{noStrict: true}
					pt.set(&o, func(rp *rawPeer) error { return rp.send(msg) })
					c, rp := rawConnected(t, ourServer, o)
					if c.StrictKex() {
						t.Fatal("strict kex in effect though the peer did not offer it")
					}
					// Sequence numbers counted on across NEWKEYS.
					if got := c.Seq().In; got != rp.out.seq {
						t.Fatalf("our inbound seq %d, the peer has sent %d packets", got, rp.out.seq)
					}
					checkExchange(t, c, rp)
				})
			}
		}
	}

	// (b) Sequence numbers restart at zero at NEWKEYS, in both directions
	// and against a peer that is not a copy of us.
	for _, ourServer := range []bool{false, true} {
		role := map[bool]string{false: "our client", true: "our server"}[ourServer]
		t.Run("strict/"+role+"/sequence numbers reset at NEWKEYS", func(t *testing.T) {
			c, rp := rawConnected(t, ourServer, rawOpts{})
			if !c.StrictKex() || !rp.strict {
				t.Fatal("strict kex not negotiated")
			}
			s := c.Seq()
			wantOut := uint32(0)
			if ourServer {
				wantOut = 1 // EXT_INFO follows the server's NEWKEYS
			}
			if s.In != 0 || s.Out != wantOut {
				t.Fatalf("after the first kex: in %d, out %d; want 0, %d", s.In, s.Out, wantOut)
			}
			if rp.out.seq != 0 || rp.in.seq != 0 {
				t.Fatalf("raw peer: out %d, in %d", rp.out.seq, rp.in.seq)
			}
			checkExchange(t, c, rp)
		})
		// A peer (or a man in the middle) that agreed to strict kex but
		// keeps counting: its first encrypted packet is sealed under the
		// wrong sequence number and must not open.
		t.Run("strict/"+role+"/peer that does not reset is refused", func(t *testing.T) {
			c, rp := rawConnected(t, ourServer, rawOpts{noSeqReset: true})
			if rp.out.seq == 0 {
				t.Fatal("the raw peer reset its sequence number")
			}
			if err := rp.send([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}); err != nil {
				t.Fatal(err)
			}
			// Under chacha20-poly1305 the sequence number keys the
			// length too: a MAC failure or a garbled length.
			if err := readFails(t, c, "packet sealed under the old sequence number"); !isPacketError(err) {
				t.Fatalf("got %v, want a MAC or malformed-packet error", err)
			}
		})
	}
	// Rekeys reset the sequence numbers as well.
	t.Run("strict/rekey resets sequence numbers", func(t *testing.T) {
		cc, sc := newPair(t, func(c, s *Config) { c.KexAlgorithms = []string{kex.Curve25519SHA256} })
		exchange(t, cc, sc, 5)
		exchange(t, sc, cc, 5)
		if cc.Seq().Out == 0 || sc.Seq().Out == 0 {
			t.Fatal("sequence numbers did not move")
		}
		for _, c := range []*Conn{cc, sc} {
			go func() {
				for {
					if _, err := c.ReadPacket(); err != nil {
						return
					}
				}
			}()
		}
		if err := cc.Rekey(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the rekey to complete", func() bool { return cc.KexCount() >= 2 && sc.KexCount() >= 2 })
		// Each side sent KEXINIT, its kex message and NEWKEYS, then
		// nothing: 0 after the reset, 3 more without it.
		if cc.Seq().Out != 0 || sc.Seq().Out != 0 {
			t.Fatalf("out seq after a strict rekey: client %d, server %d; want 0", cc.Seq().Out, sc.Seq().Out)
		}
	})
}

// checkExchange sends a message each way between our c and rp and checks
// it arrives intact.
func checkExchange(t *testing.T, c *Conn, rp *rawPeer) {
	t.Helper()
	want := []byte{wire.MsgChannelData, 0, 0, 0, 7, 0, 0, 0, 3, 'a', 'b', 'c'}
	if err := rp.send(want); err != nil {
		t.Fatal(err)
	}
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := c.ReadPacket()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("from the raw peer: %x, %v", got, err)
	}
	if err := c.WritePacket(want); err != nil {
		t.Fatal(err)
	}
	got, err = rp.readMsg()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("to the raw peer: %x, %v", got, err)
	}
}

// waitUntil polls cond until it holds; it fails the test after 10 s
// (a hang, not a timing assertion).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: it only guards against a hang. On a loaded two-core
	// machine (go test ./... runs packages side by side) 10 s was once
	// not enough for two writers to fill a loopback socket's buffers.
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// --- 2. AEAD empty plaintext -------------------------------------------------

// CVE-2021-43565 (golang.org/x/crypto/ssh): a packet whose length field is
// 0 or too small for padding_length and padding, with a valid AES-GCM or
// chacha20-poly1305 tag, made the receiver index an empty plaintext and
// panic. Ours must reject it with an error, both in the decoder and
// through a Conn, before and after authentication of the tag.
func TestCVE_2021_43565_AEADEmptyPlaintext(t *testing.T) {
	for _, name := range []string{cipherChaCha20Poly1305, cipherAES128GCM, cipherAES256GCM} {
		c := cipherCombo{cipher: name}
		f := frameOf(t, newCombo(t, c, "empty"))
		type tc struct {
			name      string
			packetLen uint32
			padLen    byte
			bodyLen   int
		}
		cases := []tc{
			{"length 0, no body", 0, 0, 0},
			{"length 1", 1, 0, 1},
			{"length 4", 4, 3, 4},
			{"length 5", 5, 4, 5},
			{"one block, all padding", uint32(f.align), byte(f.align - 1), f.align},
			{"one block, padding beyond it", uint32(f.align), byte(f.align), f.align},
			{"length 0 with a body", 0, 4, f.align},
		}
		for _, k := range cases {
			t.Run(name+"/decoder/"+k.name, func(t *testing.T) {
				tx := newCombo(t, c, "empty")
				w := sealFramed(t, tx, 0, framed(k.packetLen, k.padLen, k.bodyLen))
				_, p, err := decode(t, c, "empty", w)
				// An empty payload is refused one layer up (readRaw);
				// the Conn subtests check that.
				if err == nil && len(p) != 0 {
					t.Fatalf("accepted: payload %x", p)
				}
				if err != nil && !errors.Is(err, errBadPacket) {
					t.Fatalf("error %v, want a malformed-packet error", err)
				}
			})
			t.Run(name+"/conn/"+k.name, func(t *testing.T) {
				cc, rp := rawConnected(t, false, rawOpts{cipher: name})
				if err := rp.write(rp.sealFramed(framed(k.packetLen, k.padLen, k.bodyLen))); err != nil {
					t.Fatal(err)
				}
				var err error
				noPanic(t, "ReadPacket", func() { err = readFails(t, cc, k.name) })
				if !errors.Is(err, errBadPacket) && !strings.Contains(err.Error(), "empty payload") {
					t.Fatalf("got %v, want a malformed-packet error", err)
				}
			})
		}
		// A packet cut short inside its tag, then EOF: an error, not a
		// read past the end.
		t.Run(name+"/conn/truncated tag", func(t *testing.T) {
			cc, rp := rawConnected(t, false, rawOpts{cipher: name})
			w := rp.out.seal(nil, []byte{wire.MsgIgnore, 0, 0, 0, 0})
			if err := rp.write(w[:len(w)-5]); err != nil {
				t.Fatal(err)
			}
			if err := rp.nc.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			var err error
			noPanic(t, "ReadPacket", func() { err = readFails(t, cc, "truncated packet") })
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %v, want an unexpected EOF", err)
			}
		})
	}
}

// --- 3. Padding length -------------------------------------------------------

// CVE-2019-3861 (libssh2): a padding_length greater than the packet
// (here 255 in a short packet, or equal to packet_length) was subtracted
// without a check and read out of bounds. Under every cipher and MAC, and
// before the first kex, ours rejects it with an error; a padding of 255
// in a packet long enough for it stays valid (RFC 4253 allows 4..255).
func TestCVE_2019_3861_PaddingLengthBeyondPacket(t *testing.T) {
	combos := append(allCombos(), cipherCombo{cipher: "none"})
	for _, c := range combos {
		f := frameOf(t, newCombo(t, c, "pad"))
		short := alignedLength(f, 16)
		long := alignedLength(f, 256+8)
		type tc struct {
			name      string
			packetLen int
			padLen    int
			ok        bool
		}
		cases := []tc{
			{"255 in a short packet", short, 255, false},
			{"equal to packet_length", short, short, false},
			{"packet_length - 1 (empty payload)", short, short - 1, false},
			{"3, below the minimum", short, 3, false},
			{"0", short, 0, false},
			{"255 in a long packet", long, 255, true},
		}
		for _, k := range cases {
			t.Run(c.String()+"/decoder/"+k.name, func(t *testing.T) {
				w := sealFramed(t, newCombo(t, c, "pad"), 0, framed(uint32(k.packetLen), byte(k.padLen), k.packetLen))
				_, p, err := decode(t, c, "pad", w)
				if k.ok {
					if err != nil || len(p) != k.packetLen-1-k.padLen {
						t.Fatalf("valid padding refused: %d bytes, %v", len(p), err)
					}
					return
				}
				if err == nil && len(p) != 0 {
					t.Fatalf("accepted: payload of %d bytes", len(p))
				}
				if err != nil && !errors.Is(err, errBadPacket) {
					t.Fatalf("error %v, want a malformed-packet error", err)
				}
			})
		}
		// Through a Conn: a valid long-padded packet, then each bad one
		// (255 in a short packet, padding = packet_length) on its own
		// connection. Under "none" the packet arrives before the kex.
		for _, k := range cases[:2] {
			t.Run(c.String()+"/conn/"+k.name, func(t *testing.T) {
				good := framed(uint32(long), 255, long)
				bad := framed(uint32(k.packetLen), byte(k.padLen), k.packetLen)
				if c.cipher == "none" {
					_, _, err, _ := rawHandshake(t, false, rawOpts{beforeKexInit: func(rp *rawPeer) error {
						return rp.write(append(rp.sealFramed(good), rp.sealFramed(bad)...))
					}})
					if !errors.Is(err, errBadPacket) {
						t.Fatalf("handshake error %v, want a malformed-packet error", err)
					}
					return
				}
				cc, rp := rawConnected(t, false, rawOpts{cipher: c.cipher, mac: c.mac})
				if err := rp.write(append(rp.sealFramed(good), rp.sealFramed(bad)...)); err != nil {
					t.Fatal(err)
				}
				var err error
				noPanic(t, "ReadPacket", func() { err = readFails(t, cc, k.name) })
				if !errors.Is(err, errBadPacket) {
					t.Fatalf("got %v, want a malformed-packet error", err)
				}
			})
		}
	}
}

// --- 4. Packet length ----------------------------------------------------------

// CVE-2024-43410 (russh: an unchecked packet length allocated what the
// peer asked for) and CVE-2026-55200 (libssh2: 0xFFFFFFFF plus the tag
// length wrapped to a 19-byte allocation in the chacha20-poly1305 path).
// A packet_length above maxPacketLength (256 KiB; RFC 4253 asks for 35000
// at least), or not aligned to the cipher's block, must be refused from
// the length bytes alone: nothing allocated or awaited for the rest,
// under every cipher and MAC and before the first kex.
func TestCVE_2024_43410_PacketLengthUnchecked(t *testing.T) {
	combos := append(allCombos(), cipherCombo{cipher: "none"})
	for _, c := range combos {
		f := frameOf(t, newCombo(t, c, "len"))
		lengths := map[string]uint32{
			"0xFFFFFFFF":                 0xffffffff,
			"0xFFFFFFFF minus the tag":   uint32(0xffffffff - f.macLen + 1), // 4 + this + the tag is 4 in 32 bits
			"2^31":                       1 << 31,
			"the limit plus one block":   uint32(alignedLength(f, maxPacketLength+1)),
			"misaligned by one":          uint32(alignedLength(f, 64) + 1),
			"misaligned by half a block": uint32(alignedLength(f, 64) + f.align/2),
			"0":                          0,
		}
		for name, n := range lengths {
			t.Run(c.String()+"/decoder/"+name, func(t *testing.T) {
				tx := newCombo(t, c, "len")
				// Seal a packet whose length field says n, over 16 bytes
				// of body, and deliver only the bytes packetLength needs.
				w := sealFramed(t, tx, 0, framed(n, 4, 16))
				lb := newCombo(t, c, "len").lengthBytes()
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				in, _, err := decode(t, c, "len", w[:lb])
				runtime.ReadMemStats(&ms1)
				if errors.Is(err, errIncomplete) {
					t.Fatalf("packet_length %#x: the decoder waits for the rest instead of refusing it", n)
				}
				if !errors.Is(err, errBadPacket) {
					t.Fatalf("packet_length %#x: got %v, want a malformed-packet error", n, err)
				}
				if len(in.slab.buf) != maxPacketLength+4+64+32*1024 || in.need != 0 {
					t.Fatalf("inbound buffer now %d bytes, need %d", len(in.slab.buf), in.need)
				}
				// newInbound's own buffer (~300 KiB) is in the count; a
				// packet-sized allocation would double it.
				if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 2*uint64(len(in.slab.buf)) {
					t.Fatalf("packet_length %#x: %d bytes allocated", n, d)
				}
			})
		}
		// Through a Conn: only the length bytes are sent and the peer
		// then waits; the error must come at once.
		for _, name := range []string{"0xFFFFFFFF", "the limit plus one block", "misaligned by one"} {
			n := lengths[name]
			t.Run(c.String()+"/conn/"+name, func(t *testing.T) {
				if c.cipher == "none" {
					_, _, err, _ := rawHandshake(t, false, rawOpts{beforeKexInit: func(rp *rawPeer) error {
						return rp.write(rp.sealFramed(framed(n, 4, 16))[:4])
					}})
					if !errors.Is(err, errBadPacket) {
						t.Fatalf("handshake error %v, want a malformed-packet error", err)
					}
					return
				}
				cc, rp := rawConnected(t, false, rawOpts{cipher: c.cipher, mac: c.mac})
				bufLen := len(cc.in.slab.buf)
				w := rp.sealFramed(framed(n, 4, 16))
				if err := rp.write(w[:cc.in.cipher.lengthBytes()]); err != nil {
					t.Fatal(err)
				}
				var err error
				noPanic(t, "ReadPacket", func() { err = readFails(t, cc, name) })
				if !errors.Is(err, errBadPacket) {
					t.Fatalf("got %v, want a malformed-packet error", err)
				}
				// The failed connection let its buffer go; it never grew.
				if sl := cc.in.slab; sl != nil {
					t.Fatalf("the failed connection still holds its inbound buffer (%d bytes, was %d)", len(sl.buf), bufLen)
				}
			})
		}
	}
}

// --- 5. EXT_INFO count -------------------------------------------------------

// CVE-2026-55199 (libssh2): EXT_INFO's nr-extensions was trusted and
// sized an allocation. Ours checks the count against the bytes that
// remain (each extension takes 8 at least) before anything is allocated:
// 0xFFFFFFFF in a tiny message is an error, with no large allocation and
// no loop over the claimed count.
func TestCVE_2026_55199_ExtInfoHugeCount(t *testing.T) {
	msg := func(n uint32, rest int) []byte {
		b := wire.AppendUint32([]byte{wire.MsgExtInfo}, n)
		return append(b, make([]byte, rest)...)
	}
	// A moderate count first: were the check gone, it would cost some
	// 100 MB and fail here rather than crash on 0xFFFFFFFF below.
	for _, n := range []uint32{1 << 22, 0xffffffff, 0x80000000, 2} {
		ok := t.Run(fmt.Sprintf("parse/%#x", n), func(t *testing.T) {
			for _, rest := range []int{0, 8, 15} {
				p := msg(n, rest)
				var ms0, ms1 runtime.MemStats
				var err error
				runtime.ReadMemStats(&ms0)
				noPanic(t, "parseExtInfo", func() { _, err = parseExtInfo(p) })
				runtime.ReadMemStats(&ms1)
				if err == nil {
					t.Fatalf("%d extensions in %d bytes accepted", n, rest)
				}
				if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 64<<10 {
					t.Fatalf("%d extensions claimed in %d bytes: %d bytes allocated", n, rest, d)
				}
			}
		})
		if !ok {
			return
		}
	}
	// A correct count still parses.
	good := marshalExtInfo([][2]string{{"server-sig-algs", "ssh-ed25519"}, {"ping@openssh.com", "0"}})
	if exts, err := parseExtInfo(good); err != nil || exts["ping@openssh.com"] != "0" {
		t.Fatalf("well-formed EXT_INFO: %v, %v", exts, err)
	}
	// Through a Conn, to our client (which records extensions) and to our
	// server (which parses and ignores them), right after NEWKEYS.
	for _, ourServer := range []bool{false, true} {
		role := map[bool]string{false: "our client", true: "our server"}[ourServer]
		t.Run("conn/"+role, func(t *testing.T) {
			c, rp := rawConnected(t, ourServer, rawOpts{})
			if err := rp.send(msg(0xffffffff, 8)); err != nil {
				t.Fatal(err)
			}
			var err error
			noPanic(t, "ReadPacket", func() { err = readFails(t, c, "EXT_INFO with 2^32-1 extensions") })
			if !strings.Contains(err.Error(), "EXT_INFO") {
				t.Fatalf("got %v, want an EXT_INFO error", err)
			}
		})
	}
}

// --- 6. Bit flips ----------------------------------------------------------------

// Integrity of every cipher and MAC we offer (SupportedCiphers,
// SupportedMACs), end to end: after the first kex one bit is flipped in
// the packet_length, padding_length, message type, payload, padding, and
// the first and last byte of the MAC or tag of one packet. The receiver
// must fail with a MAC (or, where a flipped length is already
// impossible, a malformed-packet) error, never deliver the corrupted
// payload nor any payload after it, and never panic. No CVE names this
// class; TestBitFlipAfterKex (conn_test.go) covers fewer positions, and
// TestCipherIntegrity every bit of a packet at the cipher level.
func TestAttack_BitFlipAfterKexEveryCipherAndMAC(t *testing.T) {
	payload := append([]byte{wire.MsgChannelData}, bytes.Repeat([]byte("y"), 120)...)
	for _, cipher := range SupportedCiphers() {
		macs := SupportedMACs()
		if _, _, aead, _ := cipherKeySizes(cipher); aead {
			macs = []string{""}
		}
		for _, mac := range macs {
			c := cipherCombo{cipher: cipher, mac: mac}
			size := len(newCombo(t, c, "flip").appendPacket(nil, 0, payload))
			macLen := newCombo(t, c, "flip").overhead()
			positions := []struct {
				name string
				off  int
			}{
				{"packet_length MSB", 0}, {"packet_length LSB", 3}, {"padding_length", 4},
				{"message type", 5}, {"payload", 5 + 60}, {"padding", size - macLen - 1},
				{"MAC first byte", size - macLen}, {"MAC last byte", size - 1},
			}
			for _, pos := range positions {
				t.Run(fmt.Sprintf("%s/%s", c, pos.name), func(t *testing.T) {
					ca, cb := tcpPair(t)
					fc := &flipConn{Conn: ca, off: pos.off}
					ccfg := &Config{HostKeyCallback: acceptAny, Ciphers: []string{cipher},
						KexAlgorithms: []string{kex.Curve25519SHA256}}
					if mac != "" {
						ccfg.MACs = []string{mac}
					}
					scfg := &Config{HostKeys: []kex.Signer{testHostKey(t)}}
					cc, sc, cerr, serr := handshakePair(t, fc, cb, ccfg, scfg)
					if cerr != nil || serr != nil {
						t.Fatal(cerr, serr)
					}
					defer cc.Close()
					defer sc.Close()
					if a := sc.Algorithms(); a.CipherCS != cipher || a.MACCS != mac {
						t.Fatalf("negotiated %+v", a)
					}
					fc.mu.Lock()
					fc.armed = true
					fc.mu.Unlock()
					// The second packet supplies the bytes a length made
					// longer by the flip (by 16) waits for.
					for range 2 {
						if err := cc.WritePacket(payload); err != nil {
							t.Fatal(err)
						}
					}
					var err error
					noPanic(t, "ReadPacket", func() { err = readFails(t, sc, pos.name) })
					if !isPacketError(err) {
						t.Fatalf("got %v, want a MAC or malformed-packet error", err)
					}
					if pos.off >= 5 && !errors.Is(err, errMAC) {
						t.Fatalf("got %v, want a MAC failure", err)
					}
				})
			}
		}
	}
}

// --- 7. Queued writes during a stalled kex ---------------------------------------

// cveStalledDataWriter writes one channel data message; its name marks
// the goroutine in stack dumps.
func cveStalledDataWriter(c *Conn, done chan<- error) {
	done <- c.WritePacket(append([]byte{wire.MsgChannelData}, make([]byte, 1000)...))
}

// parkedInWritePacket reports whether the goroutine running fn is
// blocked in WritePacket's condition wait.
func parkedInWritePacket(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(g, "(*Conn).WritePacket") && strings.Contains(g, "sync.(*Cond).Wait") {
			return true
		}
	}
	return false
}

// queuedBytes estimates the memory held by the messages queued during a
// key exchange: each entry's slice header in c.queued and its own
// allocation (8 bytes at least).
func queuedBytes(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := cap(c.queued) * int(unsafe.Sizeof([]byte(nil)))
	for _, q := range c.queued {
		n += max(cap(q), 8)
	}
	return n
}

// CVE-2025-22869 (golang.org/x/crypto/ssh): a peer that starts a key
// exchange and never finishes it made the server queue every outgoing
// packet in memory, without bound. Here the peer sends KEXINIT and then
// nothing; our side enters the kex and waits. Channel data writers must
// block (nothing sealed or queued), other messages are queued up to
// maxQueuedDuringKex (counting what each message costs in memory, not
// only its payload, so a flood of 1-byte replies is bounded too), and
// then the connection fails; the kex timeout ends the stall as well.
func TestCVE_2025_22869_UnboundedQueueDuringStalledKex(t *testing.T) {
	// stalledPair returns our server sc in a kex that the client cc
	// started and will never finish (its reader never runs, so it never
	// sends its kex init).
	stalledPair := func(t *testing.T, kexTimeout time.Duration) (sc *Conn, readErr chan error) {
		cc, sc := newPair(t, func(c, s *Config) {
			c.KexAlgorithms = []string{kex.Curve25519SHA256}
			s.KexTimeout = kexTimeout
		})
		if err := cc.Rekey(); err != nil {
			t.Fatal(err)
		}
		readErr = make(chan error, 1)
		go func() {
			for {
				if _, err := sc.ReadPacket(); err != nil {
					readErr <- err
					return
				}
			}
		}()
		waitUntil(t, "our side to enter the key exchange", func() bool {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			return sc.kexOut
		})
		return sc, readErr
	}
	// waitBlocked waits until the data writer is parked in WritePacket;
	// it fails if the write returns first.
	waitBlocked := func(t *testing.T, dataErr chan error) {
		waitUntil(t, "the data writer to block", func() bool {
			select {
			case err := <-dataErr:
				t.Fatalf("channel data written during a stalled key exchange (err %v)", err)
			default:
			}
			return parkedInWritePacket("cveStalledDataWriter")
		})
	}

	t.Run("queue bound", func(t *testing.T) {
		sc, _ := stalledPair(t, 0)
		sent := sc.Seq().OutTotal
		dataErr := make(chan error, 1)
		go cveStalledDataWriter(sc, dataErr)
		waitBlocked(t, dataErr)

		// The smallest message there is, as a peer's flood of global
		// requests would make us send (REQUEST_FAILURE has no body).
		var err error
		n := 0
		for ; n < maxQueuedDuringKex+1; n++ {
			if err = sc.WritePacket([]byte{wire.MsgRequestFailure}); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), "queued") {
			t.Fatalf("%d messages queued during a stalled kex; last error %v", n, err)
		}
		if held := queuedBytes(sc); held > 2*maxQueuedDuringKex {
			t.Fatalf("%d messages queued hold about %d bytes, more than twice maxQueuedDuringKex (%d)", n, held, maxQueuedDuringKex)
		}
		if got := sc.Seq().OutTotal; got != sent {
			t.Fatalf("%d packets sealed during the stalled kex", got-sent)
		}
		if err := <-dataErr; err == nil {
			t.Fatal("the blocked data writer succeeded")
		}
		if err := sc.WritePacket([]byte{wire.MsgRequestFailure}); err == nil {
			t.Fatal("the connection still accepts writes")
		}
	})

	t.Run("kex timeout", func(t *testing.T) {
		sc, readErr := stalledPair(t, 50*time.Millisecond)
		dataErr := make(chan error, 1)
		go cveStalledDataWriter(sc, dataErr)
		// No timed assertion: whenever the timeout fires, the writer
		// must be released with its error.
		if err := <-dataErr; err == nil || !strings.Contains(err.Error(), "did not complete") {
			t.Fatalf("data writer: %v, want the kex timeout", err)
		}
		if err := <-readErr; err == nil {
			t.Fatal("reader still running")
		}
	})
}

// --- 8. Writes over the packet limit -------------------------------------------

// CVE-2026-39834: a write of more than 4 GiB whose length is truncated
// to the 32-bit packet_length when framed sends a short packet followed
// by gigabytes the peer reads as further, attacker-shaped packets. We
// cannot allocate 4 GiB here. What the test pins instead: WritePacket
// refuses any payload over maxPayload (maxPacketLength - 5 - 255) before
// anything is sealed, queued or converted. The comparison len(p) >
// maxPayload is between ints and comes before appendFrame's
// uint32(packetLen), so a payload of 2^32+5 bytes is refused, not framed
// as a 5-byte packet (and on 32-bit platforms no slice reaches 4 GiB).
// The largest payload allowed is framed within maxPacketLength under
// every cipher and arrives intact.
func TestCVE_2026_39834_WriteOver4GiB(t *testing.T) {
	if maxPayload+1+minPadding+15 > maxPacketLength {
		t.Fatalf("maxPayload %d leaves no room for padding under maxPacketLength %d", maxPayload, maxPacketLength)
	}
	for _, c := range allCombos() {
		if largest := largestPayload(frameOf(t, newCombo(t, c, "big"))); maxPayload > largest {
			t.Fatalf("%s: maxPayload %d exceeds the %d bytes a packet can carry", c, maxPayload, largest)
		}
		t.Run(c.String(), func(t *testing.T) {
			cc, sc := newPair(t, func(cl, s *Config) {
				cl.KexAlgorithms = []string{kex.Curve25519SHA256}
				cl.Ciphers = []string{c.cipher}
				if c.mac != "" {
					cl.MACs = []string{c.mac}
				}
			})
			before := cc.Seq()
			for _, msg := range []byte{wire.MsgChannelData, wire.MsgIgnore} {
				for _, n := range []int{maxPayload + 1, maxPacketLength, maxPacketLength + 1, 1 << 20} {
					p := make([]byte, n)
					p[0] = msg
					if err := cc.WritePacket(p); err == nil {
						t.Fatalf("message %d with a payload of %d bytes (limit %d) accepted", msg, n, maxPayload)
					}
				}
			}
			cc.mu.Lock()
			pending := len(cc.wbuf) + len(cc.queued)
			cc.mu.Unlock()
			if after := cc.Seq(); after.OutTotal != before.OutTotal || pending != 0 {
				t.Fatalf("refused writes left %d packets sealed, %d pending", after.OutTotal-before.OutTotal, pending)
			}
			// The largest allowed payload goes through intact, and the
			// connection is still usable after the refusals.
			want := make([]byte, maxPayload)
			want[0] = wire.MsgChannelData
			for i := 1; i < len(want); i++ {
				want[i] = byte(i * 7)
			}
			errc := make(chan error, 1)
			go func() { errc <- cc.WritePacket(want) }()
			got, err := sc.ReadPacket()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("largest payload: %d bytes, %v", len(got), err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
	// Queued during a key exchange, an oversized message is refused too.
	t.Run("during kex", func(t *testing.T) {
		cc, _ := newPair(t, func(c, s *Config) { c.KexAlgorithms = []string{kex.Curve25519SHA256} })
		if err := cc.Rekey(); err != nil {
			t.Fatal(err)
		}
		if err := cc.WritePacket(append([]byte{wire.MsgIgnore}, make([]byte, maxPayload)...)); err == nil {
			t.Fatal("oversized message queued during a key exchange")
		}
		cc.mu.Lock()
		defer cc.mu.Unlock()
		if len(cc.queued) != 0 {
			t.Fatalf("%d messages queued", len(cc.queued))
		}
	})
}

// wbufLen is how many sealed bytes wait for the socket.
func wbufLen(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.wbuf)
}

// CVE-2025-26466 (OpenSSH 9.5-9.9): every ping@openssh.com made the
// server queue a pong, and a client that sent pings and never read grew
// the server's memory without bound. Here a raw peer floods our server
// with messages that each call for a reply (PING with a large body once
// authenticated; an unknown message type, answered with UNIMPLEMENTED,
// before) and never reads. The sealed bytes waiting for the socket must
// stay under maxControlBuffer (plus one packet): our reading goroutine
// stops reading instead, so the flood ends with the peer blocked on its
// own socket, not with our buffer growing. A channel data writer on our
// side is blocked in the socket write already (the peer does not read),
// so the replies pile up behind it rather than block their own writer.
func TestCVE_2025_26466_RepliesQueuedForPeerNotReading(t *testing.T) {
	for _, tc := range []struct {
		name    string
		authed  bool
		payload []byte
	}{
		{"ping after auth", true, marshalPing(wire.MsgPing, bytes.Repeat([]byte{'p'}, 30000))},
		{"unimplemented before auth", false, append([]byte{150}, make([]byte, 100)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rp := rawConnected(t, true, rawOpts{})
			if tc.authed {
				c.SetAuthenticated()
			}
			// Our data writers: one blocks in the socket write, the
			// other fills the write buffer behind it and then blocks.
			for range 2 {
				go func() {
					data := append([]byte{wire.MsgChannelData}, make([]byte, 32000)...)
					for c.WritePacket(data) == nil {
					}
				}()
			}
			waitUntil(t, "the data writer to block", func() bool { return wbufLen(c) >= maxWriteBuffer })
			readErr := make(chan error, 1)
			go func() {
				for {
					if _, err := c.ReadPacket(); err != nil {
						readErr <- err
						return
					}
				}
			}()
			// The flood: bounded at 256 MiB of requests; a peer that
			// is still writing after that has not been throttled.
			const limit = 256 << 20
			sent, peak := 0, 0
			var pkt []byte
			for sent < limit {
				// Each request is sealed under its own sequence number.
				pkt = rp.out.seal(pkt[:0], tc.payload)
				rp.nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := rp.nc.Write(pkt); err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("after %d bytes: %v", sent, err)
					}
					break
				}
				sent += len(pkt)
				if n := wbufLen(c); n > peak {
					peak = n
				}
			}
			if sent >= limit {
				t.Fatalf("the peer wrote %d MiB of requests without reading and was never throttled; %d bytes of replies waiting", sent>>20, wbufLen(c))
			}
			if n := wbufLen(c); n > peak {
				peak = n
			}
			if bound := maxControlBuffer + maxPacketLength; peak > bound {
				t.Fatalf("%d bytes of replies waited for the socket, more than %d", peak, bound)
			}
			select {
			case err := <-readErr:
				t.Fatalf("our reader failed: %v", err)
			default:
			}
			t.Logf("peer throttled after %d KiB of requests; at most %d KiB of replies waiting", sent>>10, peak>>10)
		})
	}
}

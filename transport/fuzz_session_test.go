package transport

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
)

// memPipe returns the two ends of an in-memory connection. It is
// net.Pipe with buffering: a Write never waits for the peer to read
// (each direction is an unbounded buffer, like a socket's), because both
// ends of an SSH handshake send their version and KEXINIT before reading
// anything, which deadlocks over net.Pipe's unbuffered writes. Deadlines
// are honoured, and Close wakes both ends. No goroutine is involved.
func memPipe() (*memConn, *memConn) {
	ab, ba := newMemHalf(), newMemHalf()
	return &memConn{in: ba, out: ab}, &memConn{in: ab, out: ba}
}

// memHalf is one direction of a memPipe.
type memHalf struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	eof    bool // the writing end closed
	gone   bool // the reading end closed
	readDL time.Time
	timer  *time.Timer
}

func newMemHalf() *memHalf {
	h := &memHalf{}
	h.cond = sync.NewCond(&h.mu)
	return h
}

type memConn struct {
	in, out *memHalf
	mu      sync.Mutex
	writeDL time.Time
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

func (c *memConn) Read(p []byte) (int, error) {
	h := c.in
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		switch {
		case h.gone:
			return 0, net.ErrClosed
		case len(h.buf) > 0:
			n := copy(p, h.buf)
			h.buf = h.buf[n:]
			return n, nil
		case h.eof:
			return 0, io.EOF
		case !h.readDL.IsZero() && !time.Now().Before(h.readDL):
			return 0, os.ErrDeadlineExceeded
		}
		h.cond.Wait()
	}
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	dl := c.writeDL
	c.mu.Unlock()
	h := c.out
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.eof:
		return 0, net.ErrClosed
	case h.gone:
		return 0, io.ErrClosedPipe
	case !dl.IsZero() && !time.Now().Before(dl):
		return 0, os.ErrDeadlineExceeded
	}
	h.buf = append(h.buf, p...)
	h.cond.Broadcast()
	return len(p), nil
}

func (c *memConn) Close() error {
	for _, h := range []*memHalf{c.in, c.out} {
		h.mu.Lock()
		if h == c.in {
			h.gone = true
			h.buf = nil
		} else {
			h.eof = true
		}
		if h.timer != nil {
			h.timer.Stop()
		}
		h.cond.Broadcast()
		h.mu.Unlock()
	}
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	h := c.in
	h.mu.Lock()
	defer h.mu.Unlock()
	h.readDL = t
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	if !t.IsZero() {
		h.timer = time.AfterFunc(time.Until(t), func() {
			h.mu.Lock()
			h.cond.Broadcast()
			h.mu.Unlock()
		})
	}
	h.cond.Broadcast()
	return nil
}

func (c *memConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDL = t
	c.mu.Unlock()
	return nil
}

func (c *memConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

func (c *memConn) LocalAddr() net.Addr  { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr { return memAddr{} }

// A FuzzConnAfterKex input is a mode and a list of records:
//
//	byte tag || uint16 length || body (cut short at the end of the input)
//
// tag bit 0: body is fields: body[0] the message number, the rest split
// at 0xFE bytes; the first and last fields go in raw, the ones between
// as SSH strings (so DEBUG is 4, "\x01", 0xFE, msg, 0xFE, lang, 0xFE),
// which keeps their length fields valid. Otherwise body is the payload.
// tag bit 1: the sender calls Rekey before sending this record; bit 2:
// the receiver does. tag bit 3: the payload is padded with zeros to
// (tag>>4)*16 KiB, for large messages from small inputs.
const (
	fuzzTagFields        = 1 << 0
	fuzzTagSenderRekey   = 1 << 1
	fuzzTagReceiverRekey = 1 << 2
	fuzzTagPad           = 1 << 3
	fuzzMaxRecords       = 48
	fuzzFieldSep         = 0xfe
)

// Mode bits: the cipher and MAC both sides offer (alone), who sends, the
// kex method, the resume extension, a live sender, the host key, whether
// the receiver counts as authenticated.
const (
	fuzzModeCipherMask = 7 // bits 0-2: supportedCiphers[n % 5]
	fuzzModeMACShift   = 3 // bits 3-4: supportedMACs[n]
	fuzzModeServerSend = 1 << 5
	fuzzModeHybridKex  = 1 << 6
	fuzzModeResume     = 1 << 7
	// fuzzModeLive: the sender's Conn reads what the receiver sends, so
	// key exchanges either side starts can complete; otherwise the
	// sender's socket is drained unread and only the fuzzed messages
	// reach the receiver.
	fuzzModeLive  = 1 << 8
	fuzzModeECDSA = 1 << 9
	// fuzzModeAuthenticated: the receiver is told user authentication
	// succeeded, so it answers ping@openssh.com.
	fuzzModeAuthenticated = 1 << 10
)

type fuzzRecord struct {
	tag     byte
	payload []byte
}

func fuzzFieldsPayload(body []byte) []byte {
	p := []byte{body[0]}
	fields := bytes.Split(body[1:], []byte{fuzzFieldSep})
	p = append(p, fields[0]...)
	if len(fields) > 1 {
		for _, fl := range fields[1 : len(fields)-1] {
			p = wire.AppendBytes(p, fl)
		}
		p = append(p, fields[len(fields)-1]...)
	}
	return p
}

func fuzzRecords(data []byte) []fuzzRecord {
	var recs []fuzzRecord
	for len(data) >= 3 && len(recs) < fuzzMaxRecords {
		tag := data[0]
		n := min(int(binary.BigEndian.Uint16(data[1:3])), len(data)-3)
		body := data[3 : 3+n]
		data = data[3+n:]
		payload := bytes.Clone(body)
		if tag&fuzzTagFields != 0 && len(body) > 0 {
			payload = fuzzFieldsPayload(body)
		}
		if tag&fuzzTagPad != 0 {
			if want := int(tag>>4) * 16 << 10; len(payload) < want {
				payload = append(payload, make([]byte, want-len(payload))...)
			}
		}
		recs = append(recs, fuzzRecord{tag, payload})
	}
	return recs
}

// encodeFuzzRecords encodes records for seeds: each tag, then the body
// fuzzRecords will read (for fuzzTagFields, the fields form).
func encodeFuzzRecords(recs ...fuzzRecord) []byte {
	var b []byte
	for _, r := range recs {
		b = append(b, r.tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.payload)))
		b = append(b, r.payload...)
	}
	return b
}

// fuzzFieldsRec builds a fuzzTagFields record.
func fuzzFieldsRec(msg byte, parts ...[]byte) fuzzRecord {
	return fuzzRecord{fuzzTagFields, append([]byte{msg}, bytes.Join(parts, []byte{fuzzFieldSep})...)}
}

func fuzzRaw(p ...byte) fuzzRecord { return fuzzRecord{0, p} }

// passesThrough reports the messages ReadPacket hands to its caller.
func passesThrough(msg byte, resumeOn bool) bool {
	return msg == wire.MsgServiceRequest || msg == wire.MsgServiceAccept ||
		msg >= 50 && msg <= 127 || resumeOn && resume.IsResumeMessage(msg)
}

// fuzzEndMarker ends every sequence: a DISCONNECT a fuzzed one is
// unlikely to equal.
const fuzzEndMarker = "end of the fuzzed sequence"

var (
	fuzzHostKeysOnce sync.Once
	fuzzHostKeys     []kex.Signer
)

func fuzzSessionHostKeys() []kex.Signer {
	fuzzHostKeysOnce.Do(func() {
		ed, err := kex.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, 32)))
		if err != nil {
			panic(err)
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		ec, err := kex.NewSigner(ek)
		if err != nil {
			panic(err)
		}
		fuzzHostKeys = []kex.Signer{ed, ec}
	})
	return fuzzHostKeys
}

// FuzzConnAfterKex connects a real client and server Conn in memory,
// runs the handshake, then has one of them send the fuzzer's messages
// through WritePacket, framed and encrypted under the negotiated keys, so
// that the other's decryption passes and its dispatch is what is
// fuzzed: KEXINIT mid-stream, kex messages out of order, NEWKEYS early,
// EXT_INFO, IGNORE, DEBUG, UNIMPLEMENTED, SERVICE_REQUEST, DISCONNECT,
// unknown numbers, huge fields. A DISCONNECT with fuzzEndMarker follows
// them. The receiver reads until it fails. Checked: no panic; the
// receiver ends within seconds with an error; the messages it returns
// are exactly the sent messages it should return, in order, none
// invented or altered (a prefix of them, all of them when the sender's
// socket is only drained and the receiver stopped at the end marker);
// after its error, ReadPacket keeps failing; every goroutine ends.
//
//	go test ./transport -run '^$' -fuzz '^FuzzConnAfterKex$' -fuzztime 60s
func FuzzConnAfterKex(f *testing.F) {
	cliInit, _ := newKexInit(&Config{}, true, false, DefaultHostKeyAlgorithms)
	srvInit, _ := newKexInit(&Config{}, false, false, []string{kex.KeyAlgoED25519})
	x, _ := kex.NewClient(kex.Curve25519SHA256, rand.Reader)
	ecdhInit := x.InitMessage()
	ecdhReply := append([]byte{wire.MsgKexECDHReply}, make([]byte, 12)...)
	req := fuzzFieldsRec(wire.MsgServiceRequest, nil, []byte("ssh-userauth"), nil)
	data := fuzzRecord{0, append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 3}, "abc"...)}
	debug := fuzzFieldsRec(wire.MsgDebug, []byte{1}, []byte("debug message"), []byte("en"), nil)
	ignore := fuzzFieldsRec(wire.MsgIgnore, nil, []byte("ignored"), nil)
	ext := fuzzRecord{0, marshalExtInfo([][2]string{{"server-sig-algs", "ssh-ed25519"}, {"ping@openssh.com", "0"}})}
	seeds := []struct {
		mode uint16
		recs []fuzzRecord
	}{
		{0, nil},
		{1, []fuzzRecord{req, data, ignore, debug, data}},
		{2 | fuzzModeServerSend, []fuzzRecord{ext, fuzzFieldsRec(wire.MsgServiceAccept, nil, []byte("ssh-userauth"), nil), data}},
		{3, []fuzzRecord{data, {0, cliInit.marshal()}, data}},                                                       // KEXINIT mid-stream
		{4 | fuzzModeServerSend, []fuzzRecord{{0, srvInit.marshal()}, ext, data}},                                   // then something else
		{3 | 1<<fuzzModeMACShift, []fuzzRecord{{0, ecdhInit}, data}},                                                // kex message out of order
		{3 | 2<<fuzzModeMACShift | fuzzModeServerSend, []fuzzRecord{{0, ecdhReply}, data}},                          // reply out of order
		{3 | 3<<fuzzModeMACShift, []fuzzRecord{fuzzRaw(wire.MsgNewKeys), data}},                                     // NEWKEYS early
		{4 | 1<<fuzzModeMACShift, []fuzzRecord{{0, cliInit.marshal()}, fuzzRaw(wire.MsgNewKeys)}},                   // NEWKEYS before the kex is done
		{0, []fuzzRecord{{fuzzTagReceiverRekey, cliInit.marshal()}, {0, ecdhInit}, fuzzRaw(wire.MsgNewKeys), data}}, // a whole fuzzed rekey
		{fuzzModeHybridKex, []fuzzRecord{{0, cliInit.marshal()}, {0, ecdhInit}}},                                    // with a curve25519 share
		{0, []fuzzRecord{fuzzRaw(wire.MsgUnimplemented, 0, 0, 0, 7), fuzzRaw(0), fuzzRaw(8), fuzzRaw(19), fuzzRaw(22), fuzzRaw(29), fuzzRaw(128), fuzzRaw(255), data, fuzzRaw(49)}},
		{fuzzModeAuthenticated | fuzzModeLive, []fuzzRecord{fuzzRaw(wire.MsgPing, 0, 0, 0, 1, 'p'), data, fuzzRaw(wire.MsgPing, 0, 0, 0, 0, 0), data}},
		{fuzzModeResume, []fuzzRecord{fuzzRaw(resume.MsgEnable), fuzzRaw(resume.MsgAck, 0, 0, 0, 0, 0, 0, 0, 1), fuzzRaw(wire.MsgPing, 0, 0, 0, 1, 'p'), fuzzRaw(wire.MsgPong, 0, 0, 0, 0), data}},
		{0, []fuzzRecord{fuzzRaw(wire.MsgDebug, 1, 0xff, 0xff, 0xff, 0xff), fuzzRaw(wire.MsgExtInfo, 0xff, 0xff, 0xff, 0xff), fuzzRaw(wire.MsgDisconnect, 0, 0, 0, 2, 0x7f, 0xff, 0xff, 0xff)}}, // huge-looking lengths
		{1, []fuzzRecord{{fuzzTagPad | 15<<4, []byte{wire.MsgIgnore, 0, 3, 0xc0, 0}}, {fuzzTagPad | 8<<4, []byte{wire.MsgChannelData}}, data}},
		{fuzzModeLive | fuzzModeServerSend, []fuzzRecord{data, {fuzzTagSenderRekey, data.payload}, data, {fuzzTagReceiverRekey, data.payload}, debug, data}},
		{fuzzModeLive | fuzzModeECDSA | 3, []fuzzRecord{{fuzzTagSenderRekey, data.payload}, {0, cliInit.marshal()}, data}},
		{0, []fuzzRecord{fuzzFieldsRec(wire.MsgDisconnect, []byte{0, 0, 0, 11}, []byte("bye"), []byte(""), nil), data}},
	}
	for _, s := range seeds {
		f.Add(s.mode, encodeFuzzRecords(s.recs...))
	}
	for i := range supportedCiphers {
		for j := range supportedMACs {
			f.Add(uint16(i|j<<fuzzModeMACShift), encodeFuzzRecords(req, data, debug))
		}
	}
	fuzzSessionHostKeys()
	f.Fuzz(func(t *testing.T, mode uint16, input []byte) {
		fuzzConnAfterKex(t, mode, fuzzRecords(input))
	})
}

func fuzzConnAfterKex(t *testing.T, mode uint16, recs []fuzzRecord) {
	cipher := supportedCiphers[int(mode&fuzzModeCipherMask)%len(supportedCiphers)]
	mac := supportedMACs[int(mode>>fuzzModeMACShift&3)%len(supportedMACs)]
	method := kex.Curve25519SHA256
	if mode&fuzzModeHybridKex != 0 {
		method = kex.MLKEM768X25519SHA256
	}
	resumeOn := mode&fuzzModeResume != 0
	live := mode&fuzzModeLive != 0
	hostKey := fuzzSessionHostKeys()[0]
	if mode&fuzzModeECDSA != 0 {
		hostKey = fuzzSessionHostKeys()[1]
	}
	// A short kex timeout: a rekey that stalls (which a peer may do) ends
	// the connection well within the wait below.
	const kexTimeout = 500 * time.Millisecond
	ccfg := &Config{HostKeyCallback: acceptAny, Ciphers: []string{cipher}, MACs: []string{mac},
		KexAlgorithms: []string{method}, Extensions: withResume(resumeOn), KexTimeout: kexTimeout}
	scfg := &Config{HostKeys: []kex.Signer{hostKey}, Ciphers: []string{cipher}, MACs: []string{mac},
		KexAlgorithms: []string{method}, Extensions: withResume(resumeOn), KexTimeout: kexTimeout}
	ca, cb := memPipe()
	defer ca.Close()
	defer cb.Close()
	cc, sc, cerr, serr := handshakePair(t, ca, cb, ccfg, scfg)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake (%s, %s, %s): client %v, server %v", method, cipher, mac, cerr, serr)
	}
	if a := cc.Algorithms(); a.CipherCS != cipher || a.CipherSC != cipher {
		t.Fatalf("negotiated %+v, want %s", a, cipher)
	}
	sender, receiver, senderNC := cc, sc, ca
	if mode&fuzzModeServerSend != 0 {
		sender, receiver, senderNC = sc, cc, cb
	}
	if receiver.Negotiated(resume.ClientKexName) != resumeOn {
		t.Fatalf("resume negotiated %v, offered %v", receiver.Negotiated(resume.ClientKexName), resumeOn)
	}

	if mode&fuzzModeAuthenticated != 0 {
		receiver.SetAuthenticated()
	}

	var wg sync.WaitGroup
	// What the receiver sends back: read by the sender's Conn (live) or
	// drained unread.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if live {
			for {
				if _, err := sender.ReadPacket(); err != nil {
					return
				}
			}
		}
		io.Copy(io.Discard, senderNC)
	}()

	type received struct {
		got [][]byte
		err error
	}
	recvDone := make(chan received, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var got [][]byte
		for {
			p, err := receiver.ReadPacket()
			if err != nil {
				recvDone <- received{got, err}
				return
			}
			got = append(got, bytes.Clone(p))
		}
	}()

	// The sender's messages, from this goroutine, then the end marker.
	var sent [][]byte
	sentDisconnect := false
	for _, r := range recs {
		if r.tag&fuzzTagSenderRekey != 0 && live {
			sender.Rekey()
		}
		if r.tag&fuzzTagReceiverRekey != 0 {
			receiver.Rekey()
		}
		if len(r.payload) == 0 || len(r.payload) > maxPayload {
			if sender.WritePacket(r.payload) == nil {
				t.Fatalf("WritePacket accepted a payload of %d bytes", len(r.payload))
			}
			continue
		}
		if err := sender.WritePacket(r.payload); err != nil {
			break
		}
		sent = append(sent, r.payload)
		sentDisconnect = sentDisconnect || r.payload[0] == wire.MsgDisconnect
	}
	sender.WritePacket(marshalDisconnect(wire.DisconnectByApplication, fuzzEndMarker))

	var res received
	select {
	case res = <-recvDone:
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("receiver still reading 10 s after the last message (%d sent, live %v):\n%s", len(sent), live, buf)
	}

	resumeNow := receiver.Negotiated(resume.ClientKexName)
	var want [][]byte
	for _, p := range sent {
		if passesThrough(p[0], resumeNow) {
			want = append(want, p)
		}
	}
	if len(res.got) > len(want) {
		t.Fatalf("receiver returned %d messages, %d were sent that it should return", len(res.got), len(want))
	}
	for i, p := range res.got {
		if !bytes.Equal(p, want[i]) {
			t.Fatalf("message %d returned as %x, sent as %x", i, p[:min(len(p), 64)], want[i][:min(len(want[i]), 64)])
		}
	}
	t.Logf("mode %#x (%s, %s, %s): %d sent, %d of %d returned, then %v", mode, method, cipher, mac, len(sent), len(res.got), len(want), res.err)
	var d *DisconnectError
	atMarker := errors.As(res.err, &d) && d.FromPeer && d.Message == fuzzEndMarker
	if !live && atMarker && !sentDisconnect && len(res.got) != len(want) {
		t.Fatalf("receiver reached the end marker having returned %d of %d messages", len(res.got), len(want))
	}
	if !live && (errors.Is(res.err, io.EOF) || errors.Is(res.err, os.ErrDeadlineExceeded)) {
		t.Fatalf("receiver failed with %v though the sender neither closed nor stalled", res.err)
	}
	if p, err := receiver.ReadPacket(); err == nil {
		t.Fatalf("ReadPacket returned %x after failing with %v", p, res.err)
	}

	sender.Abort()
	receiver.Abort()
	ca.Close()
	cb.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("goroutines still running 10 s after closing both ends:\n%s", buf)
	}
}

// The fuzz records round-trip through their encoding, so the seeds mean
// what they say.
func TestFuzzRecordsEncoding(t *testing.T) {
	recs := []fuzzRecord{fuzzRaw(wire.MsgIgnore), fuzzFieldsRec(wire.MsgDebug, []byte{1}, []byte("m"), []byte("l"), nil), {fuzzTagPad | 1<<4, []byte{2}}}
	got := fuzzRecords(encodeFuzzRecords(recs...))
	want := [][]byte{{wire.MsgIgnore}, wire.AppendString(wire.AppendString([]byte{wire.MsgDebug, 1}, "m"), "l"), append([]byte{2}, make([]byte, 16<<10-1)...)}
	if len(got) != len(want) {
		t.Fatalf("%d records", len(got))
	}
	for i := range want {
		if !bytes.Equal(got[i].payload, want[i]) {
			t.Errorf("record %d: %s", i, fmt.Sprintf("%x", got[i].payload[:min(len(got[i].payload), 32)]))
		}
	}
}

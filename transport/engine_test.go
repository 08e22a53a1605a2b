package transport

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
)

// enginePair returns a client and a server engine whose client checks
// the server's host key.
func enginePair(t testing.TB, mod func(c, s *Config)) (cli, srv *Engine) {
	t.Helper()
	hk := testHostKey(t)
	want := hk.PublicKey().Marshal()
	ccfg := &Config{HostKeyCallback: func(k kex.PublicKey) error {
		if !bytes.Equal(k.Marshal(), want) {
			return errors.New("not the server's host key")
		}
		return nil
	}}
	scfg := &Config{HostKeys: []kex.Signer{hk}}
	if mod != nil {
		mod(ccfg, scfg)
	}
	cli, err := NewClientEngine(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err = NewServerEngine(scfg)
	if err != nil {
		t.Fatal(err)
	}
	return cli, srv
}

// pump moves bytes between two engines, in chunks of at most chunk bytes
// (0: all at once), until neither has anything to send, and returns the
// messages each received. It fails the test on an error.
func pump(t testing.TB, a, b *Engine, chunk int) (gotA, gotB [][]byte) {
	t.Helper()
	move := func(from, to *Engine, got *[][]byte) bool {
		out := from.Output()
		if len(out) == 0 {
			return false
		}
		n := len(out)
		if chunk > 0 && n > chunk {
			n = chunk
		}
		to.Input(out[:n])
		from.Consume(n)
		for {
			p, err := to.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if p == nil {
				return true
			}
			*got = append(*got, bytes.Clone(p))
		}
	}
	for i := 0; ; i++ {
		if i > 1e6 {
			t.Fatal("the engines never settle")
		}
		ab := move(a, b, &gotB)
		ba := move(b, a, &gotA)
		if !ab && !ba {
			return gotA, gotB
		}
	}
}

// TestEngineKexAndRekeyNoGoroutines runs the first key exchange, messages
// both ways, a re-exchange with messages queued behind it, and messages
// under the new keys between two engines: no goroutine, no socket.
func TestEngineKexAndRekeyNoGoroutines(t *testing.T) {
	for _, chunk := range []int{0, 1, 7, 1500} {
		cli, srv := enginePair(t, nil)
		if got, _ := pump(t, cli, srv, chunk); len(got) != 0 {
			t.Fatalf("chunk %d: messages before the first kex: %x", chunk, got)
		}
		for _, e := range []*Engine{cli, srv} {
			if !e.HandshakeComplete() || e.KexCount() != 1 || !e.StrictKex() {
				t.Fatalf("chunk %d: after the first kex: complete %v, %d kex, strict %v", chunk, e.HandshakeComplete(), e.KexCount(), e.StrictKex())
			}
		}
		if !bytes.Equal(cli.SessionID(), srv.SessionID()) || cli.SessionID() == nil {
			t.Fatal("session IDs differ")
		}
		if !bytes.Equal(cli.HostKey().Marshal(), srv.HostKey().Marshal()) {
			t.Fatal("host keys differ")
		}
		if string(srv.ClientVersion()) != DefaultVersion || string(cli.ServerVersion()) != DefaultVersion {
			t.Fatalf("versions %q %q", srv.ClientVersion(), cli.ServerVersion())
		}
		if cli.ServerSigAlgs() == nil {
			t.Fatal("no EXT_INFO from the server")
		}

		msg := func(i int) []byte {
			return append([]byte{wire.MsgChannelData}, bytes.Repeat([]byte{byte(i)}, 100*i+1)...)
		}
		for i := range 5 {
			if err := cli.Write(msg(i)); err != nil {
				t.Fatal(err)
			}
		}
		gotCli, gotSrv := pump(t, cli, srv, chunk)
		if len(gotCli) != 0 || len(gotSrv) != 5 || !bytes.Equal(gotSrv[4], msg(4)) {
			t.Fatalf("chunk %d: client got %d, server %d messages", chunk, len(gotCli), len(gotSrv))
		}

		// A re-exchange started by the client; what both write meanwhile
		// waits for NEWKEYS and arrives in order.
		seqBefore := cli.Seq()
		if err := cli.Rekey(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := cli.Write(msg(i)); err != nil {
				t.Fatal(err)
			}
			if err := srv.Write(msg(i + 3)); err != nil {
				t.Fatal(err)
			}
		}
		gotCli, gotSrv = pump(t, cli, srv, chunk)
		if len(gotCli) != 3 || len(gotSrv) != 3 || !bytes.Equal(gotSrv[2], msg(2)) || !bytes.Equal(gotCli[2], msg(5)) {
			t.Fatalf("chunk %d: after the rekey: client got %d, server %d messages", chunk, len(gotCli), len(gotSrv))
		}
		for _, e := range []*Engine{cli, srv} {
			if e.KexCount() != 2 {
				t.Fatalf("chunk %d: %d kex, want 2", chunk, e.KexCount())
			}
		}
		if s := cli.Seq(); s.OutTotal <= seqBefore.OutTotal || s.Out >= seqBefore.Out {
			t.Fatalf("strict kex: sequence numbers not reset by the rekey: before %+v, after %+v", seqBefore, s)
		}
		// And a rekey started by the server.
		if err := srv.Rekey(); err != nil {
			t.Fatal(err)
		}
		pump(t, cli, srv, chunk)
		if cli.KexCount() != 3 || srv.KexCount() != 3 {
			t.Fatalf("chunk %d: %d and %d kex, want 3", chunk, cli.KexCount(), srv.KexCount())
		}
	}
}

// TestEngineHostKeyRejected: the client's callback refuses the key, and
// the engine fails with a DISCONNECT for the server in its output.
func TestEngineHostKeyRejected(t *testing.T) {
	cli, srv := enginePair(t, func(c, s *Config) {
		c.HostKeyCallback = func(kex.PublicKey) error { return errors.New("no thanks") }
	})
	var cliErr error
	for range 10 {
		srv.Input(cli.Output())
		cli.Consume(len(cli.Output()))
		if _, err := srv.Next(); err != nil {
			t.Fatal(err)
		}
		cli.Input(srv.Output())
		srv.Consume(len(srv.Output()))
		if _, cliErr = cli.Next(); cliErr != nil {
			break
		}
	}
	if cliErr == nil || !strings.Contains(cliErr.Error(), "no thanks") {
		t.Fatalf("client error %v", cliErr)
	}
	if d := lastDisconnect(t, cli.Output()); d == nil || d.Reason != wire.DisconnectHostKeyNotVerifiable {
		t.Fatalf("client output ends in %v, want a DISCONNECT", d)
	}
	if err := cli.Write([]byte{wire.MsgIgnore}); err == nil {
		t.Fatal("Write after a failure succeeded")
	}
}

// TestEngineKexGuess: the client's guessed first kex packet follows its
// KEXINIT. A server that prefers the same kex and host key algorithms
// answers it in its first flight (KEXINIT, the kex reply and NEWKEYS), so
// the client needs no second flight of the key exchange; one that prefers
// another kex method ignores it and the exchange goes on as without a
// guess (RFC 4253 section 7). Both end with working connections.
func TestEngineKexGuess(t *testing.T) {
	for _, c := range []struct {
		name    string
		mod     func(c, s *Config)
		answers bool // the server's first flight holds its kex reply
	}{
		{"right", nil, true},
		{"wrong kex", func(_, s *Config) { s.KexAlgorithms = []string{"curve25519-sha256", "mlkem768x25519-sha256"} }, false},
		{"wrong host key", func(c, _ *Config) {
			c.HostKeyAlgorithms = []string{kex.KeyAlgoECDSA256, kex.KeyAlgoED25519}
		}, false},
		{"no guess", func(c, _ *Config) { c.NoKexGuess = true }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cli, srv := enginePair(t, c.mod)
			srv.Input(cli.Output())
			cli.Consume(len(cli.Output()))
			if p, err := srv.Next(); p != nil || err != nil {
				t.Fatalf("server: %x, %v", p, err)
			}
			// The server's first flight, decoded under the none cipher up
			// to its NEWKEYS.
			out := srv.Output()
			out = out[bytes.Index(out, []byte("\r\n"))+2:]
			var types []byte
			in := newInbound()
			in.cipher = newNoneCipher()
			in.commit(copy(in.space(), out))
			for {
				p, err := in.next()
				if err != nil {
					break
				}
				types = append(types, p[0])
				if p[0] == wire.MsgNewKeys {
					break
				}
			}
			got := bytes.Contains(types, []byte{wire.MsgKexECDHReply, wire.MsgNewKeys})
			if got != c.answers {
				t.Errorf("server's first flight %v: kex reply in it %v, want %v", types, got, c.answers)
			}
			pump(t, cli, srv, 0)
			if err := cli.Write([]byte{wire.MsgIgnore}); err != nil {
				t.Fatal(err)
			}
			pump(t, cli, srv, 0)
		})
	}
}

// TestEngineTerrapinIgnore: an IGNORE before the first NEWKEYS under
// strict kex fails the engine and leaves a DISCONNECT in its output.
func TestEngineTerrapinIgnore(t *testing.T) {
	// No guessed kex packet: the server's first answer is then its
	// KEXINIT alone, before any NEWKEYS.
	cli, srv := enginePair(t, func(c, _ *Config) { c.NoKexGuess = true })
	srv.Input(cli.Output())
	cli.Consume(len(cli.Output()))
	if _, err := srv.Next(); err != nil {
		t.Fatal(err)
	}
	// The server's version and KEXINIT, then a forged IGNORE.
	out := srv.Output()
	srv.Consume(len(out))
	cli.Input(out)
	var forged outbound
	forged.cipher = newNoneCipher()
	cli.Input(forged.seal(nil, []byte{wire.MsgIgnore, 0, 0, 0, 0}))
	_, err := cli.Next()
	if err == nil || !strings.Contains(err.Error(), "strict kex") {
		t.Fatalf("got %v, want a strict kex violation", err)
	}
	if d := lastDisconnect(t, cli.Output()); d == nil || d.Reason != wire.DisconnectProtocolError {
		t.Fatalf("client output ends in %v, want a DISCONNECT", d)
	}
}

// lastDisconnect decodes output sealed under the none cipher (before the
// first NEWKEYS) and returns its last packet as a DISCONNECT, or nil.
func lastDisconnect(t *testing.T, output []byte) *DisconnectError {
	t.Helper()
	in := newInbound()
	defer in.close()
	copy(in.space(), output)
	in.commit(len(output))
	var last []byte
	for {
		p, err := in.next()
		if err == errNeedMore {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = bytes.Clone(p)
	}
	if len(last) == 0 || last[0] != wire.MsgDisconnect {
		return nil
	}
	d, err := parseDisconnect(last)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEngineMessagesDuringReExchange: in a re-exchange, a peer that goes
// on sending after its KEXINIT (asyncssh 2.10 sends channel data until its
// NEWKEYS, which RFC 4253 section 7.1 forbids and OpenSSH accepts after
// the first key exchange) is not cut off: its messages are passed up in
// order with those before and after, and count toward the keys they came
// under. So are the messages of a negotiated extension (192-255, the
// resume extension's); an unknown one is answered with UNIMPLEMENTED once
// our own NEWKEYS is out. Each side plays the peer that does this, with
// the bytes moved whole and in small chunks.
func TestEngineMessagesDuringReExchange(t *testing.T) {
	for _, chunk := range []int{0, 7} {
		for _, starter := range []string{"client", "server"} {
			t.Run(fmt.Sprintf("%s/chunk%d", starter, chunk), func(t *testing.T) {
				// What each side received, transport messages included.
				var unimplemented [2]int
				tap := func(side int) func(bool, uint32, []byte) {
					return func(sent bool, _ uint32, p []byte) {
						if !sent && p[0] == wire.MsgUnimplemented {
							unimplemented[side]++
						}
					}
				}
				cli, srv := enginePair(t, func(c, s *Config) {
					c.Extensions, s.Extensions = withResume(true), withResume(true)
					c.Tap, s.Tap = tap(0), tap(1)
				})
				pump(t, cli, srv, chunk)
				a, b := cli, srv // a starts the re-exchange and keeps sending
				aSide := 0
				if starter == "server" {
					a, b, aSide = srv, cli, 1
				}
				var sent [][]byte
				send := func(p []byte) {
					// Sealed as the peer does it: straight behind its
					// KEXINIT and kex messages, not queued (Write
					// would hold it until NEWKEYS).
					a.sealLocked(p)
					sent = append(sent, p)
				}
				data := func(i int) []byte {
					return append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 50}, bytes.Repeat([]byte{byte(i)}, 50)...)
				}
				// b's writes during the re-exchange wait for its NEWKEYS.
				bWrote := data(200)

				if err := a.Rekey(); err != nil {
					t.Fatal(err)
				}
				send(data(0))
				send([]byte{resume.MsgAck, 0, 0, 0, 0, 0, 0, 0, 1}) // the resume extension's
				send(data(1))
				// Only the KEXINIT and what follows it reach b: b is
				// in the re-exchange when the messages arrive.
				inBytes := b.Seq().InBytes
				var got [][]byte
				take := func() {
					t.Helper()
					for {
						p, err := b.Next()
						if err != nil {
							t.Fatalf("%s's peer: Next: %v", starter, err)
						}
						if p == nil {
							return
						}
						got = append(got, bytes.Clone(p))
					}
				}
				b.Input(a.Output())
				a.Consume(len(a.Output()))
				take()
				if b.rk.peerKexInit == nil {
					t.Fatal("the receiver is not in the re-exchange")
				}
				if len(got) != 3 {
					t.Fatalf("%d messages passed up after the peer's KEXINIT, want 3", len(got))
				}
				if s := b.Seq(); s.InBytes <= inBytes+3*(9+50) {
					t.Fatalf("received bytes under the old keys: %d before, %d after the KEXINIT and three messages", inBytes, s.InBytes)
				}
				if err := b.Write(bWrote); err != nil {
					t.Fatal(err)
				}

				// The rest of the exchange, with a sending after each
				// of its kex messages until its NEWKEYS, and a message
				// number nobody owns among them.
				unknown := []byte{250, 1, 2, 3}
				a.sealLocked(unknown)
				var gotA [][]byte
				for i := 0; ; i++ {
					if i > 1000 {
						t.Fatal("the engines never settle")
					}
					if a.kexOut && len(a.Output()) < 256 && len(sent) < 50 {
						send(data(10 + i))
					}
					moved := false
					if out := a.Output(); len(out) > 0 {
						n := len(out)
						if chunk > 0 {
							n = min(n, chunk)
						}
						b.Input(out[:n])
						a.Consume(n)
						take()
						moved = true
					}
					if out := b.Output(); len(out) > 0 {
						n := len(out)
						if chunk > 0 {
							n = min(n, chunk)
						}
						a.Input(out[:n])
						b.Consume(n)
						for {
							p, err := a.Next()
							if err != nil {
								t.Fatalf("%s: Next: %v", starter, err)
							}
							if p == nil {
								break
							}
							gotA = append(gotA, bytes.Clone(p))
						}
						moved = true
					}
					if !moved {
						break
					}
				}
				if a.KexCount() != 2 || b.KexCount() != 2 {
					t.Fatalf("%d and %d key exchanges, want 2", a.KexCount(), b.KexCount())
				}
				if len(got) != len(sent) {
					t.Fatalf("%d messages passed up, %d sent", len(got), len(sent))
				}
				for i := range sent {
					if !bytes.Equal(got[i], sent[i]) {
						t.Fatalf("message %d: got %x, sent %x", i, got[i], sent[i])
					}
				}
				if len(sent) < 4 {
					t.Fatalf("only %d messages sent during the re-exchange", len(sent))
				}
				if len(gotA) != 1 || !bytes.Equal(gotA[0], bWrote) {
					t.Fatalf("the starter got %x, want b's message written during the exchange", gotA)
				}
				if unimplemented[aSide] != 1 {
					t.Fatalf("%d UNIMPLEMENTED for the unknown message", unimplemented[aSide])
				}

				// And messages flow under the new keys.
				if err := a.Write(data(99)); err != nil {
					t.Fatal(err)
				}
				var gotB [][]byte
				if a == cli {
					_, gotB = pump(t, cli, srv, chunk)
				} else {
					gotB, _ = pump(t, cli, srv, chunk)
				}
				if len(gotB) != 1 || !bytes.Equal(gotB[0], data(99)) {
					t.Fatalf("after the re-exchange: got %x", gotB)
				}
			})
		}
	}
}

// TestEngineFirstKexRefusesOtherMessages: in the first key exchange,
// under strict kex, a message other than key exchange after the peer's
// KEXINIT still fails the engine with a DISCONNECT, as the Terrapin
// defence requires (OpenSSH PROTOCOL, "kex-strict"): the tolerance of
// TestEngineMessagesDuringReExchange is for re-exchanges only.
func TestEngineFirstKexRefusesOtherMessages(t *testing.T) {
	for _, msg := range [][]byte{
		{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 1, 'x'},
		{wire.MsgServiceRequest, 0, 0, 0, 0},
		{resume.MsgAck, 0, 0, 0, 0, 0, 0, 0, 1},
	} {
		cli, srv := enginePair(t, func(c, s *Config) {
			c.Extensions, s.Extensions = withResume(true), withResume(true)
			c.NoKexGuess = true
		})
		// The client's version and KEXINIT, then the message under
		// the none cipher, its sequence number following the KEXINIT.
		cli.sealLocked(msg)
		srv.Input(cli.Output())
		cli.Consume(len(cli.Output()))
		_, err := srv.Next()
		if err == nil || !strings.Contains(err.Error(), "strict kex") {
			t.Fatalf("message %d: got %v, want a strict kex violation", msg[0], err)
		}
		out := srv.Output()
		out = out[bytes.Index(out, []byte("\r\n"))+2:] // its version line
		if d := lastDisconnect(t, out); d == nil || d.Reason != wire.DisconnectProtocolError {
			t.Fatalf("message %d: server output ends in %v, want a DISCONNECT", msg[0], d)
		}
	}
}

// TestEngineReExchangePacketBound: a peer that stalls its re-exchange
// while sending cannot go on under the old keys until their sequence
// numbers repeat.
func TestEngineReExchangePacketBound(t *testing.T) {
	cli, srv := enginePair(t, nil)
	pump(t, cli, srv, 0)
	if err := cli.Rekey(); err != nil {
		t.Fatal(err)
	}
	srv.Input(cli.Output())
	cli.Consume(len(cli.Output()))
	if p, err := srv.Next(); p != nil || err != nil {
		t.Fatalf("KEXINIT: %x %v", p, err)
	}
	// As if 2^32-1 packets had come under these keys.
	srv.in.packets = maxPacketsPerKey - 2
	for i := range 2 {
		cli.sealLocked([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 1, 'x'})
		srv.Input(cli.Output())
		cli.Consume(len(cli.Output()))
		p, err := srv.Next()
		if i == 0 && (p == nil || err != nil) {
			t.Fatalf("packet 2^32-1: %x %v", p, err)
		}
		if i == 1 && (err == nil || !strings.Contains(err.Error(), "packets under one key")) {
			t.Fatalf("packet 2^32: got %v, want the engine to fail", err)
		}
	}
}

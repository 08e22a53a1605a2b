package transport

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
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

// TestEngineTerrapinIgnore: an IGNORE before the first NEWKEYS under
// strict kex fails the engine and leaves a DISCONNECT in its output.
func TestEngineTerrapinIgnore(t *testing.T) {
	cli, srv := enginePair(t, nil)
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

package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// serviceRequest asks for ssh-userauth and expects SERVICE_ACCEPT: the
// first message under the new keys, so it proves both directions work.
func serviceRequest(t *testing.T, c *Conn) {
	t.Helper()
	if err := c.WritePacket(wire.AppendString([]byte{wire.MsgServiceRequest}, "ssh-userauth")); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if p[0] != wire.MsgServiceAccept {
		t.Fatalf("got message %d, want SERVICE_ACCEPT", p[0])
	}
}

// Our client completes the key exchange with OpenSSH's sshd for every
// cipher, MAC and kex method, with strict kex in effect.
func TestInteropOpenSSHServerKex(t *testing.T) {
	sshd := sshtest.StartSshd(t, "")
	type tc struct{ kex, cipher, mac string }
	var cases []tc
	for _, c := range supportedCiphers {
		if _, _, aead, _ := cipherKeySizes(c); aead {
			cases = append(cases, tc{"", c, ""})
			continue
		}
		for _, m := range supportedMACs {
			cases = append(cases, tc{"", c, m})
		}
	}
	for _, k := range kex.SupportedMethods() {
		cases = append(cases, tc{k, "", ""})
	}
	for _, c := range cases {
		t.Run(c.kex+c.cipher+"/"+c.mac, func(t *testing.T) {
			cfg := &Config{HostKeyCallback: acceptAny}
			if c.cipher != "" {
				cfg.Ciphers = []string{c.cipher}
			}
			if c.mac != "" {
				cfg.MACs = []string{c.mac}
			}
			if c.kex != "" {
				cfg.KexAlgorithms = []string{c.kex}
			}
			nc, err := net.Dial("tcp", sshd.Addr())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := NewClientConn(ctx, nc, cfg)
			if err != nil {
				if c.kex == kex.MLKEM768X25519SHA256 {
					// OpenSSH before 9.9 does not have it.
					t.Skipf("sshd lacks %s: %v", c.kex, err)
				}
				t.Fatal(err)
			}
			defer conn.Close()
			if !conn.StrictKex() {
				t.Fatal("strict kex not negotiated with OpenSSH")
			}
			serviceRequest(t, conn)
			if algs := conn.ServerSigAlgs(); len(algs) == 0 {
				t.Fatal("no server-sig-algs from OpenSSH")
			}
			if err := conn.Rekey(); err != nil {
				t.Fatal(err)
			}
			// The rekey completes while we talk.
			if err := conn.WritePacket(wire.AppendString([]byte{wire.MsgServiceRequest}, "ssh-userauth")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// golang.org/x/crypto/ssh as the peer, both ways, at the transport level:
// "none" authentication is enough to prove the keys work.
func TestInteropXCryptoServer(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, _ := ssh.NewSignerFromSigner(priv)
	scfg := &ssh.ServerConfig{NoClientAuth: true}
	scfg.AddHostKey(hk)
	for _, cipher := range append(supportedCiphers, kex.SupportedMethods()...) {
		t.Run(cipher, func(t *testing.T) {
			cfg := &Config{HostKeyCallback: acceptAny, Ciphers: []string{cipher}}
			if _, _, _, ok := cipherKeySizes(cipher); !ok {
				if !slices.Contains(ssh.SupportedAlgorithms().KeyExchanges, cipher) {
					t.Skipf("x/crypto/ssh lacks %s (the OpenSSH interop tests cover it)", cipher)
				}
				cfg = &Config{HostKeyCallback: acceptAny, KexAlgorithms: []string{cipher}}
			}
			ca, cb := tcpPair(t)
			go func() {
				sc, chans, reqs, err := ssh.NewServerConn(cb, scfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "test")
				}
				sc.Close()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := NewClientConn(ctx, ca, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			serviceRequest(t, conn)
			req := wire.AppendString([]byte{wire.MsgUserauthRequest}, "u")
			req = wire.AppendString(req, "ssh-connection")
			req = wire.AppendString(req, "none")
			conn.WritePacket(req)
			p, err := conn.ReadPacket()
			if err != nil || p[0] != wire.MsgUserauthSuccess {
				t.Fatalf("none auth: %v %v", p, err)
			}
			if !conn.StrictKex() {
				t.Fatal("strict kex not in effect with x/crypto/ssh")
			}
		})
	}
}

func TestInteropXCryptoClient(t *testing.T) {
	for _, cipher := range supportedCiphers {
		t.Run(cipher, func(t *testing.T) {
			ca, cb := tcpPair(t)
			errc := make(chan error, 1)
			go func() {
				ccfg := &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey(),
					Config: ssh.Config{Ciphers: []string{cipher}}, Timeout: 5 * time.Second}
				_, _, _, err := ssh.NewClientConn(ca, "x", ccfg)
				errc <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := NewServerConn(ctx, cb, &Config{HostKeys: []kex.Signer{testHostKey(t)}})
			if err != nil {
				t.Fatal(err)
			}
			p, err := conn.ReadPacket()
			if err != nil || p[0] != wire.MsgServiceRequest {
				t.Fatalf("%v %v", p, err)
			}
			conn.WritePacket(wire.AppendString([]byte{wire.MsgServiceAccept}, "ssh-userauth"))
			p, err = conn.ReadPacket()
			if err != nil || p[0] != wire.MsgUserauthRequest {
				t.Fatalf("%v %v", p, err)
			}
			conn.WritePacket([]byte{wire.MsgUserauthSuccess})
			if err := <-errc; err != nil {
				t.Fatalf("x/crypto/ssh client: %v", err)
			}
			conn.Close()
		})
	}
}

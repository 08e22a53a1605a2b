package rsftp_test

import (
	"context"
	"io"
	"log"
	"net"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
)

// Remote forwarding, as ssh -R 0:localhost:8080: the server listens on a
// port it picks, and each connection to it reaches a local service. The
// forward survives lost links when the session is resumable.
func ExampleClient_ListenTCP() {
	var c *rsftp.Client // from rsftp.Dial
	ctx := context.Background()
	l, err := c.ListenTCP(ctx, "localhost", 0)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()                                  // cancel-tcpip-forward
	log.Printf("the server listens on %s", l.Addr()) // localhost:<the port it picked>
	for {
		fc, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer fc.Close()
			local, err := net.Dial("tcp", "localhost:8080")
			if err != nil {
				return
			}
			defer local.Close()
			go io.Copy(local, fc)
			io.Copy(fc, local)
		}()
	}
}

// Agent forwarding, as ssh -A: programs in the session reach the local
// agent through the socket the server makes (SSH_AUTH_SOCK there).
func ExampleClient_ForwardAgent() {
	var c *rsftp.Client // from rsftp.Dial
	ctx := context.Background()
	sess, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	err = c.ForwardAgent(ctx, sess, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", auth.DefaultAgentSocket())
	})
	if err != nil {
		log.Fatal(err) // refused: the server's configuration or the key's options
	}
	out, err := sess.Output(ctx, "ssh-add -l")
	log.Printf("%s %v", out, err)
}

// A server that allows what sshd allows by default for a key without
// restrictions: local and remote forwarding (loopback only, GatewayPorts
// no), Unix sockets and the agent, with sshd's PermitOpen and
// PermitListen lists narrowing where.
func ExampleServerConfig_forwarding() {
	cfg := &rsftp.ServerConfig{
		AllowTCPForwarding:         func(user, host string, port int) bool { return true },
		AllowRemoteForwarding:      func(user, host string, port int) bool { return true },
		AllowStreamLocalForwarding: func(user, path string, listen bool) bool { return true },
		AllowAgentForwarding:       func(user string) bool { return true },
		PermitOpen:                 []string{"db.internal:5432", "*:443"},
		PermitListen:               []string{"localhost:*"},
		GatewayPorts:               rsftp.GatewayPortsNo,
	}
	_ = cfg // with HostKeys and Auth, to rsftp.NewServer
}

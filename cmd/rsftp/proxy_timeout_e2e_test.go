package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2EJumpHostConnectTimeout: a jump host that accepts the connection
// and then says nothing is given up after its own ConnectTimeout (from
// its Host block), as ssh's hop process would, even though the
// destination has none; the error names the jump host. Before, the
// command waited for good.
func TestE2EJumpHostConnectTimeout(t *testing.T) {
	r := newJumpRig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent: no version line
		}
	}()
	r.host("mute", "HostName 127.0.0.1", fmt.Sprintf("Port %d", ln.Addr().(*net.TCPAddr).Port), "ConnectTimeout 1")
	r.host("target", "HostName 127.0.0.1", fmt.Sprintf("Port %d", r.target.port), "ProxyJump mute")
	r.write(t)

	// The bound only tells a hang from an answer; nothing is timed.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eTool(t), "ls", "-F", r.config, "--no-resume", "target:")
	cmd.Env = e2eEnv(t)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("rsftp still waited for the mute jump host after 60 s\n%s", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("ls through a mute jump host: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "mute") {
		t.Errorf("the error does not name the jump host:\n%s", out)
	}
	if len(r.target.accepted()) != 0 {
		t.Error("the target was reached")
	}
	t.Logf("%s", out)
}

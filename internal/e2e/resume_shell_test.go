//go:build unix

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/netsim"
)

// TestResumeShellAcrossCuts: a program on a pseudo-terminal prints a
// numbered line every 10 ms while every link is cut, by reset and by
// blackhole in turn; what it wrote while the link was away is kept and
// comes on resumption: every line arrives exactly once and in order.
// Lines typed during two of the outages reach the program once each.
func TestResumeShellAcrossCuts(t *testing.T) {
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) {
		cfg.Exec = rsftp.ShellHandler(rsftp.ShellConfig{Shell: "/bin/sh"})
	}, netsim.WithLatency(time.Millisecond))
	c := r.dial(nil)
	ctx := context.Background()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Echo off: the typed lines show only in what the program says.
	if err := s.RequestPty(ctx, "xterm", 80, 24, channel.TerminalModes{{Opcode: 53, Value: 0}}); err != nil {
		t.Fatal(err)
	}
	const lines = 300
	out := s.Stdout()
	prog := fmt.Sprintf(`(i=0; while [ $i -lt %d ]; do echo "line $i"; i=$((i+1)); sleep 0.01; done) & `+
		`read a; read b; wait; echo "typed:$a:$b"`, lines)
	if err := s.Exec(ctx, prog); err != nil {
		t.Fatal(err)
	}
	in := s.Stdin()
	modes := []netsim.CutMode{netsim.Reset, netsim.Blackhole, netsim.Reset, netsim.Blackhole, netsim.Reset, netsim.Blackhole}
	cuts := 0
	next := 0
	var typed []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(l, "typed:") {
			typed = append(typed, l)
			continue
		}
		if l != fmt.Sprintf("line %d", next) {
			t.Fatalf("after line %d: %q (cuts so far %d)", next-1, l, cuts)
		}
		next++
		if next%40 == 20 && cuts < len(modes) {
			r.net.CutAll(modes[cuts])
			cuts++
			// Typed while the link is away.
			switch cuts {
			case 2:
				io.WriteString(in, "first-typed\n")
			case 5:
				io.WriteString(in, "second-typed\n")
			}
		}
	}
	if next != lines || cuts != len(modes) {
		t.Fatalf("%d lines of %d, %d cuts: %v", next, lines, cuts, sc.Err())
	}
	if len(typed) != 1 || typed[0] != "typed:first-typed:second-typed" {
		t.Fatalf("what the program read: %q", typed)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := r.clientCount(rsftp.EventResumed); n < len(modes) {
		t.Errorf("%d resumptions, want %d", n, len(modes))
	}
}

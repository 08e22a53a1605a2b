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

// TestResumePtyOutputHeld: a program floods its terminal while the link
// is blackholed: what the server keeps for resending stays within the
// session's retention bound (the writer waits, and through the window
// and the terminal so does the program), and on resumption every byte
// arrives once.
func TestResumePtyOutputHeld(t *testing.T) {
	const limit = 1 << 20
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) {
		cfg.Exec = rsftp.ShellHandler(rsftp.ShellConfig{Shell: "/bin/sh"})
		cfg.Resume.MaxRetainedPerSession = limit
	}, netsim.WithLatency(time.Millisecond))
	c := r.dial(nil)
	ctx := context.Background()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty(ctx, "xterm", 80, 24, nil); err != nil {
		t.Fatal(err)
	}
	const size = 2_000_000
	out := s.Stdout()
	if err := s.Exec(ctx, fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x; echo; echo end-of-output`, size)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	var got []byte
	for len(got) < 100<<10 {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	r.net.CutAll(netsim.Blackhole)
	// Read on while the link is away (nothing comes) and sample what
	// the server holds until the session is back.
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r.clientCount(rsftp.EventResumed) < 1 {
			if u := r.srv.RetentionBudget().Used(); u > peak {
				peak = u
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	rest, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	got = append(got, rest...)
	if n := strings.Count(string(got), "x"); n != size || !strings.HasSuffix(string(got), "\r\nend-of-output\r\n") {
		t.Fatalf("%d x of %d; ends %q", n, size, got[max(0, len(got)-40):])
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	// One frame may go past the bound (it is charged as it is sealed).
	if peak > limit+64<<10 || peak == 0 {
		t.Errorf("the server held up to %d bytes while the link was away; bound %d", peak, limit)
	}
	t.Logf("held at most %d bytes during the outage", peak)
}

//go:build unix

package rsftp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/channel"
	"golang.org/x/term"
)

// A server that gives shells and commands as sshd does (as the user it
// runs as), and a client that asks for a terminal with the local one's
// size and modes, as ssh -t does, and runs a command on it.
func ExampleShellHandler() {
	c, stop := exampleServerWith(&rsftp.ServerConfig{
		Exec:      rsftp.ShellHandler(rsftp.ShellConfig{Shell: "/bin/sh"}),
		AcceptEnv: []string{"LANG", "LC_*"}, // Debian's sshd_config
	})
	defer stop()
	ctx := context.Background()
	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	cols, rows := 80, 24
	fd := int(os.Stdin.Fd())
	var modes channel.TerminalModes // none: the server's defaults
	if term.IsTerminal(fd) {
		cols, rows, _ = term.GetSize(fd)
		modes, _ = channel.TerminalModesFromFd(fd)
	}
	if err := s.RequestPty(ctx, "xterm", cols, rows, modes); err != nil {
		log.Fatal(err)
	}
	out := s.Stdout()
	if err := s.Exec(ctx, `stty -echo; echo "on $(tty | cut -c1-5) as TERM=$TERM"`); err != nil {
		log.Fatal(err)
	}
	b, _ := io.ReadAll(out)
	fmt.Printf("%q\n", b)
	fmt.Println(s.Wait())
	// Output:
	// "on /dev/ as TERM=xterm\r\n"
	// <nil>
}

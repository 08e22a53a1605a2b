package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// askHostKey asks on the terminal whether to trust an unknown host key
// whose fingerprint is fp (confirmHostKey). It fails when there is no
// terminal.
func askHostKey(fp string) (bool, error) {
	tty, err := openTerminal() // /dev/tty; the console on Windows
	if err != nil {
		return false, err
	}
	defer tty.Close()
	return confirmHostKey(tty, tty, fp), nil
}

// confirmHostKey is ssh's confirm() at the host key prompt: "yes" (in any
// case) or the key's fingerprint accept, "no" or an empty line refuse,
// and anything else asks again, "Please type 'yes', 'no' or the
// fingerprint: ", until one of them or the end of the input (a refusal).
func confirmHostKey(in io.Reader, out io.Writer, fp string) bool {
	br := bufio.NewReader(in)
	prompt := "Are you sure you want to continue connecting (yes/no/[fingerprint])? "
	for {
		fmt.Fprint(out, prompt)
		line, err := br.ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(out)
			return false
		}
		answer := strings.TrimSpace(line)
		switch {
		case answer == "" || strings.EqualFold(answer, "no"):
			return false
		case strings.EqualFold(answer, "yes") || answer == fp:
			return true
		}
		if err != nil {
			fmt.Fprintln(out)
			return false
		}
		prompt = "Please type 'yes', 'no' or the fingerprint: "
	}
}

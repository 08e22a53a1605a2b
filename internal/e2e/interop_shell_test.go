//go:build unix

package e2e

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/sshtest"
)

// TestInteropOpenSSHShell: Debian's ssh against our server with
// ShellHandler: a command (exec, no terminal) and its exit status; ssh
// -tt with a command, which gets a terminal of the TERM ssh sent as its
// controlling terminal; ssh -tt with a login shell reading what is typed
// on the terminal; and -T refusing a terminal to a shell that still
// runs.
func TestInteropOpenSSHShell(t *testing.T) {
	sshBin := sshtest.Binary(t, "ssh")
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	addr, hk := startServer(t, dir, string(pub), func(cfg *rsftp.ServerConfig) {
		cfg.Exec = rsftp.ShellHandler(rsftp.ShellConfig{Shell: "/bin/sh"})
		cfg.AcceptEnv = []string{"LC_*"}
	})
	kh := knownHostsFor(t, dir, addr, hk.PublicKey())
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	run := func(t *testing.T, extra []string, cmd, stdin string) (string, string, int) {
		t.Helper()
		args := append(sshtest.SSHArgs(kh, p), "-i", key)
		args = append(args, extra...)
		args = append(args, "127.0.0.1")
		if cmd != "" {
			args = append(args, cmd)
		}
		c := exec.Command(sshBin, args...)
		c.Env = append(os.Environ(), "TERM=xterm-interop", "LC_TEST=sent", "NOT_ACCEPTED=x")
		c.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("ssh: %v", err)
		}
		return out.String(), errb.String(), code
	}
	t.Run("exec", func(t *testing.T) {
		out, errs, code := run(t, []string{"-o", "SendEnv=LC_TEST NOT_ACCEPTED"},
			`echo "$((6*7)) ${LC_TEST-} ${NOT_ACCEPTED-unset}"; tty; exit 4`, "")
		if out != "42 sent unset\nnot a tty\n" || code != 4 {
			t.Fatalf("stdout %q stderr %q exit %d", out, errs, code)
		}
	})
	t.Run("tt-command", func(t *testing.T) {
		out, errs, code := run(t, []string{"-tt"}, `echo "[$TERM|$(tty)|$SSH_TTY]"; exit 5`, "")
		i, j := strings.Index(out, "["), strings.Index(out, "]")
		if i < 0 || j < i || code != 5 {
			t.Fatalf("stdout %q stderr %q exit %d", out, errs, code)
		}
		f := strings.Split(out[i+1:j], "|")
		if len(f) != 3 || f[0] != "xterm-interop" || !strings.HasPrefix(f[1], "/dev/") || f[1] != f[2] {
			t.Fatalf("TERM, tty, SSH_TTY: %q", f)
		}
		if !strings.HasSuffix(out, "\r\n") {
			t.Errorf("output %q: no CR LF from the terminal", out)
		}
	})
	t.Run("tt-shell", func(t *testing.T) {
		out, errs, code := run(t, []string{"-tt"}, "", "echo marker-$((1+2)); exit 6\n")
		if !strings.Contains(out, "marker-3\r\n") || code != 6 {
			t.Fatalf("stdout %q stderr %q exit %d", out, errs, code)
		}
	})
	t.Run("T-shell", func(t *testing.T) {
		out, errs, code := run(t, []string{"-T"}, "", "echo no-tty-$((2+2)); tty; exit 7\n")
		if !strings.Contains(out, "no-tty-4\nnot a tty\n") || code != 7 {
			t.Fatalf("stdout %q stderr %q exit %d", out, errs, code)
		}
	})
}

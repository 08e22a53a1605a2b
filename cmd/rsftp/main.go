// Command rsftp copies files over SSH with SFTP, and serves SFTP.
//
//	rsftp get [-apqr] [-P port] [-i identity] [-c cipher] [-F ssh_config] [-J jump] [-o option] [user@]host:remote ... [local]
//	rsftp put [-apqr] [...same options] local ... [user@]host:[remote]
//	rsftp ls [-1afhlnrSt] [...same options] [user@]host:[path]
//	rsftp cp [-346ABCpqrv] [-l limit] [-X sftp_option] [...same options] source ... target
//	rsftp sftp [-apqr] [-b batchfile] [...same options] [user@]host[:path]
//	rsftp ssh [ssh's options] [user@]host [command]
//	rsftp serve --listen ADDR --root DIR --host-key FILE --authorized-keys FILE
//	rsftp demo [-q] [-size N] [-latency d] [-bandwidth B/s] [-cuts n] [-outage d] [-svg file] [-c cipher] [-timeout d]
//	rsftp --version
//
// Each command's -h (or --help) prints its usage on stdout. Options are spelled as OpenSSH's sftp and scp spell them; ~/.ssh/config,
// ~/.ssh/known_hosts, ssh-agent and ~/.ssh/id_* are used as ssh uses them.
// The exit status is 0 on success and non-zero, with a one-line reason
// on stderr that says what to do (errtext.go), on failure: 2 for a usage
// error. SIGINT or SIGTERM ends get, put and ls within a
// second whatever the state of the link, with status 130 or 143 (128
// plus the signal's number); get and put then say how much was kept and
// the command that continues (rsftp get -a ... or rsftp put -a ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rsftp/rsftp/sftp"
)

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: rsftp get [-apqr] [-P port] [-i identity_file] [-c cipher] [-F ssh_config]
                [-J destination] [-l limit] [-o ssh_option] [--events file] [--no-resume]
                [user@]host:remote ... [local]
       rsftp put [-apqr] [-P port] [-i identity_file] [-c cipher] [-F ssh_config]
                [-J destination] [-l limit] [-o ssh_option] [--events file] [--no-resume]
                local ... [user@]host:[remote]
       rsftp ls [-1afhlnrSt] [-P port] [-i identity_file] [-F ssh_config]
                [-J destination] [-o ssh_option] [user@]host:[path]
       rsftp cp [-346ABCpqrv] [-c cipher] [-F ssh_config] [-i identity_file]
                [-J destination] [-l limit] [-o ssh_option] [-P port]
                [-X sftp_option] source ... target
       rsftp sftp [-apqr] [-b batchfile] [-P port] [-i identity_file] [-F ssh_config]
                [-J destination] [-o ssh_option] [...] [user@]host[:path]
                (also: rsftp user@host[:path])
                (interactive, with sftp's commands; rsftp sftp -h lists its options)
       rsftp ssh [-46AaNnqsTtv] [-L spec] [-R spec] [-D [bind:]port] [-e char]
                [-E log_file] [-W host:port] [ssh's other options] [--events file]
                [--no-resume] [user@]host [command]
                (a shell or command, forwards and agent as ssh; the exit status
                is the remote command's, 255 for rsftp's own failures;
                rsftp ssh -h lists its options)
       rsftp serve --listen addr --root dir --host-key file --authorized-keys file
                [--hold duration] [--events file] [--json] [--read-only] [limits...]
                (rsftp serve -h lists every option and limit with its default)
       rsftp reconnect pid
                (a running rsftp's resumable session reconnects at once)
       rsftp demo [-q] [-size bytes] [-latency d] [-bandwidth bytes/s] [-cuts n] [-outage d]
                [-svg file] [-c cipher] [-timeout d]
       rsftp --version
       (rsftp COMMAND -h prints that command's usage and options)

  -a  resume a partial transfer, after checking the bytes already there
      (ls: list hidden names, . and .. too)
  -l limit  cp, get, put: limit the bandwidth to limit Kbit/s (ls: long listing)
  -p  preserve modification times and modes
  -q  quiet: no progress display or warnings
  -r  copy directories recursively
  -v  verbose: what happens while connecting, and after a failure's one-line
      message the error in full
  -J [user@]host[:port][,...]  connect through these jump hosts, in order (as
      ssh -J; each is looked up in ssh_config and authenticated, its host key
      checked in known_hosts); overrides ProxyJump and ProxyCommand
  --events file  append session events (connected, link_lost, reconnecting,
                 resumed, resume_failed, closed) to file as JSON lines
  --no-resume    plain SSH: do not offer session resumption

get, put and cp take several sources (into a directory), remote wildcards
('host:logs/*.gz', matched on the server), ~ and ~user in remote paths, and
sftp://[user@]host[:port]/path URIs. cp takes scp's syntax: either side may
be [user@]host:path or local; between two servers the data passes through
this machine (scp -3); -r follows symbolic links, goes on past files it
cannot copy and names them at the end (exit status 1).
ls sorts by name; -S by size, -t by time, -r reverses, -f keeps the server's
order, -1 one name per line, -l long (-n numeric ids, -h 1.5K sizes).

With a server that offers it (rsftp serve), a lost connection does not end
the transfer: rsftp reconnects by itself, without authenticating again, for
as long as the server holds the session. rsftp reconnect PID (or SIGUSR2; on
Windows, which has no such signal, any program that signals the event
Local\rsftp-reconnect-PID) makes rsftp process PID reconnect at once.
A reconnection goes the way the first connection went: through the same jump
hosts, or a new run of the ProxyCommand.
Against OpenSSH's sshd, get, put, ls, cp and sftp survive the same way
through rsftp's helper: rsftp runs itself on the server as a command (the
server's rsftp, or this binary, installed once in ~/.cache/rsftp/ when the
server runs the same system) and reconnects to it through sshd, logging in
again with the same keys. -o ResumeHelper=no (or in ssh_config, after
IgnoreUnknown ResumeHelper for ssh's sake) turns it off; =yes makes a
helper that cannot start an error, and asks again for a password at each
reconnection instead of going without the helper.

ssh_config is read as ssh reads it (Host, Match, Include, tokens); keywords
that rsftp cannot honour and whose omission would change where or how safely
it connects (KnownHostsCommand, BindInterface...) are errors; others it does
not use draw a warning.

OpenSSH certificates are used as ssh uses them: -i key with key-cert.pub
beside it, CertificateFile, certificates and security keys (sk-) held by
ssh-agent; host certificates are trusted through @cert-authority lines of
known_hosts, and @revoked lines and RevokedHostKeys (a KRL or a key list)
refuse keys, certificates and CAs.

A failure is one line on stderr that says what happened and what to do;
the exit status is 2 for a mistake on the command line (checked before
anything connects), 1 for other failures, 128 plus the signal's number
for an interrupted command.
`)
}

// exitError carries an exit status. Its err is a sentence for the user
// already (userMessage says it as it is).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return
	case "--version", "-version", "version":
		fmt.Print(versionText())
		return
	case "get", "put", "ls", "cp":
		if wantsHelp(cmd, args) {
			printCommandUsage(os.Stdout, cmd)
			return
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Which signal it was, for the exit status of an interrupted command
	// (NotifyContext's cause only says it in words).
	firstSig := make(chan os.Signal, 1)
	signal.Notify(firstSig, os.Interrupt, syscall.SIGTERM)
	stopProfiling, err := startProfiling()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rsftp: %v\n", err)
		os.Exit(2)
	}
	switch cmd {
	case "get":
		err = runInterruptible(ctx, firstSig, cmd, args, runGet)
	case "put":
		err = runInterruptible(ctx, firstSig, cmd, args, runPut)
	case "ls":
		err = runInterruptible(ctx, firstSig, cmd, args, runLs)
	case "cp":
		err = runInterruptible(ctx, firstSig, cmd, args, runCp)
	case "serve":
		err = runServe(ctx, args)
	case "demo":
		err = runDemo(args)
	case "reconnect":
		err = runReconnect(args)
	case "helper": // the remote end of a session through sshd (helper_unix.go)
		err = runHelper(ctx, args)
	case "attach":
		err = runAttach(args)
	case "sftp":
		stop() // the shell handles SIGINT itself (interactive.go)
		err = runSFTP(args)
	case "ssh":
		stop() // rsftp ssh handles its signals itself (ssh.go)
		code := runSSH(args)
		stopProfiling()
		os.Exit(code) // the remote command's status, or 255: ssh's, not the other commands'

	default:
		if looksLikeDestination(cmd) { // rsftp user@host[:path], as sftp
			stop()
			cmd, err = "sftp", runSFTP(os.Args[1:])
			break
		}
		fmt.Fprintf(os.Stderr, "rsftp: unknown command %q; the commands are get, put, ls, cp, sftp, ssh, serve, demo, reconnect (rsftp -h prints the usage)\n", cmd)
		os.Exit(2)
	}
	stopProfiling()
	if err != nil {
		// One line says what happened and what to do (userMessage);
		// a usage error names the command that prints the usage. -v
		// adds the whole error chain.
		msg := userMessage(err)
		ee, ok := err.(*exitError)
		if ok && ee.code == 2 {
			msg += " (rsftp " + cmd + " -h prints the usage)"
		}
		fmt.Fprintf(os.Stderr, "rsftp %s: %s\n", cmd, msg)
		if showErrorChain && msg != err.Error() {
			fmt.Fprintf(os.Stderr, "debug1: the error in full: %v\n", err)
		}
		if ok {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// interruptGrace is how long an interrupted command may take to return
// (the transfer to stop, the file to be cut back, the session to close)
// before rsftp exits without it: the whole must take under a second.
const interruptGrace = 800 * time.Millisecond

// runInterruptible runs a client command. When ctx ends (SIGINT or
// SIGTERM, whose value arrives on sig), it waits at most interruptGrace
// for the command, then returns an exitError with status 128 plus the
// signal's number that says what was kept and how to continue, never
// the context's "context canceled". A command that finished anyway
// succeeds.
func runInterruptible(ctx context.Context, sig <-chan os.Signal, cmd string, args []string, run func(context.Context, []string, *resumeNote) error) error {
	note := &resumeNote{cmd: cmd, args: args}
	res := make(chan error, 1)
	go func() { res <- run(ctx, args, note) }()
	var err error
	stuck := false
	select {
	case err = <-res:
		if ctx.Err() == nil || err == nil {
			var pe *sftp.PartialError
			if errors.As(err, &pe) {
				// A transfer that stopped: say the command that
				// continues it.
				err = &continuable{err: err, command: note.continueCommand()}
			}
			return err
		}
	case <-ctx.Done():
		t := time.NewTimer(interruptGrace)
		select {
		case err = <-res:
			if err == nil {
				t.Stop()
				return nil
			}
		case <-t.C:
			stuck = true
		}
		t.Stop()
	}
	if ee, ok := err.(*exitError); ok && ee.code == 2 {
		return err // a usage error stays one
	}
	name, code := "signal", 130
	select {
	case s := <-sig:
		if n, ok := s.(syscall.Signal); ok {
			code = 128 + int(n)
			name = sigName(n)
		}
	default:
	}
	return &exitError{code: code, err: note.interrupted(name, err, stuck)}
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

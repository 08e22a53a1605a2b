package main

// -h and --help of each command, and rsftp --version.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rsftp/rsftp/transport"
)

// connectionOptions are the options every client command shares, as
// each command's usage lists them.
const connectionOptions = `  -P port         the server's port (default 22, or Port in ssh_config)
  -i identity     a private key file to log in with (as ssh -i; repeatable)
  -c cipher       the ciphers to offer (as ssh -c)
  -F ssh_config   read this file instead of ~/.ssh/config and /etc/ssh/ssh_config
                  ("none" reads no file)
  -o option       an ssh_config option, as Key=Value (as ssh -o; repeatable)
  -J [user@]host[:port][,...]  connect through these jump hosts, in order (as
                  ssh -J; each is looked up in ssh_config, authenticated and its
                  host key checked); overrides ProxyJump and ProxyCommand
  -q              quiet: no progress display or warnings
  -v              verbose: say what happens while connecting, and the full
                  chain of an error after its one-line message
`

// commandUsages are the usages of get, put, ls and cp (serve, demo and
// sftp have their own).
var commandUsages = map[string]string{
	"get": `usage: rsftp get [-apqrv] [-l limit] [-X sftp_option] [-P port] [-i identity_file] [-c cipher]
                 [-F ssh_config] [-J destination] [-o ssh_option] [--events file]
                 [--no-resume] [user@]host:remote ... [local]

Copies remote files (wildcards matched on the server, ~ and ~user, and
sftp://[user@]host[:port]/path URIs) to local, "." if it is not given;
several sources go into a directory.

  -a              resume a partial local file, after checking that the bytes
                  already there match the server's
  -p              preserve modification times and modes
  -r              copy directories recursively
  -l limit        limit the bandwidth to limit Kbit/s
  -X sftp_option  buffer=N (bytes per READ), nrequests=N (requests in flight)
` + connectionOptions + resumeOptions,

	"put": `usage: rsftp put [-apqrv] [-l limit] [-X sftp_option] [-P port] [-i identity_file] [-c cipher]
                 [-F ssh_config] [-J destination] [-o ssh_option] [--events file]
                 [--no-resume] local ... [user@]host:[remote]

Copies local files to the server (into remote, the login directory if it
is empty); several sources go into a directory.

  -a              resume a partial remote file, after checking that the bytes
                  already there match
  -p              preserve modification times and modes
  -r              copy directories recursively
  -l limit        limit the bandwidth to limit Kbit/s
  -X sftp_option  buffer=N, nrequests=N as for cp; streams=N: SFTP sessions a
                  large upload spreads over (0 automatic: up to 10 to a server
                  granting a session little window, such as sshd; 1 one)
` + connectionOptions + resumeOptions,

	"ls": `usage: rsftp ls [-1afhlnrSt] [-P port] [-i identity_file] [-F ssh_config]
                [-J destination] [-o ssh_option] [user@]host:[path]

Lists a remote directory, file or wildcard as OpenSSH's sftp does.

  -1  one name per line (also whenever the output is not a terminal)
  -a  hidden names too, with . and ..
  -f  the server's order, unsorted
  -h  sizes as 1.5K, 2.0M (with -l; "rsftp ls -h" alone prints this help)
  -l  long listing
  -n  long listing with numeric user and group ids
  -r  reverse the order
  -S  sort by size
  -t  sort by modification time
` + connectionOptions,

	"cp": `usage: rsftp cp [-346ABCpqrv] [-c cipher] [-F ssh_config] [-i identity_file]
                [-J destination] [-l limit] [-o ssh_option] [-P port]
                [-X sftp_option] source ... target

Copies as scp does, over SFTP: either side may be [user@]host:path, an
sftp:// or scp:// URI, or a local path. Between two servers the data
passes through this machine (scp -3); several sources go into a
directory; -r follows symbolic links, goes on past what it cannot copy
and names it at the end (exit status 1).

  -a              resume partial files (rsftp's own; not between two servers)
  -p              preserve modification times and modes
  -r              copy directories recursively
  -l limit        limit the bandwidth to limit Kbit/s
  -X buffer=N     bytes per READ and WRITE request
  -X nrequests=N  requests in flight
  -X streams=N    SFTP sessions a large upload spreads over (0 automatic)
  -3 -s -T -A     accepted; they change nothing
  -4, -6          -o AddressFamily=inet, inet6
  -B              -o BatchMode=yes
  -C              -o Compression=yes (which rsftp does not do: it warns)
  -O -R -S -D     refused (legacy protocol, remote-to-remote, another
                  program): rsftp says why
` + connectionOptions,
}

const resumeOptions = `  --events file   append session events (connected, link_lost, reconnecting,
                  resumed, resume_failed, closed) to file as JSON lines
  --no-resume     plain SSH: do not offer session resumption

With a server that offers it (rsftp serve), a lost connection does not end
the transfer: rsftp reconnects by itself, without authenticating again,
for as long as the server holds the session. rsftp reconnect PID (or
SIGUSR2; on Windows, the event Local\rsftp-reconnect-PID) reconnects at once.
`

// wantsHelp reports whether a client command's arguments ask for its
// usage: --help, or -h among the options, read as the command reads them
// (a value such as -P's is not an option; "--" and the first operand end
// them). For ls, whose -h means human-readable sizes, -h asks for help
// only when no operand follows.
func wantsHelp(cmd string, args []string) bool {
	withValue := commonWithValue + "l"
	if cmd == "cp" {
		withValue += cpValLetters
	}
	if cmd == "ls" {
		withValue = commonWithValue
	}
	h := false
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if a == "--help" || a == "-help" {
			return true
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		if strings.HasPrefix(a, "--") {
			if a == "--events" {
				i++
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			if a[j] == 'h' {
				h = true
			}
			if strings.IndexByte(withValue, a[j]) >= 0 {
				if j == len(a)-1 {
					i++
				}
				break
			}
		}
	}
	if cmd == "ls" {
		return h && i >= len(args)
	}
	return h
}

// printCommandUsage prints cmd's usage to w.
func printCommandUsage(w io.Writer, cmd string) {
	fmt.Fprint(w, commandUsages[cmd])
}

// versionText is what rsftp --version prints: the module's version, the
// commit it was built from when the build recorded it, and Go's version.
func versionText() string {
	version, rev, when, modified := "(unknown)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	s := "rsftp " + version
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " (commit " + rev
		if when != "" {
			s += ", " + when
		}
		if modified {
			s += ", with local changes"
		}
		s += ")"
	}
	return fmt.Sprintf("%s, built with %s for %s/%s\n", s, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// optionNeedsValue is the error of an option given last without its
// value.
func optionNeedsValue(c byte) error {
	what := map[byte]string{
		'P': "a port number", 'i': "a private key file", 'c': "a cipher name (or a list)",
		'F': "an ssh_config file", 'o': "an option, as Key=Value", 'J': "a jump host, [user@]host[:port]",
		'l': "a limit in Kbit/s", 'X': "buffer=N or nrequests=N", 'b': "a batch file (- for stdin)",
		'B': "a buffer size in bytes", 'R': "a number of requests", 'S': "a program", 'D': "a path",
		's': "a subsystem name",
	}[c]
	if what == "" {
		what = "a value"
	}
	return fmt.Errorf("option -%c needs %s", c, what)
}

// checkOptionValue checks the value of a common option when it is read,
// so that a mistake is a usage error (exit status 2) named after its
// option: a port that is no number ("Bad port", as OpenSSH's sftp and
// scp say), an -o that is no ssh_config option (read after the -o
// options before it, whose IgnoreUnknown applies), a -J list or a -c
// cipher rsftp does not know.
func checkOptionValue(c byte, val string, earlier []string) error {
	switch c {
	case 'P':
		if n, err := strconv.Atoi(val); err != nil || n < 1 || n > 65535 {
			hint := "a port is a number from 1 to 65535"
			if strings.ContainsAny(val, ":@") {
				hint = "-P takes a port number, and this looks like the destination"
			}
			return fmt.Errorf("Bad port %q: %s", val, hint)
		}
	case 'o':
		cfg := newSSHConfig()
		for _, o := range earlier {
			cfg.parseOption(o)
		}
		if err := cfg.parseOption(val); err != nil {
			return fmt.Errorf("-o %s: %s", val, strings.TrimPrefix(err.Error(), "command-line: "))
		}
	case 'J':
		if !strings.EqualFold(val, "none") {
			if _, err := parseJumpList(val, true); err != nil {
				return fmt.Errorf("invalid -J argument %q: %w", val, err)
			}
		}
	case 'c':
		if _, err := algorithmList(val, transport.SupportedCiphers(), "cipher"); err != nil {
			return fmt.Errorf("Unknown cipher %q: rsftp supports %s", val, strings.Join(transport.SupportedCiphers(), ", "))
		}
	}
	return nil
}

// flagError says an error of the flag package (serve's and demo's
// options) as the other commands say theirs: "unknown option --x",
// "option --hold needs a value", "invalid value "x" for --hold (a
// duration, such as 90s, 30m or 2h)". dashes is how the usage writes
// the options ("--" for serve, "-" for demo).
func flagError(err error, fs *flag.FlagSet, dashes string) error {
	s := err.Error()
	name := func(n string) string { return dashes + strings.TrimLeft(n, "-") }
	if n, ok := strings.CutPrefix(s, "flag provided but not defined: "); ok {
		return fmt.Errorf("unknown option %s", name(n))
	}
	if n, ok := strings.CutPrefix(s, "flag needs an argument: "); ok {
		return fmt.Errorf("option %s needs a value", name(n))
	}
	// `invalid value "x" for flag -name: why`, and `invalid boolean
	// value "x" for -name: parse error`.
	sep := " for flag "
	if !strings.Contains(s, sep) {
		sep = " for -"
	}
	val, rest, ok := strings.Cut(s, sep)
	if !ok {
		return err
	}
	fl, why, _ := strings.Cut(rest, ": ")
	val = strings.TrimPrefix(strings.TrimPrefix(val, "invalid value "), "invalid boolean value ")
	msg := fmt.Sprintf("invalid value %s for %s", val, name(fl))
	var want string
	if f := fs.Lookup(strings.TrimLeft(fl, "-")); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			switch g.Get().(type) {
			case time.Duration:
				want = "a duration, such as 90s, 30m or 2h"
			case int, int64, uint, uint64:
				want = "a whole number"
			case bool:
				want = "true or false"
			}
		}
	}
	switch {
	case want != "":
		msg += " (" + want + ")"
	case why != "" && why != "parse error":
		msg += ": " + why
	}
	return errors.New(msg)
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/auth"
)

// fuzzConfigFiles are the files FuzzSSHConfig writes, in the order the
// input's NUL-separated parts fill them: the file read first, then two
// more that Include can reach by relative name or glob.
var fuzzConfigFiles = []string{"config", "inc.conf", "other"}

// unhermeticInclude reports a line that could make Include reach outside
// the fuzz directory (an absolute or home-relative path, a parent
// directory): such inputs are skipped, so the target reads no file of the
// machine it runs on. Deliberately coarse: any line mentioning include.
func unhermeticInclude(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(strings.ToLower(line), "include") &&
			(strings.ContainsAny(line, "/~\\%$") || strings.Contains(line, "..")) {
			return true
		}
	}
	return false
}

// asciiUpper upper-cases ASCII letters only, so that strings.ToLower
// maps it back to what it maps the original to.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// lookupTimeout bounds one lookup: a config (with its Includes) is a few
// small files here, so anything near this is runaway work.
const lookupTimeout = 5 * time.Second

type lookupResult struct {
	cfg *sshConfig
	err error
}

// lookup does what buildConfig does for a destination: -o options
// first, then the file. It fails the test if the lookup does not finish
// in lookupTimeout (the goroutine is left behind: the process fails).
func lookup(t *testing.T, opt, path, host string) lookupResult {
	t.Helper()
	done := make(chan lookupResult, 1)
	start := time.Now()
	go func() {
		c := newSSHConfig()
		if opt != "" {
			c.parseOption(opt) // a refused option records nothing
		}
		err := c.readFile(path, &pass{env: testEnv(filepath.Dir(path)), hostArg: host, host: host}, true, true, false)
		done <- lookupResult{c, err}
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(lookupTimeout):
		t.Fatalf("lookup of %q still running after %v: unbounded work", host, time.Since(start))
		return lookupResult{}
	}
}

// FuzzSSHConfig reads arbitrary ssh_config files (Host patterns,
// negation, Match, Include by relative name and glob, quoted values,
// Key=Value, comments, very long lines) for a destination, after an
// arbitrary -o option. data is split at NUL bytes into up to three files
// in one directory; the first is the one read. Checked, when the read
// succeeds: it ends within lookupTimeout; only keywords rsftp implements
// are recorded, once each except IdentityFile; every word of every value
// occurs in the text of the files or the option (nothing is invented);
// validated keywords hold valid values; and, for a file without Include,
// appending more blocks never changes a value already set (the first
// value wins). (Host patterns match case-sensitively, as ssh's
// match_pattern; Match host and originalhost ignore case.) Match exec
// runs no command here (testEnv), and Include reads only the fuzz
// directory.
func FuzzSSHConfig(f *testing.F) {
	f.Add("web", "", []byte("Host web !web-private\n  HostName 198.18.0.10\n  Port 2201\n  IdentityFile ~/.ssh/web_key\nHost *\n  User everyone\n  IdentityFile ~/.ssh/default_key\n"))
	f.Add("inc-1", "Port=2999", []byte("Include inc.conf\nHost *\n  User u\n\x00Host inc-*\n  User included\n  Port 2022\n"))
	f.Add("x", "", []byte("Include *\nHost x\n  Port 7\n\x00Include other\n\x00User from-other\n"))
	f.Add("x", "User=\"quoted user\"", []byte("Host=\"x\" y\n  HostName = \"a b\" # comment\n  User\t=\tme\n"))
	f.Add("host.example", "", []byte("Host *.example !bad.example\n  Ciphers aes128-ctr,aes256-gcm@openssh.com\n  StrictHostKeyChecking accept-new\n  ConnectTimeout none\n"))
	f.Add("a", "", []byte("Match all\n  User m\nMatch host a\n  User n\nIgnoreUnknown foo*\nFooBar 1\nControlMaster auto\n"))
	f.Add("a", "LogLevel DEBUG", []byte("Host a\n  Port 0\n"))
	f.Add("a", "", []byte("Host \"unterminated\n"))
	f.Add("a", "", append([]byte("Host a\n  User "), bytes.Repeat([]byte("x"), 70000)...))
	dir, err := os.MkdirTemp("", "fuzzsshconfig")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	f.Fuzz(func(t *testing.T, host, opt string, data []byte) {
		parts := bytes.SplitN(data, []byte{0}, len(fuzzConfigFiles))
		var texts []string
		for i, name := range fuzzConfigFiles {
			var p []byte
			if i < len(parts) {
				p = parts[i]
			}
			if unhermeticInclude(string(p)) {
				return
			}
			texts = append(texts, string(p))
			if err := os.WriteFile(filepath.Join(dir, name), p, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, fuzzConfigFiles[0])
		r := lookup(t, opt, path, host)
		if r.err != nil {
			return
		}
		c := r.cfg
		sources := append(texts, opt)
		// Quotes and backslashes are taken out of values as ssh's
		// argv_split does: compare without them.
		unquote := strings.NewReplacer(`"`, "", "'", "", `\`, "")
		inSources := func(w string) bool {
			w = unquote.Replace(w)
			for _, s := range sources {
				if strings.Contains(unquote.Replace(s), w) {
					return true
				}
			}
			return false
		}
		for k, vs := range c.vals {
			if !implemented[k] || !sshKeywords[k] {
				t.Fatalf("recorded keyword %q rsftp does not implement", k)
			}
			// Every occurrence of a multi keyword counts, and a file
			// list keeps each file as a value of its own (a quoted name
			// with blanks stays whole).
			if len(vs) == 0 || len(vs) > 1 && !multi[k] && !fileList[k] {
				t.Fatalf("%s has %d values", k, len(vs))
			}
			for _, v := range vs {
				if strings.Contains(v, "\n") && !strings.Contains(opt, "\n") {
					t.Fatalf("%s value %q spans lines", k, v)
				}
				for _, w := range strings.Split(v, " ") {
					if !inSources(w) {
						t.Fatalf("%s value %q: %q occurs in no file nor option", k, v, w)
					}
				}
			}
		}
		// Validated keywords hold values that parse whole, as connect.go
		// reads them (strconv.Atoi, yes, auth.ParseStrictMode).
		if v, ok := c.get("port"); ok {
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
				t.Fatalf("port %q accepted", v)
			}
		}
		for _, k := range []string{"serveraliveinterval", "serveralivecountmax", "numberofpasswordprompts", "connecttimeout"} {
			if v, ok := c.get(k); ok && !(k == "connecttimeout" && v == "none") {
				if n, err := strconv.Atoi(v); err != nil || n < 0 {
					t.Fatalf("%s %q accepted", k, v)
				}
			}
		}
		for _, k := range []string{"batchmode", "identitiesonly", "hashknownhosts", "passwordauthentication", "pubkeyauthentication"} {
			if v, ok := c.get(k); ok {
				switch strings.ToLower(v) {
				case "yes", "no", "true", "false":
				default:
					t.Fatalf("%s %q accepted", k, v)
				}
			}
		}
		if v, ok := c.get("stricthostkeychecking"); ok {
			if _, err := auth.ParseStrictMode(v); err != nil {
				t.Fatalf("StrictHostKeyChecking %q accepted", v)
			}
		}
		if v, ok := c.get("loglevel"); ok {
			switch strings.ToUpper(v) {
			case "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3":
			default:
				t.Fatalf("LogLevel %q accepted", v)
			}
		}

		// First value wins: more blocks at the end change nothing set.
		if strings.Contains(strings.ToLower(strings.Join(texts, "\n")), "include") {
			return
		}
		extra := texts[0]
		if extra != "" && !strings.HasSuffix(extra, "\n") {
			extra += "\n"
		}
		extra += "Host *\n  User appended\n  Port 2\n  HostName appended.example\n  IdentityFile appended_key\n  BatchMode yes\n"
		if err := os.WriteFile(path, []byte(extra), 0o600); err != nil {
			t.Fatal(err)
		}
		r3 := lookup(t, opt, path, host)
		if r3.err != nil {
			// The last line may have been unfinished (an open
			// quote now closed by nothing, a too-long line).
			return
		}
		for k, vs := range c.vals {
			got := r3.cfg.vals[k]
			if len(got) < len(vs) || !reflect.DeepEqual(got[:len(vs)], vs) {
				t.Fatalf("%s: %q after appending blocks, %q before", k, got, vs)
			}
		}
	})
}

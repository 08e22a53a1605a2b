package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/rsftp/rsftp/sftp"
)

func TestShellSplitLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"ls -l  dir", []string{"ls", "-l", "dir"}},
		{`get "a file" 'b c'`, []string{"get", "a file", "b c"}},
		{`get a\ file`, []string{"get", "a file"}},
		{`rm \*.txt`, []string{"rm", `\*.txt`}},  // an escaped glob character stays escaped
		{`rm "*.txt"`, []string{"rm", "*.txt"}},  // quotes do not stop globbing, as in sftp
		{`put 'it\'s'`, []string{"put", "it's"}}, // an escaped quote inside quotes
		{`put "a\b"`, []string{"put", `a\\b`}},   // a backslash before another letter is itself
		{`put a\\b`, []string{"put", `a\\b`}},    // an escaped backslash
		{`ls ""`, []string{"ls", ""}},            // an empty word
		{"  pwd \t", []string{"pwd"}},
	} {
		got, err := splitLine(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitLine(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`get "open`, `get 'open`, `get end\`} {
		if _, err := splitLine(bad); err == nil {
			t.Errorf("splitLine(%q) succeeded", bad)
		}
	}
	if got := unescape(`a\\b\*c`); got != `a\b*c` {
		t.Errorf("unescape: %q", got)
	}
	if w, _ := splitLine("get " + escapeWord(`we*ird 'name"\`)); w[1] != `we\*ird 'name"\\` || unescape(w[1]) != `we*ird 'name"\` {
		t.Errorf("escapeWord round trip: %q", w)
	}
}

func TestShellArgs(t *testing.T) {
	f, sa, err := parseSFTPArgs([]string{"-o", "BatchMode=no", "-b", "cmds", "-P2222", "-rp", "-R", "16", "-B", "65536", "-i", "k", "u@h:dir"})
	if err != nil {
		t.Fatal(err)
	}
	if !sa.hasBatch || sa.batchFile != "cmds" || sa.dest != "u@h:dir" || f.port != "2222" || !f.recursive || !f.preserve || len(sa.clientOpts) != 3 {
		t.Errorf("parsed %+v %+v", f, sa)
	}
	// -b adds BatchMode=yes where it stands: a BatchMode given before
	// it wins, as ssh takes the first value.
	if !reflect.DeepEqual(f.options, []string{"BatchMode=no", "BatchMode=yes"}) {
		t.Errorf("options %q", f.options)
	}
	for _, bad := range [][]string{
		{"-l", "100", "h"}, {"-S", "ssh", "h"}, {"-s", "other", "h"}, {"-1", "h"}, {"-Z", "h"},
		{"-R", "0", "h"}, {"-b"}, {"h1", "h2"}, {}, {"-X", "foo=1", "h"},
	} {
		if _, _, err := parseSFTPArgs(bad); err == nil {
			t.Errorf("parseSFTPArgs(%q) succeeded", bad)
		} else if ee, ok := err.(*exitError); !ok || ee.code != 2 {
			t.Errorf("parseSFTPArgs(%q): %v is not a usage error", bad, err)
		}
	}
	if _, sa, err := parseSFTPArgs([]string{"-C", "-A", "-4", "h"}); err != nil || len(sa.warnings) != 2 {
		t.Errorf("-C -A -4: %v %q", err, sa.warnings)
	}
	if _, _, err := parseSFTPArgs([]string{"-h"}); !errors.Is(err, errSFTPHelp) {
		t.Errorf("-h: %v", err)
	}

	for in, want := range map[string]remoteSpec{
		"host":                   {host: "host"},
		"u@host":                 {user: "u", host: "host"},
		"u@host:some/dir":        {user: "u", host: "host", path: "some/dir"},
		"[::1]":                  {host: "::1"},
		"u@[::1]:/tmp":           {user: "u", host: "::1", path: "/tmp"},
		"sftp://u@h.example/a/b": {user: "u", host: "h.example", path: "a/b"},
	} {
		got, err := parseDest(in, &commonFlags{})
		if err != nil || got != want {
			t.Errorf("parseDest(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	f = &commonFlags{}
	if _, err := parseDest("sftp://h:2200/", f); err != nil || f.port != "2200" {
		t.Errorf("sftp:// port: %q %v", f.port, err)
	}
	for w, want := range map[string]bool{"u@h": true, "h:": true, "h:/x": true, "get": false, "cp": false, "-h": false, "host": false} {
		if looksLikeDestination(w) != want {
			t.Errorf("looksLikeDestination(%q) != %v", w, want)
		}
	}
}

// TestShellCtrlCReader: a Ctrl-C becomes "^C" and Enter at the end of
// the line, handed over on its own after what was typed before it, and
// marks that line alone as interrupted.
func TestShellCtrlCReader(t *testing.T) {
	k := &ctrlCReader{r: strings.NewReader("ls\rab\x03pwd\r")}
	var reads []string
	buf := make([]byte, 64)
	for {
		n, err := k.Read(buf)
		if n > 0 {
			reads = append(reads, string(buf[:n]))
			if strings.Contains(string(buf[:n]), "^C") != k.takeInterrupt() {
				t.Errorf("interrupt flag wrong after %q", buf[:n])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"ls\rab", "\x05^C\r", "pwd\r"}; !reflect.DeepEqual(reads, want) {
		t.Errorf("reads %q, want %q", reads, want)
	}

	interrupted := false
	h := &history{skip: func() bool { return interrupted }}
	for _, l := range []string{"ls", "", "ls", "pwd"} {
		h.Add(l)
	}
	interrupted = true
	h.Add("dropped^C")
	if h.Len() != 2 || h.At(0) != "pwd" || h.At(1) != "ls" {
		t.Errorf("history %q", h.lines)
	}
}

func TestShellExplain(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "open", Path: "/x", Err: &sftp.StatusError{Code: sftp.StatusNoSuchFile, Message: "no such file or directory"}}, `remote open "/x": No such file`},
		{&fs.PathError{Op: "mkdir", Path: "/d", Err: &sftp.StatusError{Code: sftp.StatusFailure, Message: "file exists"}}, `remote mkdir "/d": Failure (file exists)`},
		{&os.LinkError{Op: "rename", Old: "/a", New: "/b", Err: &sftp.StatusError{Code: sftp.StatusPermissionDenied}}, `remote rename "/a" to "/b": Permission denied`},
		{&fs.PathError{Op: "open", Path: "/l/f", Err: syscall.EACCES}, `local open "/l/f": Permission denied`},
		{errors.New("plain"), "plain"},
	} {
		if got := explain(c.err); got != c.want {
			t.Errorf("explain(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	pe := &sftp.PartialError{Op: "download", Src: "/r/big", Dst: "big", Done: 3 << 20, Err: sftp.ErrInterrupted}
	got := interruptedTransfer("get", "/r/big", "big", sftp.TransferOptions{}, pe).Error()
	if got != `get interrupted: kept the first 3145728 bytes (3.0MB) of /r/big in big; "reget /r/big big" continues it` {
		t.Errorf("interrupted get: %q", got)
	}
}

// TestShellHelpListsEveryCommand: help names every command, and every
// command has a usage and a description.
func TestShellHelpListsEveryCommand(t *testing.T) {
	var b bytes.Buffer
	sh := &shell{}
	sh.cmdHelp(&call{out: &b})
	for _, c := range shellCommands {
		for _, n := range c.names {
			if !strings.Contains(b.String(), "\n"+n) && n != "?" {
				t.Errorf("help does not list %s", n)
			}
		}
		if c.usage == "" || c.help == "" || c.args == "" {
			t.Errorf("command %s lacks usage, help or completion kinds", c.names[0])
		}
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rsftp/rsftp"
)

// drawnLines splits what a progress wrote into the lines a terminal
// shows: each carriage return starts one anew.
func drawnLines(out string) []string {
	var lines []string
	for _, l := range strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' }) {
		lines = append(lines, strings.ReplaceAll(l, "\x1b[K", ""))
	}
	return lines
}

// TestProgressFitsTerminal: every state of the progress line, on terminals
// of 41 to 200 columns, fits in one column less than the width (a line as
// wide as the terminal wraps on some, and leaves a line per redraw).
func TestProgressFitsTerminal(t *testing.T) {
	names := []string{"big.tar", strings.Repeat("a-very-long-file-name-", 8) + ".tar", "日本語のファイル名.txt"}
	statuses := []string{"",
		"reconnecting (try 12); held 59m58s more",
		"link lost; session held 1h0m",
		strings.Repeat("x", 300)}
	for _, w := range []int{41, 60, 80, 132, 200} {
		for _, name := range names {
			for _, st := range statuses {
				var buf bytes.Buffer
				p := &progress{out: &buf, on: true, width: w}
				p.update(name, 1<<30, 50<<30, false)
				p.setStatus(st)
				p.update(name, 50<<30, 50<<30, true)
				for _, l := range drawnLines(buf.String()) {
					if n := utf8.RuneCountInString(l); n > w-1 {
						t.Errorf("width %d, name %.20q, status %.20q: %d columns: %q", w, name, st, n, l)
					}
				}
			}
		}
	}
}

// TestResumedLeavesOneLine: a resumption prints one line that stays, and
// the progress line is drawn again below it; the transient states do
// not stay.
func TestResumedLeavesOneLine(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{out: &buf, on: true, width: 80}
	p.update("big.tar", 10<<20, 100<<20, false)
	showEvent(rsftp.Event{Kind: rsftp.EventLinkLost, HoldLeft: time.Hour}, p, &logger{})
	showEvent(rsftp.Event{Kind: rsftp.EventReconnecting, Attempt: 3, HoldLeft: 59*time.Minute + 58*time.Second}, p, &logger{})
	showEvent(rsftp.Event{Kind: rsftp.EventResumed, Offline: 2100 * time.Millisecond, Retransmitted: 3 << 20}, p, &logger{})
	out := buf.String()
	kept := strings.Split(out, "\n")
	if len(kept) != 2 {
		t.Fatalf("%d lines left in the scrollback, want 1 and the progress line: %q", len(kept)-1, out)
	}
	last := drawnLines(kept[0])
	if got := last[len(last)-1]; got != "resumed after 2.1s offline; 3.0MB sent again by this side" {
		t.Errorf("the line kept: %q", got)
	}
	if !strings.Contains(out, "reconnecting (try 3); held 59m58s more") {
		t.Errorf("no reconnecting status: %q", out)
	}
	if l := drawnLines(kept[1]); len(l) != 1 || !strings.HasPrefix(l[0], "big.tar") || strings.Contains(l[0], "reconnecting") {
		t.Errorf("the progress line after the resumption: %q", kept[1])
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2100 * time.Millisecond:                   "2.1s",
		59*time.Minute + 58*time.Second:           "59m58s",
		time.Hour:                                 "1h0m",
		90*time.Minute + 20*time.Second:           "1h30m",
		25*time.Hour + 1*time.Minute:              "25h1m",
		12 * time.Second:                          "12s",
		8*time.Millisecond + 300*time.Microsecond: "8ms",
		0:                      "0s",
		999 * time.Millisecond: "999ms",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

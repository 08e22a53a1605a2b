package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// progress draws one line per file on a terminal, like scp: name,
// percentage, bytes, rate and ETA, redrawn at most a few times a second.
// It is silent when disabled (-q, or stderr is not a terminal).
type progress struct {
	mu      sync.Mutex
	out     io.Writer
	on      bool
	width   int
	file    string
	total   int64
	done    int64
	start   time.Time
	last    time.Time
	status  string // such as "reconnecting (server holds the session 9m58s)"
	startAt int64  // bytes already there when the file began (resume)
	stopped bool   // stop was called: draw nothing more
}

func newProgress(quiet bool) *progress {
	p := &progress{out: os.Stderr}
	fd := int(os.Stderr.Fd())
	if !quiet && term.IsTerminal(fd) {
		p.on = true
		if w, _, err := term.GetSize(fd); err == nil && w > 40 {
			p.width = w
		} else {
			p.width = 80
		}
	}
	return p
}

// enabled reports whether the progress line is drawn (the interactive
// shell turns it on and off between transfers, under mu).
func (p *progress) enabled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on
}

// update is called with a file's progress; finished ends its line.
func (p *progress) update(file string, done, total int64, finished bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on || p.stopped {
		return
	}
	now := time.Now()
	if file != p.file {
		p.file, p.start, p.startAt = file, now, done
	}
	p.done, p.total = done, total
	if !finished && now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	p.draw(now, finished)
	if finished {
		fmt.Fprintln(p.out)
		p.file = ""
	}
}

// setStatus shows a transient state (reconnecting...) instead of the
// rate until cleared with "".
func (p *progress) setStatus(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on || p.stopped {
		return
	}
	p.status = s
	p.draw(time.Now(), false)
}

// stop ends the line being drawn, so that a message can follow it on
// its own line (an interrupted transfer's), and draws nothing more.
func (p *progress) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return
	}
	if !p.stopped && (p.file != "" || p.status != "") {
		fmt.Fprintln(p.out)
	}
	p.stopped = true
}

// note prints msg on a line of its own above the progress line, which is
// then drawn again: what stays in the scrollback (a resumption).
func (p *progress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on || p.stopped {
		return
	}
	fmt.Fprintf(p.out, "\r%s\x1b[K\n", fit(msg, p.width-1))
	if p.file != "" || p.status != "" {
		p.draw(time.Now(), false)
	}
}

// minNameRoom is the least of a progress line left to the file's name.
const minNameRoom = 8

func (p *progress) draw(now time.Time, finished bool) {
	fmt.Fprintf(p.out, "\r%s\x1b[K", p.line(now, finished))
}

// line is the progress line, at most width-1 columns: a line as wide as
// the terminal would wrap at its last column on some terminals, and each
// redraw (a carriage return) would then leave a line behind.
func (p *progress) line(now time.Time, finished bool) string {
	cols := p.width - 1
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done-p.startAt) / elapsed
	}
	pct := 100
	if p.total > 0 {
		pct = int(p.done * 100 / p.total)
	}
	tail := ""
	switch {
	case p.status != "":
		tail = p.status
	case finished:
		tail = fmt.Sprintf("%s/s   %s", human(rate), clock(elapsed))
	default:
		eta := "--:--"
		if rate > 0 && p.total >= p.done {
			eta = clock(float64(p.total-p.done) / rate)
		}
		tail = fmt.Sprintf("%s/s   %s ETA", human(rate), eta)
	}
	head := fmt.Sprintf(" %3d%% %8s ", pct, human(float64(p.done)))
	if p.file == "" {
		// A status with no file yet (reconnecting before the first).
		return fit(tail, cols)
	}
	// A long status gives way to the name's minimum, then is cut.
	tail = fit(tail, cols-minNameRoom-len(head))
	right := head + tail
	room := max(cols-width(right), minNameRoom)
	name := fit(path.Base(p.file), room)
	return name + strings.Repeat(" ", room-width(name)) + right
}

// width is the columns s takes (one per rune: names with wide characters
// may take more, which only shortens what fits).
func width(s string) int { return utf8.RuneCountInString(s) }

// fit cuts s to at most n columns, ending it with "..." when cut.
func fit(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if width(s) <= n {
		return s
	}
	r := []rune(s)
	if n <= 3 {
		return string(r[:n])
	}
	return string(r[:n-3]) + "..."
}

func human(v float64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f%s", v, units[i])
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

func clock(sec float64) string {
	s := int(sec + 0.5)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

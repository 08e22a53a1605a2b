// Command ptybench measures interactive SSH clients as a person at a
// terminal meets them, for scripts/bench-ssh.sh (issue 18): the client
// runs on a pseudo-terminal of its own, its connection goes through a
// relay on loopback that delays each direction, and ptybench types and
// watches the screen.
//
//	ptybench echo   -to ADDR -delay D [-n N] [-ready S] -- CLIENT ARGS...
//	ptybench outage -to ADDR -delay D [-cuts N] [-down D] [-signal USR2] -- CLIENT ARGS...
//
// In CLIENT ARGS, the word %PORT% becomes the relay's port: the client
// connects to 127.0.0.1:%PORT% and the relay to -to.
//
// echo waits until the screen shows -ready (a remote command prints it,
// then runs something that echoes, such as cat on a pty), then types N
// keys one at a time, each when the previous one's echo arrived after a
// pause, and reports the time from each key to its echo: a round trip of
// the link plus what both ends add.
//
// outage expects the remote command to print numbered lines ("%d\n",
// from 1) without end. After the first lines it cuts the link -cuts times:
// the relay stops forwarding on every connection it has (a blackhole:
// nothing is lost, nothing arrives) and closes each new connection at
// once, for -down; then it lets new connections through (the old ones
// stay dead, as a path that went away) and, with -signal, sends the client
// that signal at that moment (the notice a new interface address gives
// the client: rsftp's manual reconnection is SIGUSR2). It reports, for
// each cut, the time from the link's return to the first line after the
// cut on the screen, and checks that every line arrived once, in order.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "echo":
		err = runEcho(os.Args[2:])
	case "outage":
		err = runOutage(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptybench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: ptybench echo -to ADDR -delay D [-n N] [-ready S] -- CLIENT ARGS...
       ptybench outage -to ADDR -delay D [-cuts N] [-down D] [-signal SIG] -- CLIENT ARGS...
`)
	os.Exit(2)
}

// wait bounds every wait for the screen: a stuck client fails the run.
const wait = 60 * time.Second

// screen is a client on a pseudo-terminal and what it has shown.
type screen struct {
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	cond   *sync.Cond
	out    []byte
	times  []time.Time // when out grew, per read
	ends   []int       // len(out) after each read
	done   bool
}

func openPTY() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		unix.Close(fd)
		unix.Close(sfd)
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), os.NewFile(uintptr(sfd), name), nil
}

// start runs args on a new pseudo-terminal, as the leader of a session
// whose controlling terminal it is.
func start(args []string) (*screen, error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	defer slave.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, err
	}
	s := &screen{master: master, cmd: cmd}
	s.cond = sync.NewCond(&s.mu)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := master.Read(buf)
			now := time.Now()
			s.mu.Lock()
			if n > 0 {
				s.out = append(s.out, buf[:n]...)
				s.times = append(s.times, now)
				s.ends = append(s.ends, len(s.out))
			}
			if err != nil {
				s.done = true
			}
			s.cond.Broadcast()
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		// The terminal's reader ends with EIO once the client is gone
		// and the slave closed; wake waiters in any case.
		time.Sleep(100 * time.Millisecond)
		s.mu.Lock()
		s.done = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	return s, nil
}

// waitFor waits until the screen shows pat at or after from, and returns
// the offset just past it and when the read that completed it arrived.
func (s *screen) waitFor(from int, pat []byte) (int, time.Time, error) {
	deadline := time.Now().Add(wait)
	t := time.AfterFunc(wait, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer t.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if i := bytes.Index(s.out[from:], pat); i >= 0 {
			end := from + i + len(pat)
			j, _ := slices.BinarySearch(s.ends, end)
			return end, s.times[j], nil
		}
		if s.done {
			return 0, time.Time{}, fmt.Errorf("client ended before showing %q; screen:\n%s", pat, tail(s.out))
		}
		if time.Now().After(deadline) {
			return 0, time.Time{}, fmt.Errorf("no %q on the screen within %v; screen:\n%s", pat, wait, tail(s.out))
		}
		s.cond.Wait()
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func (s *screen) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		s.cmd.Process.Kill()
	}
	s.master.Close()
}

// relay forwards 127.0.0.1:port to an address, each direction delayed.
// While cut, it forwards nothing on its connections and closes new ones.
type relay struct {
	ln    net.Listener
	to    string
	delay time.Duration
	mu    sync.Mutex
	cut   bool
	gen   int // connections of an earlier generation stay dead
}

func newRelay(to string, delay time.Duration) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, to: to, delay: delay}
	go r.accept()
	return r, nil
}

func (r *relay) port() string { return strconv.Itoa(r.ln.Addr().(*net.TCPAddr).Port) }

func (r *relay) setCut(cut bool) {
	r.mu.Lock()
	r.cut = cut
	if cut {
		r.gen++
	}
	r.mu.Unlock()
}

// alive reports whether a connection of generation g may still forward.
func (r *relay) alive(g int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.cut && g == r.gen
}

func (r *relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		cut, g := r.cut, r.gen
		r.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		go r.serve(c, g)
	}
}

func (r *relay) serve(c net.Conn, g int) {
	defer c.Close()
	// TCP's handshake costs a round trip on a real link.
	time.Sleep(2 * r.delay)
	s, err := net.Dial("tcp", r.to)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	go func() { r.pipe(s, c, g); done <- struct{}{} }()
	go func() { r.pipe(c, s, g); done <- struct{}{} }()
	<-done
}

// pipe copies src to dst, each read delivered delay later, in order; a
// connection of a generation that was cut stops delivering for good
// (what it read is held, as a dead path holds it) until it is closed.
func (r *relay) pipe(dst, src net.Conn, g int) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b[:n], time.Now().Add(r.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range q {
		time.Sleep(time.Until(ch.at))
		for !r.alive(g) {
			r.mu.Lock()
			dead := g != r.gen
			r.mu.Unlock()
			if dead {
				// Hold the connection open and silent until the
				// client gives up on it.
				for range q {
				}
				return
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := dst.Write(ch.b); err != nil {
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

type common struct {
	to    string
	delay time.Duration
	args  []string
}

func parse(fs *flag.FlagSet, args []string, c *common) error {
	fs.StringVar(&c.to, "to", "", "the server's address")
	fs.DurationVar(&c.delay, "delay", 0, "one-way delay of each direction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.args = fs.Args()
	if c.to == "" || len(c.args) == 0 {
		return errors.New("need -to and a client command after --")
	}
	return nil
}

func (c *common) client(r *relay) []string {
	out := make([]string, len(c.args))
	for i, a := range c.args {
		out[i] = strings.ReplaceAll(a, "%PORT%", r.port())
	}
	return out
}

func runEcho(args []string) error {
	var c common
	fs := flag.NewFlagSet("echo", flag.ExitOnError)
	n := fs.Int("n", 100, "keys to type")
	ready := fs.String("ready", "READY", "what the screen shows once the remote side echoes")
	pause := fs.Duration("pause", 20*time.Millisecond, "pause between a key's echo and the next key")
	if err := parse(fs, args, &c); err != nil {
		return err
	}
	r, err := newRelay(c.to, c.delay)
	if err != nil {
		return err
	}
	s, err := start(c.client(r))
	if err != nil {
		return err
	}
	defer s.stop()
	at, _, err := s.waitFor(0, []byte(*ready))
	if err != nil {
		return err
	}
	// Let the login's last packets settle before the first key.
	time.Sleep(200 * time.Millisecond)
	var lat []time.Duration
	keys := "abcdefghijklmnopqrstuvwxyz"
	for i := 0; i < *n; i++ {
		k := keys[i%len(keys)]
		sent := time.Now()
		if _, err := s.master.Write([]byte{k}); err != nil {
			return err
		}
		end, seen, err := s.waitFor(at, []byte{k})
		if err != nil {
			return err
		}
		lat = append(lat, seen.Sub(sent))
		at = end
		if i%32 == 31 {
			// End the line so that the remote terminal's line buffer
			// stays short; its echo is not measured.
			s.master.Write([]byte{'\r'})
			if at, _, err = s.waitFor(at, []byte("\n")); err != nil {
				return err
			}
		}
		time.Sleep(*pause)
	}
	slices.Sort(lat)
	fmt.Printf("keys %d median %.2fms p10 %.2fms p90 %.2fms min %.2fms max %.2fms\n", len(lat),
		ms(lat[len(lat)/2]), ms(lat[len(lat)/10]), ms(lat[len(lat)*9/10]), ms(lat[0]), ms(lat[len(lat)-1]))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func runOutage(args []string) error {
	var c common
	fs := flag.NewFlagSet("outage", flag.ExitOnError)
	cuts := fs.Int("cuts", 3, "cuts of the link")
	down := fs.Duration("down", 3*time.Second, "how long each cut lasts")
	sig := fs.String("signal", "", "signal sent to the client when the link returns (USR2: rsftp's reconnection)")
	if err := parse(fs, args, &c); err != nil {
		return err
	}
	var signal syscall.Signal
	switch *sig {
	case "":
	case "USR1":
		signal = syscall.SIGUSR1
	case "USR2":
		signal = syscall.SIGUSR2
	default:
		return fmt.Errorf("unknown signal %q", *sig)
	}
	r, err := newRelay(c.to, c.delay)
	if err != nil {
		return err
	}
	s, err := start(c.client(r))
	if err != nil {
		return err
	}
	defer s.stop()
	at, _, err := s.waitFor(0, []byte("\n20\r\n"))
	if err != nil {
		return err
	}
	var back []time.Duration
	for i := 0; i < *cuts; i++ {
		r.setCut(true)
		time.Sleep(*down)
		s.mu.Lock()
		at = len(s.out)
		last := lastLine(s.out)
		s.mu.Unlock()
		r.setCut(false)
		returned := time.Now()
		if signal != 0 {
			s.cmd.Process.Signal(signal)
		}
		// The first line after the cut: last+1 (lines already in
		// flight when the cut came are shown after the return too).
		// The client may write a notice (a title, a status line
		// cleared again) between lines: escape sequences and carriage
		// returns are skipped.
		seen, err := s.waitForLine(at, last+1)
		if err != nil {
			return fmt.Errorf("cut %d: %w", i+1, err)
		}
		back = append(back, seen.Sub(returned))
		// Let it run a little before the next cut.
		time.Sleep(time.Second)
	}
	s.mu.Lock()
	out := append([]byte(nil), s.out...)
	s.mu.Unlock()
	lines, err := checkLines(out)
	if err != nil {
		return err
	}
	sorted := slices.Clone(back)
	slices.Sort(sorted)
	parts := make([]string, len(back))
	for i, d := range back {
		parts[i] = fmt.Sprintf("%.1f", ms(d))
	}
	fmt.Printf("cuts %d back-to-first-byte median %.1fms each [%s]ms lines %d in order, none twice\n",
		len(back), ms(sorted[len(sorted)/2]), strings.Join(parts, " "), lines)
	return nil
}

// waitForLine waits until the screen, from offset from on, shows the
// numbered line n, and returns when the read that completed it arrived.
func (s *screen) waitForLine(from, n int) (time.Time, error) {
	deadline := time.Now().Add(wait)
	t := time.AfterFunc(wait, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer t.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		// Scan line by line; a line counts once its newline arrived.
		start := from
		for {
			k := bytes.IndexByte(s.out[start:], '\n')
			if k < 0 {
				break
			}
			end := start + k + 1
			if v, ok := lineNumber(s.out[start:end]); ok && v == n {
				j, _ := slices.BinarySearch(s.ends, end)
				return s.times[j], nil
			}
			start = end
		}
		if s.done {
			return time.Time{}, fmt.Errorf("client ended before showing line %d; screen:\n%s", n, tail(s.out))
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no line %d on the screen within %v; screen:\n%q", n, wait, tail(s.out))
		}
		s.cond.Wait()
	}
}

// stripTerminal removes what a terminal does not show as text: escape
// sequences (CSI, and OSC such as a window title) and carriage returns.
func stripTerminal(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == 0x1b && i+1 < len(b) && b[i+1] == ']':
			// OSC: up to BEL or ESC \.
			j := i + 2
			for j < len(b) && b[j] != 0x07 && !(b[j] == 0x1b && j+1 < len(b) && b[j+1] == '\\') {
				j++
			}
			if j < len(b) && b[j] == 0x1b {
				j++
			}
			i = j
		case c == 0x1b && i+1 < len(b) && b[i+1] == '[':
			j := i + 2
			for j < len(b) && (b[j] < 0x40 || b[j] > 0x7e) {
				j++
			}
			i = j
		case c == 0x1b:
			i++ // a two-byte escape
		case c == '\r':
		default:
			out = append(out, c)
		}
	}
	return out
}

// lineNumber reads a numbered line (with its newline), ignoring what the
// terminal does not show.
func lineNumber(line []byte) (int, bool) {
	t := strings.TrimSpace(string(stripTerminal(line)))
	n, err := strconv.Atoi(t)
	return n, err == nil
}

// lastLine is the number of the last whole numbered line on the screen.
func lastLine(out []byte) int {
	end := len(out)
	for {
		i := bytes.LastIndexByte(out[:end], '\n')
		if i < 0 {
			return 0
		}
		j := bytes.LastIndexByte(out[:i], '\n')
		if n, ok := lineNumber(out[j+1 : i+1]); ok {
			return n
		}
		end = i
	}
}

// checkLines checks that the numbered lines on the screen run 1, 2, 3...
// with none missing or repeated (text before the first line, such as a
// notice, and a partial last line are skipped).
func checkLines(out []byte) (int, error) {
	want := 1
	for _, l := range strings.Split(string(stripTerminal(out)), "\n") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil {
			continue
		}
		if want == 1 && n != 1 {
			continue
		}
		if n != want {
			return want - 1, fmt.Errorf("line %d after line %d: lost or repeated output", n, want-1)
		}
		want++
	}
	if want == 1 {
		return 0, errors.New("no numbered lines on the screen")
	}
	return want - 1, nil
}

package main

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/term"
)

// The Windows console: prompts read CONIN$ and write CONOUT$ (there is
// no /dev/tty); the progress line and the interactive mode write \r,
// \x1b[K and the line editor's sequences, which the console interprets
// once virtual terminal processing is on.

func init() {
	// Windows 10 1511 and later; on older consoles SetConsoleMode fails
	// and the sequences would show, which -q avoids.
	for _, f := range []*os.File{os.Stdout, os.Stderr} {
		h := windows.Handle(f.Fd())
		var mode uint32
		if windows.GetConsoleMode(h, &mode) == nil && mode&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING == 0 {
			windows.SetConsoleMode(h, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING)
		}
	}
}

// terminal is the console: read from CONIN$, written to CONOUT$.
type terminal struct{ in, out *os.File }

func (t terminal) Read(p []byte) (int, error)  { return t.in.Read(p) }
func (t terminal) Write(p []byte) (int, error) { return t.out.Write(p) }

// Fd is the console input's handle, which term.ReadPassword reads
// without echo.
func (t terminal) Fd() uintptr { return t.in.Fd() }

func (t terminal) Close() error {
	t.out.Close()
	return t.in.Close()
}

// openTerminal opens the process's console, if it has one.
func openTerminal() (terminal, error) {
	in, err := os.OpenFile("CONIN$", os.O_RDWR, 0)
	if err != nil {
		return terminal{}, err
	}
	out, err := os.OpenFile("CONOUT$", os.O_RDWR, 0)
	if err != nil {
		in.Close()
		return terminal{}, err
	}
	return terminal{in, out}, nil
}

// resizeSignal is sent to the shell when the console's size changes:
// Windows has no SIGWINCH.
type resizeSignal struct{}

func (resizeSignal) String() string { return "console resized" }
func (resizeSignal) Signal()        {}

var sigResize os.Signal = resizeSignal{}

// notifyResize polls the console's size (fd's) twice a second and sends
// sigResize on c when it changes, until stop is called.
func notifyResize(c chan<- os.Signal, fd int) (stop func()) {
	w0, h0, err := term.GetSize(fd)
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if w, h, err := term.GetSize(fd); err == nil && (w != w0 || h != h0) {
				w0, h0 = w, h
				select {
				case c <- sigResize:
				default:
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

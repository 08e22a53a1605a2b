//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package main

import "golang.org/x/term"

// rawInput puts the terminal in raw mode for the line editor.
func rawInput(fd int) error {
	_, err := term.MakeRaw(fd)
	return err
}

//go:build !linux

// Command ptybench is Linux-only: see main_linux.go.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ptybench: runs on Linux only (pseudo-terminals by /dev/ptmx)")
	os.Exit(1)
}

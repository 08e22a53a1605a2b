// Command rsftp is the rsftp tool. This version has one subcommand:
//
//	rsftp demo [-size N]
//
// which starts an embedded SSH server on loopback, connects to it with
// the rsftp client, runs a command and streams data through a session,
// and prints what it measured.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: rsftp <command> [options]

commands:
  demo    run an embedded server and a client against it, and report

Run "rsftp <command> -h" for a command's options.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "demo":
		err = runDemo(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "rsftp: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rsftp %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

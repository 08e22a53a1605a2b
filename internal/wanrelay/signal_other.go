//go:build !unix

package main

// notifyCut does nothing where there is no SIGUSR1: -cut-after still
// cuts.
func notifyCut(cut func()) {}

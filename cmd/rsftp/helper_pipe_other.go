//go:build unix && !linux

package main

// growPipes: only Linux can grow a pipe (helper_pipe_linux.go).
func growPipes() {}

// pipeSize: 0, the pipe's size is not known here (no paced writes).
func pipeSize(int) int { return 0 }

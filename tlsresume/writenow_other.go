//go:build !unix

package tlsresume

import "syscall"

// writeNow: where a write that cannot wait is not done here, the link's
// writer goroutine writes everything (errWouldBlock).
func writeNow(rc syscall.RawConn, p []byte) (int, error) { return 0, errWouldBlock }

// Package winpipe connects to Windows named pipes and makes connected
// pairs of them, as net.Conns with deadlines: OpenSSH for Windows' agent
// listens on \\.\pipe\openssh-ssh-agent, and a ProxyCommand's standard
// input and output are one end of a pair (Unix uses a socket pair).
//
// The ends this process keeps are opened for overlapped I/O, which the Go
// runtime (1.25 and later) puts on its I/O completion port when given to
// os.NewFile: reads and writes do not hold a thread, deadlines work, and
// Close ends a read in progress. It builds on Windows only.
package winpipe

package channel

import "context"

// StartExec sends the exec request for cmd and returns at once, with the
// wait for the server's answer, as StartSubsystem does for a subsystem:
// data written to the channel meanwhile follows the request, and the
// server gives it to the command once it runs (OpenSSH's sshd buffers
// it). A caller that runs a protocol over the command's stdin and stdout
// saves the round trip of the answer (rsftp's resume helper: its inner
// key exchange goes behind the request).
func (s *Session) StartExec(cmd string) (wait func(ctx context.Context) error, err error) {
	return s.startNoWait("exec", cmd)
}

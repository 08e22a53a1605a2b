package auth

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// TestAgentOverNamedPipe: DialAgent reaches an agent on a named pipe, as
// OpenSSH for Windows' ssh-agent listens, here a fake that holds no key.
func TestAgentOverNamedPipe(t *testing.T) {
	name := fmt.Sprintf(`\\.\pipe\rsftp-agent-test-%d`, time.Now().UnixNano())
	n16, _ := windows.UTF16PtrFromString(name)
	h, err := windows.CreateNamedPipe(n16, windows.PIPE_ACCESS_DUPLEX,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT, 1, 4096, 4096, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := os.NewFile(uintptr(h), name)
	defer srv.Close()
	served := make(chan error, 1)
	go func() {
		if err := windows.ConnectNamedPipe(h, nil); err != nil && err != windows.ERROR_PIPE_CONNECTED {
			served <- err
			return
		}
		var hdr [4]byte
		if _, err := io.ReadFull(srv, hdr[:]); err != nil {
			served <- err
			return
		}
		req := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(srv, req); err != nil {
			served <- err
			return
		}
		if len(req) != 1 || req[0] != agentRequestIdentities {
			served <- fmt.Errorf("request %x", req)
			return
		}
		_, err := srv.Write([]byte{0, 0, 0, 5, agentIdentitiesAnswer, 0, 0, 0, 0})
		served <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := DialAgent(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	keys, err := a.List()
	if err != nil || len(keys) != 0 {
		t.Fatalf("List = %v, %v", keys, err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// The same pipe spelled with slashes is a pipe too.
	if !isPipePath(`//./pipe/openssh-ssh-agent`) || isPipePath(`C:\Users\a\agent.sock`) {
		t.Error("isPipePath")
	}
}

func TestDefaultAgentSocketWindows(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	if got := DefaultAgentSocket(); got != OpenSSHAgentPipe {
		t.Errorf("DefaultAgentSocket() = %q without SSH_AUTH_SOCK, want %q", got, OpenSSHAgentPipe)
	}
	t.Setenv("SSH_AUTH_SOCK", `C:\agent.sock`)
	if got := DefaultAgentSocket(); got != `C:\agent.sock` {
		t.Errorf("DefaultAgentSocket() = %q", got)
	}
}

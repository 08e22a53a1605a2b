package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netlab"
	"github.com/rsftp/rsftp/internal/sshtest"
)

// TestE2ESSHAcrossInterfaces: rsftp ssh in the netns lab (issue 18). A
// command against rsftp serve --shell prints a numbered line every 10 ms;
// once lines flow, link A goes down and a line is typed meanwhile. The
// client notices by netlink and resumes over link B from its other
// address: every line arrives once and in order, the typed line reaches
// the command once, and the server saw the resumption come from link B.
func TestE2ESSHAcrossInterfaces(t *testing.T) {
	lab := netlab.New(t, "rs", 0)
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	srvEvents := filepath.Join(dir, "server-events")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	port, kh := e2eServeIn(t, []string{"ip", "netns", "exec", lab.NS}, root, key+".pub", lab.Server, "--shell", "--events", srvEvents)
	cliEvents := filepath.Join(dir, "client-events")
	const lines = 600
	remote := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do i=$((i+1)); echo $i; sleep 0.01; done; read x; echo "got:$x"`, lines)
	cmd := exec.Command(e2eTool(t), "ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+kh, "-i", key, "-p", strconv.Itoa(port), "--events", cliEvents, lab.Server, remote)
	cmd.Env = e2eEnv(t)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var got []string
	var cutErr error
	go func() {
		sc := bufio.NewScanner(stdout)
		cut := false
		for sc.Scan() {
			got = append(got, sc.Text())
			if !cut && len(got) == 100 {
				cut = true
				// Not ip(): t.Fatal belongs to the test's goroutine.
				cutErr = exec.Command("ip", "link", "set", lab.A0, "down").Run()
				// Typed while the path is gone: kept, and delivered
				// once on resumption.
				io.WriteString(stdin, "typed while away\n")
			}
		}
		done <- sc.Err()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(120 * time.Second): // a hang, not a measurement
		cmd.Process.Kill()
		t.Fatalf("no end after 120 s; %d lines; stderr:\n%s", len(got), errb.String())
	}
	if cutErr != nil {
		t.Fatalf("ip link set %s down: %v", lab.A0, cutErr)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp ssh: %v\n%s", err, errb.String())
	}
	want := make([]string, 0, lines+1)
	for i := 1; i <= lines; i++ {
		want = append(want, strconv.Itoa(i))
	}
	want = append(want, "got:typed while away")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output differs: %d lines, want %d; first difference near %q", len(got), len(want), firstDiff(got, want))
	}
	cev := readEvents(t, cliEvents)
	if countEvents(cev, "resumed") < 1 {
		t.Fatalf("client never resumed: %v", cev)
	}
	time.Sleep(100 * time.Millisecond)
	var from []string
	for _, e := range readEvents(t, srvEvents) {
		if e["event"] == "resumed" {
			from = append(from, fmt.Sprint(e["remote"]))
		}
	}
	if len(from) == 0 || !strings.HasPrefix(from[len(from)-1], lab.LinkB+".1:") {
		t.Fatalf("server resumed from %v, want the address on link B (%s.1)", from, lab.LinkB)
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}

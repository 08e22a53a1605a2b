package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/sftp"
)

// Re-exchanges with dropbear are ours: dropbear (server and dbclient)
// starts one only after KEX_REKEY_DATA (1 GiB) or KEX_REKEY_TIMEOUT (8
// hours), both compiled in (sysoptions.h), with no option to lower them;
// it answers ours.
const (
	dropbearFileSize = 4 << 20
	dropbearRekey    = 512 << 10
)

// minMidTransferKex is how many key exchanges, the first included, a
// transfer of these tests must see at least: a dozen or more happen at
// rest, fewer on a loaded machine, where more is sent while each is in
// flight (which counts toward the keys it retires).
const minMidTransferKex = 4

// Our client against dropbear's server: a file put and got back over
// SFTP (dropbear runs OpenSSH's sftp-server for the subsystem) with our
// client re-exchanging keys every 512 KiB, then a command.
func TestInteropOurClientToDropbear(t *testing.T) {
	sshtest.DropbearSFTPServer(t)
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	db := sshtest.StartDropbear(t, string(pub))
	keys, err := auth.ParseAuthorizedKeys([]byte(db.HostKey))
	if err != nil || len(keys) != 1 {
		t.Fatalf("dropbear's host key %q: %v", db.HostKey, err)
	}
	c := dialAddrMod(t, db.Addr(), keys[0].Key, loadSigner(t, kp), func(cfg *rsftp.ClientConfig) {
		cfg.Transport.RekeyBytes = dropbearRekey
	})
	if v := string(c.Transport().ServerVersion()); !strings.Contains(v, "dropbear") {
		t.Fatalf("server version %q is not dropbear's", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc, err := c.SFTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	local := filepath.Join(dir, "local")
	want := randomFile(t, local, dropbearFileSize)
	remote := filepath.Join(dir, "remote")
	if err := sc.Upload(ctx, local, remote, sftp.TransferOptions{}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	back := filepath.Join(dir, "back")
	if err := sc.Download(ctx, remote, back, sftp.TransferOptions{}); err != nil {
		t.Fatalf("download: %v", err)
	}
	if got := fileHash(t, remote); got != want {
		t.Fatal("the uploaded file differs from the original")
	}
	if got := fileHash(t, back); got != want {
		t.Fatal("the downloaded file differs from the original")
	}
	if n := c.Transport().KexCount(); n < minMidTransferKex {
		t.Fatalf("%d key exchanges for 2x%d MiB with our limit of %d KiB", n, dropbearFileSize>>20, dropbearRekey>>10)
	} else {
		t.Logf("%d key exchanges", n)
	}

	// A command runs in the home dropbear was given, with its exit status.
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output(ctx, "pwd; exit 0")
	if err != nil || strings.TrimSpace(string(out)) != db.Home {
		t.Fatalf("pwd: %q %v, want %s", out, err, db.Home)
	}
}

// dropbear's client, dbclient, against our server: a command that sends
// back what it reads (4 MiB each way) with our server re-exchanging keys
// every 512 KiB, and its exit status.
func TestInteropDbclientToOurServer(t *testing.T) {
	dbclient := sshtest.DropbearBinary(t, "dbclient")
	keygen := sshtest.DropbearBinary(t, "dropbearkey")
	dir := t.TempDir()
	// dbclient reads keys of its own format (not OpenSSH's ed25519).
	key := filepath.Join(dir, "id_dropbear")
	out, err := exec.Command(keygen, "-t", "ed25519", "-f", key).Output()
	if err != nil {
		t.Fatalf("dropbearkey: %v", err)
	}
	var pub string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "ssh-ed25519 ") {
			pub = l + "\n"
		}
	}
	var mu sync.Mutex
	var kexCounts []int
	addr, hk := startServer(t, dir, pub, func(cfg *rsftp.ServerConfig) {
		cfg.Transport.RekeyBytes = dropbearRekey
		inner := cfg.Exec
		cfg.Exec = func(ctx context.Context, s *rsftp.ServerSession) int {
			code := inner(ctx, s)
			mu.Lock()
			kexCounts = append(kexCounts, s.Conn.KexCount())
			mu.Unlock()
			return code
		}
	})
	host, port := splitAddr(addr)
	// dbclient reads $HOME/.ssh/known_hosts, where it names hosts
	// without their port.
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	kh := host + " " + kex.MarshalAuthorizedKey(hk.PublicKey()) + "\n"
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(kh), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(cmd string, stdin io.Reader, stdout io.Writer) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, dbclient, "-T", "-i", key, "-p", strconv.Itoa(port),
			"-l", sshtest.User(t), host, cmd)
		c.Env = append(os.Environ(), "HOME="+home)
		// No terminal: a host key prompt fails instead of waiting.
		c.SysProcAttr = newSession()
		var errb bytes.Buffer
		c.Stdin, c.Stdout, c.Stderr = stdin, stdout, &errb
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("dbclient: %v\n%s", err, errb.String())
		}
		return errb.String(), code
	}

	sent, got := sha256.New(), sha256.New()
	var n countWriter
	errs, code := run("cat", io.TeeReader(io.LimitReader(rand.Reader, dropbearFileSize), sent), io.MultiWriter(got, &n))
	if code != 0 || n.n != dropbearFileSize || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatalf("cat through dbclient: exit %d, %d bytes back (sha256 %s, sent %s)\n%s", code, n.n,
			hex.EncodeToString(got.Sum(nil)), hex.EncodeToString(sent.Sum(nil)), errs)
	}
	var outb bytes.Buffer
	errs, code = run("echo to-stdout; echo to-stderr >&2; exit 5", strings.NewReader(""), &outb)
	if code != 5 || outb.String() != "to-stdout\n" || !strings.Contains(errs, "to-stderr") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, outb.String(), errs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(kexCounts) == 0 || kexCounts[0] < minMidTransferKex {
		t.Fatalf("key exchanges per command %v; want %d at least for the 2x%d MiB of cat", kexCounts, minMidTransferKex, dropbearFileSize>>20)
	}
	t.Logf("%d key exchanges", kexCounts[0])
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

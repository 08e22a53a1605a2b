package e2e

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/sftp"
)

// asyncsshScript is both ends asyncssh plays: "client" uploads a file
// over SFTP and downloads it back under another name; "server" serves
// SFTP on a loopback port it prints, until its stdin closes. rekey_bytes
// makes asyncssh start a key re-exchange after that many bytes sent (0:
// its default, 1 GiB).
const asyncsshScript = `
import asyncio, sys
import asyncssh

async def client(host, port, user, key, known_hosts, rekey, local, remote, back):
    opts = dict(username=user, client_keys=[key], known_hosts=known_hosts,
                agent_path=None, config=[])
    if rekey:
        opts['rekey_bytes'] = rekey
    async with asyncssh.connect(host, port, **opts) as conn:
        async with conn.start_sftp_client() as sftp:
            await sftp.put(local, remote, block_size=16384, max_requests=8)
            await sftp.get(remote, back)
    print('done', flush=True)

async def server(host_key, authorized_keys, rekey):
    opts = dict(server_host_keys=[host_key], authorized_client_keys=authorized_keys,
                sftp_factory=True, allow_scp=False)
    if rekey:
        opts['rekey_bytes'] = rekey
    srv = await asyncssh.listen('127.0.0.1', 0, **opts)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    srv.close()

mode, args = sys.argv[1], sys.argv[2:]
if mode == 'client':
    host, port, user, key, kh, rekey, local, remote, back = args
    asyncio.run(client(host, int(port), user, key, kh, int(rekey), local, remote, back))
else:
    host_key, ak, rekey = args
    asyncio.run(server(host_key, ak, int(rekey)))
`

// asyncsshCmd is python running asyncsshScript with args.
func asyncsshCmd(t *testing.T, py string, args ...string) *exec.Cmd {
	t.Helper()
	script := filepath.Join(t.TempDir(), "peer.py")
	if err := os.WriteFile(script, []byte(asyncsshScript), 0o600); err != nil {
		t.Fatal(err)
	}
	// -W ignore: Debian's cryptography warns about Blowfish and CAST5 on
	// import.
	return exec.Command(py, append([]string{"-W", "ignore", script}, args...)...)
}

// The file sent each way, and the re-exchange limits of the side that
// starts them: ours, 512 KiB, gives a dozen re-exchanges or more over the
// 8 MiB. asyncssh counts only what it sends outside its key exchanges,
// and sends on during them what its requests in flight allow: with its
// SFTP client's default of 128 WRITEs of 16 KiB in flight, or with our
// client's READs, it starts only two or three re-exchanges in 4 MiB at
// any limit (against OpenSSH's sshd too), so both sides keep few requests
// in flight here (max_requests, sftp.MaxInflight), and 64 KiB gives twenty
// or more.
const (
	asyncsshFileSize = 4 << 20
	ourRekeyLimit    = 512 << 10
	asyncsshRekey    = 64 << 10
)

// asyncssh's SFTP client against our server: a file up and back, with
// key re-exchanges in the middle started by asyncssh, then by our server.
// asyncssh 2.10 keeps sending channel data after its KEXINIT, which RFC
// 4253 section 7.1 forbids and OpenSSH tolerates in a re-exchange (issue
// 16).
func TestInteropAsyncSSHClientToOurServer(t *testing.T) {
	py := sshtest.AsyncSSHPython(t)
	for _, tc := range []struct {
		name                string
		ourRekey, peerRekey int
		minKex              int // the first included
	}{
		{"asyncssh-rekeys", 0, asyncsshRekey, minMidTransferKex},
		{"server-rekeys", ourRekeyLimit, 0, minMidTransferKex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			os.Mkdir(root, 0o700)
			kp := sshtest.KeyGen(t, dir, "ed25519", 0)
			pub, _ := os.ReadFile(kp + ".pub")
			var mu sync.Mutex
			kexCount := 0
			addr, hk := startServer(t, dir, string(pub), func(cfg *rsftp.ServerConfig) {
				cfg.Transport.RekeyBytes = uint64(tc.ourRekey)
				inner := rsftp.SFTPHandler(&sftp.ServerConfig{Root: root})
				cfg.Subsystems = map[string]rsftp.Handler{"sftp": func(ctx context.Context, s *rsftp.ServerSession) int {
					code := inner(ctx, s)
					mu.Lock()
					kexCount = s.Conn.KexCount()
					mu.Unlock()
					return code
				}}
			})
			kh := knownHostsFor(t, dir, addr, hk.PublicKey())
			host, port := splitAddr(addr)
			local := filepath.Join(dir, "local")
			want := randomFile(t, local, asyncsshFileSize)
			back := filepath.Join(dir, "back")

			cmd := asyncsshCmd(t, py, "client", host, strconv.Itoa(port), sshtest.User(t), kp, kh,
				strconv.Itoa(tc.peerRekey), local, "upload", back)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "done") {
				t.Fatalf("asyncssh client: %v\n%s", err, out)
			}
			if got := fileHash(t, filepath.Join(root, "upload")); got != want {
				t.Fatal("the uploaded file differs from the original")
			}
			if got := fileHash(t, back); got != want {
				t.Fatal("the downloaded file differs from the original")
			}
			// The session handler returns when asyncssh closes the
			// channel, which may be after the command returned.
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return kexCount != 0 })
			mu.Lock()
			n := kexCount
			mu.Unlock()
			// The other side's limit is 1 GiB: every re-exchange is
			// the doing of the side whose limit is low.
			if n < tc.minKex {
				t.Fatalf("%d key exchanges for 2x%d MiB, want %d at least", n, asyncsshFileSize>>20, tc.minKex)
			}
			t.Logf("%d key exchanges", n)
		})
	}
}

// Our client against asyncssh's SFTP server: a file up and back, with
// key re-exchanges started by asyncssh, then by our client.
func TestInteropOurClientToAsyncSSHServer(t *testing.T) {
	py := sshtest.AsyncSSHPython(t)
	for _, tc := range []struct {
		name                string
		ourRekey, peerRekey int
		minKex              int // the first included
	}{
		{"asyncssh-rekeys", 0, asyncsshRekey, minMidTransferKex},
		{"client-rekeys", ourRekeyLimit, 0, minMidTransferKex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			kp := sshtest.KeyGen(t, dir, "ed25519", 0)
			hkPath := sshtest.KeyGen(t, filepath.Join(dir), "ecdsa", 256)
			hk := loadSigner(t, hkPath)
			cmd := asyncsshCmd(t, py, "server", hkPath, kp+".pub", strconv.Itoa(tc.peerRekey))
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				stdin.Close()
				done := make(chan struct{})
				go func() { cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					<-done
				}
				if t.Failed() {
					t.Logf("asyncssh server stderr:\n%s", stderr.String())
				}
			})
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("asyncssh server did not print its port: %v\n%s", err, stderr.String())
			}
			addr := net.JoinHostPort("127.0.0.1", strings.TrimSpace(line))

			c := dialAddrMod(t, addr, hk.PublicKey(), loadSigner(t, kp), func(cfg *rsftp.ClientConfig) {
				cfg.Transport.RekeyBytes = uint64(tc.ourRekey)
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// Few READs in flight: asyncssh counts only what it sends
			// outside its key exchanges, and what it sends during them
			// is what the READs in flight ask for.
			sc, err := c.SFTP(ctx, sftp.MaxInflight(4))
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			local := filepath.Join(dir, "local")
			want := randomFile(t, local, asyncsshFileSize)
			remote := filepath.Join(dir, "remote") // asyncssh serves the whole file system
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
			if n := c.Transport().KexCount(); n < tc.minKex {
				t.Fatalf("%d key exchanges for 2x%d MiB, want %d at least", n, asyncsshFileSize>>20, tc.minKex)
			} else {
				t.Logf("%d key exchanges", n)
			}
		})
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
	}
}

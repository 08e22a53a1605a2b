package sftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// FuzzClientReplies drives the real Client over an in-memory pipe
// against a server whose every reply comes from the fuzzer. The input is
// one byte choosing which operations run (fuzzOps), then records
//
//	byte type, uint16 length, that many bytes of payload
//
// (a last record may be cut short). The first record is the VERSION
// packet (its payload begins with the version number); each later one
// answers the next request, with the length prefix and the request's id
// filled in so that the fuzzer need not find them; when the records run
// out the server hangs up. Whatever the replies, the client must not
// panic, every operation must end within a deadline, the bytes allocated
// must stay within a bound set by the input's size (never by a length or
// count a reply claims), and a recursive download must write nothing
// outside its destination.
func FuzzClientReplies(f *testing.F) {
	for _, ops := range []byte{opNames, opStat, opReadDir, opRead, opExtensions, opWrite, opDownload, 0x7f} {
		f.Add(recordSession(f, ops))
	}
	u4 := srvU32
	for flags := range uint32(32) {
		// ATTRS with every combination of flags (bit 4: extended).
		if flags&16 != 0 {
			flags = flags&15 | AttrExtended
		}
		a := Attrs{Flags: flags, Size: 12, UID: 1, GID: 2, Mode: modeRegular | 0o644, Atime: 3, Mtime: 4}
		if flags&AttrExtended != 0 {
			a.Extended = []ExtPair{{"a@x", "1"}, {"b@x", ""}}
		}
		attrs := appendAttrs(nil, &a)
		name := append(append(u4(1), append(srvStr("n"), srvStr("l")...)...), attrs...)
		// After VERSION, the answer to the limits request sent with INIT.
		unsupported := fuzzRecord{typeStatus, append(u4(StatusOpUnsupported), append(srvStr(""), srvStr("")...)...)}
		f.Add(fuzzInput(opStat, fuzzRecord{typeVersion, u4(3)}, unsupported, fuzzRecord{typeAttrs, attrs},
			fuzzRecord{typeAttrs, attrs}, fuzzRecord{typeName, name}))
	}
	f.Add(fuzzInput(opNames, fuzzRecord{typeVersion, append(u4(3), append(srvStr(extLimits), srvStr("1")...)...)},
		fuzzRecord{typeExtendedReply, append(srvU64(1<<62), append(srvU64(0), append(srvU64(1), srvU64(1<<40)...)...)...)},
		fuzzRecord{typeName, append(u4(0xffffffff), srvStr("x")...)},
		fuzzRecord{typeStatus, append(u4(StatusFailure), u4(0xffffffff)...)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzClient(t, data)
	})
}

// The operations FuzzClientReplies runs, chosen by the input's first
// byte.
const (
	opNames      = 1 << iota // RealPath, HomeDir, ExpandPath, ReadLink
	opStat                   // Stat, Lstat, ReadLink
	opReadDir                // ReadDir
	opRead                   // Open, WriteTo, ReadAt, Stat, Seek
	opExtensions             // StatVFS, HashRange, UserHomeDir, MkdirAll
	opWrite                  // Create, Write, ReadFrom, Truncate, Sync, and the two-path requests
	opDownload               // a recursive download, a resumed one
	opConcurrent             // two operations at once
)

type fuzzRecord struct {
	typ     byte
	payload []byte
}

func fuzzInput(ops byte, recs ...fuzzRecord) []byte {
	b := []byte{ops}
	for _, r := range recs {
		p := r.payload
		if len(p) > 0xffff {
			p = p[:0xffff]
		}
		b = append(b, r.typ, byte(len(p)>>8), byte(len(p)))
		b = append(b, p...)
	}
	return b
}

func parseFuzzInput(data []byte) (ops byte, recs []fuzzRecord) {
	if len(data) == 0 {
		return 0, nil
	}
	ops, data = data[0], data[1:]
	for len(data) >= 3 {
		typ, n := data[0], int(binary.BigEndian.Uint16(data[1:3]))
		data = data[3:]
		n = min(n, len(data))
		recs = append(recs, fuzzRecord{typ, data[:n]})
		data = data[n:]
	}
	return ops, recs
}

func fuzzClient(t *testing.T, data []byte) {
	ops, recs := parseFuzzInput(data)
	if len(recs) == 0 {
		return
	}
	// Odd-length inputs run over an SSH channel, where downloads take
	// their data from the receive buffer in place (readDirect).
	var cEnd, sEnd io.ReadWriteCloser
	if len(data)%2 == 1 {
		cEnd, sEnd = channelPair(t, 32<<10)
	} else {
		cEnd, sEnd = net.Pipe()
	}
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		defer sEnd.Close()
		if _, err := readPacket(sEnd, nil); err != nil {
			return
		}
		v := recs[0]
		if _, err := sEnd.Write(finishPacket(append(startPacket(nil, v.typ), v.payload...))); err != nil {
			return
		}
		for _, r := range recs[1:] {
			p, err := readPacket(sEnd, nil)
			if err != nil || len(p) < 5 {
				return
			}
			out := wire.AppendUint32(startPacket(nil, r.typ), binary.BigEndian.Uint32(p[1:5]))
			if _, err := sEnd.Write(finishPacket(append(out, r.payload...))); err != nil {
				return
			}
		}
	}()

	var dir, sentinel string
	if ops&opDownload != 0 {
		dir = t.TempDir()
		sentinel = filepath.Join(dir, "sentinel")
		if err := os.WriteFile(sentinel, []byte("sentinel"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	var alloc uint64
	go func() {
		defer close(done)
		alloc = allocated(func() { runFuzzOps(cEnd, ops, dir) })
	}()
	// Within the fuzz engine's own limit of 10 s an input, so that a hang
	// is reported with the goroutines' stacks.
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		cEnd.Close()
		sEnd.Close()
		t.Fatalf("the client did not finish:\n%s", buf)
	}
	<-srvDone
	if limit := uint64(16<<20 + 16*len(data)); alloc > limit {
		t.Fatalf("%d bytes allocated for a %d-byte input (bound %d)", alloc, len(data), limit)
	}
	if dir == "" {
		return
	}
	// The downloads wrote only into their destinations.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		switch top := strings.SplitN(filepath.ToSlash(rel), "/", 3); {
		case rel == "." || rel == "sentinel" || rel == "resumed" || rel == "dl" || rel == "dl/out":
		case len(top) >= 2 && top[0] == "dl" && top[1] == "out":
		default:
			t.Errorf("the client wrote %s", rel)
		}
		return nil
	})
	if b, err := os.ReadFile(sentinel); err != nil || string(b) != "sentinel" {
		t.Errorf("the sentinel beside the destination: %q %v", b, err)
	}
}

// runFuzzOps runs the operations ops chooses on a client over conn,
// downloading into dir, and closes the client.
func runFuzzOps(conn io.ReadWriteCloser, ops byte, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Small reads and writes: several in flight for a small file, and
	// seeds small enough to minimize quickly.
	c, err := NewClient(ctx, conn, MaxInflight(8), ReadSize(64), WriteSize(64))
	if err != nil {
		return
	}
	defer c.Close()
	var wg sync.WaitGroup
	run := func(f func()) {
		if ops&opConcurrent != 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f()
			}()
		} else {
			f()
		}
	}
	if ops&opNames != 0 {
		run(func() {
			c.RealPath(".")
			c.HomeDir()
			c.ExpandPath("~/x")
		})
	}
	if ops&opStat != 0 {
		run(func() {
			c.Stat("/f")
			c.Lstat("/l")
			c.ReadLink("/l")
		})
	}
	if ops&opReadDir != 0 {
		run(func() { c.ReadDir("/d") })
	}
	if ops&opRead != 0 {
		run(func() {
			f, err := c.Open("/f")
			if err != nil {
				return
			}
			defer f.Close()
			f.WriteTo(io.Discard)
			f.ReadAt(make([]byte, 200), 7)
			f.Stat()
			if _, err := f.Seek(-10, io.SeekEnd); err == nil {
				f.Read(make([]byte, 100))
			}
		})
	}
	if ops&opExtensions != 0 {
		run(func() {
			c.StatVFS("/")
			c.HashRange("/f", 0, 1<<20)
			c.UserHomeDir("u")
			c.MkdirAll("/a/b", 0o755)
		})
	}
	if ops&opWrite != 0 {
		run(func() {
			if f, err := c.Create("/w"); err == nil {
				f.Write(bytes.Repeat([]byte("w"), 100))
				f.ReadFrom(bytes.NewReader(make([]byte, 300)))
				f.Truncate(5)
				f.Sync()
				f.Close()
			}
			c.Rename("/w", "/w2")
			c.PosixRename("/w2", "/w3")
			c.Symlink("w3", "/l2")
			c.Hardlink("/w3", "/w4")
			c.Chmod("/w4", 0o600)
			c.Remove("/w4")
		})
	}
	if ops&opDownload != 0 {
		run(func() {
			os.Mkdir(filepath.Join(dir, "dl"), 0o755)
			c.Download(ctx, "/d", filepath.Join(dir, "dl", "out"), TransferOptions{Recursive: true, PreserveTimesAndMode: true})
			resumed := filepath.Join(dir, "resumed")
			os.WriteFile(resumed, []byte("0123456789"), 0o644)
			c.Download(ctx, "/f", resumed, TransferOptions{Resume: true})
		})
	}
	wg.Wait()
}

// recordSession runs the operations ops chooses against our server,
// records its replies, and returns them as a fuzz input: a seed whose
// replies match the requests.
func recordSession(tb testing.TB, ops byte) []byte {
	root := tb.TempDir()
	for name, content := range map[string]string{
		"f": strings.Repeat("0123456789abcdef", 19), "d/x": "x", "d/sub/y": "y",
	} {
		mustWrite(tb, filepath.Join(root, name), []byte(content))
	}
	os.Symlink("f", filepath.Join(root, "l"))
	cEnd, pEnd := net.Pipe()
	sEnd, psEnd := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, sEnd, &ServerConfig{Root: root})
	go func() {
		io.Copy(psEnd, pEnd)
		psEnd.Close()
	}()
	var recs []fuzzRecord
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		defer pEnd.Close()
		for {
			p, err := readPacket(psEnd, nil)
			if err != nil {
				return
			}
			body := p[1:]
			if p[0] != typeVersion && len(body) >= 4 {
				body = body[4:] // the id, which the fuzz server fills in
			}
			recs = append(recs, fuzzRecord{p[0], bytes.Clone(body)})
			if _, err := pEnd.Write(finishPacket(append(startPacket(nil, p[0]), p[1:]...))); err != nil {
				return
			}
		}
	}()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		runFuzzOps(cEnd, ops&^opConcurrent, tb.TempDir())
	}()
	select {
	case <-ran:
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		cEnd.Close()
		tb.Fatalf("recording a session (operations %#x) did not finish:\n%s", ops, buf)
	}
	cEnd.Close()
	cancel()
	sEnd.Close()
	<-recDone
	return fuzzInput(ops, recs...)
}

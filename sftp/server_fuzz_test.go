package sftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzServerPackets feeds arbitrary requests (after a valid INIT) to
// Serve with a temporary root. Serve must not panic, every reply must be
// well framed and within MaxPacket, and nothing beside the root may
// change.
func FuzzServerPackets(f *testing.F) {
	id := srvU32(7)
	seeds := [][]byte{
		srvPacket(typeOpen, id, srvStr("f"), srvU32(FlagRead), srvNoAttrs()),
		append(srvPacket(typeOpen, id, srvStr("new"), srvU32(FlagWrite|FlagCreate), srvPerm(0o600)),
			srvPacket(typeWrite, srvU32(8), srvStr("\x00\x00\x00\x01"), srvU64(3), srvStr("data"))...),
		append(srvPacket(typeOpendir, id, srvStr("/")),
			srvPacket(typeReaddir, srvU32(8), srvStr("\x00\x00\x00\x01"))...),
		srvPacket(typeRealpath, id, srvStr("out/../link/x")),
		srvPacket(typeSymlink, id, srvStr("../outside"), srvStr("l")),
		srvPacket(typeRename, id, srvStr("f"), srvStr("out/f")),
		srvPacket(typeSetstat, id, srvStr("out"), srvU32(AttrExtended), srvU32(3)),
		srvPacket(typeExtended, id, srvStr(extHashRange), srvStr("f"), srvU64(1), srvU64(100), srvStr("sha256")),
		srvPacket(typeExtended, id, srvStr(extUsersGroups), srvStr("\x00\x00\x00\x00"), srvStr("")),
		srvPacket(typeExtended, id, srvStr(extLimits)),
		srvPacket(typeExtended, id, srvStr(extStatVFS), srvStr(".")),
		{0, 0, 0, 1, typeRead},
		{0xff, 0xff, 0xff, 0xff},
	}
	big := make([]byte, 5000)
	seeds = append(seeds,
		append(srvPacket(typeOpen, id, srvStr("f"), srvU32(FlagRead), srvNoAttrs()),
			srvPacket(typeRead, srvU32(8), srvStr("\x00\x00\x00\x01"), srvU64(2), srvU32(4000))...),
		append(srvPacket(typeOpen, id, srvStr("new"), srvU32(FlagWrite|FlagCreate), srvPerm(0o600)),
			append(srvPacket(typeWrite, srvU32(8), srvStr("\x00\x00\x00\x01"), srvU64(3), srvStr(string(big))), 0)...))
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		os.MkdirAll(filepath.Join(root, "dir"), 0o755)
		os.MkdirAll(outside, 0o755)
		os.WriteFile(filepath.Join(root, "f"), []byte("file content"), 0o644)
		os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
		os.Symlink(outside, filepath.Join(root, "out"))
		os.Symlink("dir", filepath.Join(root, "link"))
		before := snapshotFuzz(base)

		in := append(srvPacket(typeInit, srvU32(3)), data...)
		var out bytes.Buffer
		cfg := &ServerConfig{Root: root, MaxHandles: 8, maxHash: 1 << 20}
		if len(data)%2 == 0 {
			Serve(context.Background(), struct {
				io.Reader
				io.Writer
			}{bytes.NewReader(in), &out}, cfg)
		} else {
			// Over an SSH channel, whose packets (here of 9 to 308
			// bytes) the server reads files into and takes WRITE data
			// from in place, from 1-byte requests up.
			cfg.inPlaceMin = 1
			cc, sc := channelPair(t, uint32(9+len(data)%300))
			copied := make(chan struct{})
			go func() { io.Copy(&out, cc); close(copied) }()
			go func() { cc.Write(in); cc.CloseWrite() }()
			Serve(context.Background(), sc, cfg)
			sc.Close()
			<-copied
		}

		b := out.Bytes()
		for len(b) > 0 {
			if len(b) < 5 {
				t.Fatalf("reply stream ends in a %d-byte fragment", len(b))
			}
			n := binary.BigEndian.Uint32(b)
			if n > MaxPacket || int(n) > len(b)-4 || n < 1 {
				t.Fatalf("reply of length %d with %d bytes left", n, len(b)-4)
			}
			b = b[4+n:]
		}
		after := snapshotFuzz(base)
		for k, v := range before {
			if len(k) >= 7 && k[:7] == "outside" && after[k] != v {
				t.Fatalf("%s changed", k)
			}
		}
		for k := range after {
			if _, ok := before[k]; !ok && (len(k) < 5 || k[:5] != "root/") {
				t.Fatalf("%s appeared outside the root", k)
			}
		}
	})
}

func snapshotFuzz(dir string) map[string]string {
	m := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() && fi.Size() < 1<<20 {
			b, _ := os.ReadFile(p)
			v += string(b)
		}
		m[filepath.ToSlash(rel)] = v
		return nil
	})
	return m
}

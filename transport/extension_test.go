package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/resume"
)

// resumeExt is the resume extension as the module root configures it
// (docs/PROTOCOL.resume.md).
var resumeExt = Extension{
	Client: resume.ClientKexName, Server: resume.ServerKexName,
	FirstMsg: resume.MsgEnable, LastMsg: resume.MsgAck,
	QuietFailures: true,
}

func withResume(on bool) []Extension {
	if on {
		return []Extension{resumeExt}
	}
	return nil
}

// resumeKey is resume.Key's derivation, nil without the extension.
func resumeKey(c *Conn) ([]byte, error) {
	if !c.Negotiated(resume.ClientKexName) {
		return nil, nil
	}
	return resume.Key(c)
}

// The names go into the first KEXINIT after the transport's own markers,
// each side its own, and into no later one.
func TestExtensionNamesInKexInit(t *testing.T) {
	other := Extension{Client: "x-c@example.org", Server: "x-s@example.org"}
	cfg := &Config{Extensions: []Extension{resumeExt, other}}
	for _, isClient := range []bool{true, false} {
		m, err := newKexInit(cfg, isClient, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(cfg.kexAlgorithms()), extInfoClient, kexStrictClient, resume.ClientKexName, other.Client)
		if !isClient {
			want = append(slices.Clone(cfg.kexAlgorithms()), extInfoServer, kexStrictServer, resume.ServerKexName, other.Server)
		}
		if !slices.Equal(m.KexAlgos, want) {
			t.Errorf("client %v: first KEXINIT lists %v, want %v", isClient, m.KexAlgos, want)
		}
		m, err = newKexInit(cfg, isClient, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.KexAlgos, cfg.kexAlgorithms()) {
			t.Errorf("client %v: later KEXINIT lists %v", isClient, m.KexAlgos)
		}
	}
}

// Of two configured extensions, only the one both offered is negotiated,
// and only its messages pass; ExportKey works once one is negotiated.
func TestExtensionNegotiatedSeparately(t *testing.T) {
	other := Extension{Client: "x-c@example.org", Server: "x-s@example.org", FirstMsg: 192, LastMsg: 192}
	cc, sc := newPair(t, func(c, s *Config) {
		c.Extensions = []Extension{resumeExt, other}
		s.Extensions = []Extension{other}
	})
	for _, c := range []*Conn{cc, sc} {
		if c.Negotiated(resumeExt.Client) || !c.Negotiated(other.Client) || !c.Negotiated(other.Server) {
			t.Fatalf("negotiated resume %v, other %v", c.Negotiated(resumeExt.Client), c.Negotiated(other.Client))
		}
		if c.Negotiated("unknown") {
			t.Fatal("an unconfigured name is negotiated")
		}
		if !c.extensionOwns(192) || c.extensionOwns(193) || c.extensionOwns(resume.MsgEnable) {
			t.Fatal("wrong messages pass")
		}
	}
	ck, err := cc.ExportKey("label-a", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := sc.ExportKey("label-a", nil, 32)
	if err != nil || !bytes.Equal(ck, sk) {
		t.Fatalf("exported %x / %x (%v)", ck, sk, err)
	}
}

// ExportKey is RFC 4253's derivation with the label for the letter, the
// resume key of docs/PROTOCOL.resume.md among its outputs.
func TestExportKey(t *testing.T) {
	cc, sc := newPair(t, func(c, s *Config) { c.Extensions, s.Extensions = withResume(true), withResume(true) })
	k, h := cc.exporter.k, cc.SessionID()
	ref := func(x []byte, n int) []byte {
		d := sha256.New()
		d.Write(k)
		d.Write(h)
		d.Write(x)
		d.Write(h)
		out := d.Sum(nil)
		for len(out) < n {
			d := sha256.New()
			d.Write(k)
			d.Write(h)
			d.Write(out)
			out = d.Sum(out)
		}
		return out[:n]
	}
	rk, err := resume.DeriveKey(cc.exporter.hash, k, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Conn{cc, sc} {
		got, err := c.ExportKey("rsftp-resume-v00", nil, 0)
		if err != nil || !bytes.Equal(got, rk) {
			t.Fatalf("ExportKey(rsftp-resume-v00) = %x (%v), resume.DeriveKey %x", got, err, rk)
		}
		if got, _ := resume.Key(c); !bytes.Equal(got, rk) {
			t.Fatalf("resume.Key = %x, resume.DeriveKey %x", got, rk)
		}
	}
	ctx := []byte("context")
	withCtx := append([]byte("some-label"), binary.BigEndian.AppendUint32(nil, uint32(len(ctx)))...)
	withCtx = append(withCtx, ctx...)
	emptyCtx := binary.BigEndian.AppendUint32([]byte("some-label"), 0)
	for _, tc := range []struct {
		ctx  []byte
		n    int
		want []byte
	}{
		{nil, 0, ref([]byte("some-label"), 32)},
		{nil, 16, ref([]byte("some-label"), 16)},
		{nil, 100, ref([]byte("some-label"), 100)},
		{ctx, 48, ref(withCtx, 48)},
		{[]byte{}, 32, ref(emptyCtx, 32)},
	} {
		got, err := sc.ExportKey("some-label", tc.ctx, tc.n)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("ExportKey(some-label, %q, %d) = %x (%v), want %x", tc.ctx, tc.n, got, err, tc.want)
		}
	}
	for _, label := range []string{"", "A", "with space", "ctl\x00", "\x7f\x7f"} {
		if _, err := cc.ExportKey(label, nil, 32); err == nil {
			t.Errorf("label %q accepted", label)
		}
	}
	if _, err := cc.ExportKey("ok-label", make([]byte, 1<<16), 32); err == nil {
		t.Error("a 64 KiB context accepted")
	}
	if _, err := cc.ExportKey("ok-label", nil, -1); err == nil {
		t.Error("a negative length accepted")
	}

	// Without a negotiated extension the secret is not kept.
	pc, _ := newPair(t, func(c, s *Config) { c.Extensions = withResume(true) })
	if _, err := pc.ExportKey("some-label", nil, 32); err == nil || !strings.Contains(err.Error(), "no extension") {
		t.Fatalf("ExportKey on a plain connection: %v", err)
	}
}

// Bad extension descriptions are refused before anything is sent.
func TestExtensionCheck(t *testing.T) {
	for _, e := range []Extension{
		{Client: "a", Server: ""},
		{Client: "a", Server: "a"},
		{Client: "a", Server: "b", FirstMsg: 100, LastMsg: 110},
		{Client: "a", Server: "b", FirstMsg: 200, LastMsg: 199},
		{Client: "a", Server: "b", FirstMsg: 0, LastMsg: 200},
	} {
		if err := checkExtensions([]Extension{e}); err == nil {
			t.Errorf("%+v accepted", e)
		}
	}
	if err := checkExtensions([]Extension{resumeExt, {Client: "a", Server: "b"}}); err != nil {
		t.Error(err)
	}
}

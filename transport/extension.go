package transport

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"slices"

	"github.com/rsftp/rsftp/kex"
)

// Extension is an in-band extension of the layers above the transport,
// negotiated in the first key exchange as strict kex and ext-info are: by
// pseudo-algorithm names in the kex_algorithms lists of the first
// KEXINITs. The client adds Client to its list and the server adds
// Server; the extension is negotiated when the peer's first KEXINIT names
// the peer's name too. The names are never chosen as the key exchange
// method, and KEXINITs of later key exchanges carry none of them.
//
// The transport knows nothing of an extension beyond this description: it
// passes the extension's messages up, and says whether it was negotiated
// (Conn.Negotiated). What the messages mean is the business of the layer
// that configured it, which may derive keys from the first key exchange
// with Conn.ExportKey.
type Extension struct {
	// Client and Server are the names each side adds to its first
	// KEXINIT. The session resumption extension (docs/PROTOCOL.resume.md)
	// uses resume-c-v00@rsftp.org and resume-s-v00@rsftp.org.
	Client, Server string

	// FirstMsg to LastMsg, inclusive, are the message numbers the
	// extension owns, within the range RFC 4250 section 4.1.2 leaves to
	// local extensions (192 to 255); zero for none. Once the extension is
	// negotiated ReadPacket returns them to its caller. Other messages
	// of that range, and all of them on a connection where no extension
	// claiming them was negotiated, are unknown messages: the transport
	// answers them with UNIMPLEMENTED (RFC 4253 section 11.4).
	FirstMsg, LastMsg byte

	// QuietFailures, once the extension is negotiated and the first key
	// exchange has completed, makes a failure of the transport itself (a
	// bad packet, a key exchange that fails or breaks the rules, a host
	// key that changed in a rekey) end the connection without DISCONNECT,
	// as a reset or a timeout would. For extensions under which DISCONNECT
	// ends more than the connection: under resumption it ends the
	// session, while a failure of one connection must only detach it.
	// DISCONNECT is still sent by Disconnect and Close.
	QuietFailures bool
}

// Bounds of the local-extension message numbers (RFC 4250 section 4.1.2).
const (
	firstLocalMsg = 192
	lastLocalMsg  = 255
)

func (e *Extension) check() error {
	if e.Client == "" || e.Server == "" || e.Client == e.Server {
		return fmt.Errorf("transport: extension %q/%q needs two distinct names", e.Client, e.Server)
	}
	if e.FirstMsg == 0 && e.LastMsg == 0 {
		return nil
	}
	if e.FirstMsg < firstLocalMsg || e.LastMsg < e.FirstMsg {
		return fmt.Errorf("transport: extension %q claims messages %d to %d, not a range within %d to %d",
			e.Client, e.FirstMsg, e.LastMsg, firstLocalMsg, lastLocalMsg)
	}
	return nil
}

func (e *Extension) owns(msg byte) bool {
	return e.FirstMsg != 0 && msg >= e.FirstMsg && msg <= e.LastMsg
}

// names returns our name and the peer's.
func (e *Extension) names(isClient bool) (ours, peers string) {
	if isClient {
		return e.Client, e.Server
	}
	return e.Server, e.Client
}

// checkExtensions validates Config.Extensions.
func checkExtensions(exts []Extension) error {
	for i := range exts {
		if err := exts[i].check(); err != nil {
			return err
		}
	}
	return nil
}

// isExtensionName reports whether n names one of exts, on either side.
func isExtensionName(exts []Extension, n string) bool {
	for i := range exts {
		if exts[i].Client == n || exts[i].Server == n {
			return true
		}
	}
	return false
}

// exporter is what ExportKey derives from: the first key exchange's hash
// function and shared secret K (encoded as in the exchange hash); H is
// the session identifier. Kept only on connections where an extension was
// negotiated.
type exporter struct {
	hash crypto.Hash
	k    []byte
}

// Negotiated reports whether the extension with the client or server name
// name (one of Config.Extensions) was negotiated: our first KEXINIT named
// it and the peer's first KEXINIT named the peer's name of it.
func (e *engine) Negotiated(name string) bool {
	e.lock()
	defer e.unlock()
	return isExtensionName(e.negotiated, name)
}

// extensionOwns reports whether an extension owning msg was negotiated.
func (e *engine) extensionOwns(msg byte) bool {
	e.lock()
	defer e.unlock()
	for i := range e.negotiated {
		if e.negotiated[i].owns(msg) {
			return true
		}
	}
	return false
}

// Bounds of ExportKey's arguments.
const (
	minExportLabel   = 2 // one byte would be an RFC 4253 key letter
	maxExportContext = 1<<16 - 1
)

// ExportKey derives length bytes of keying material for the layers above
// from the first key exchange, in the manner of crypto/tls's
// ConnectionState.ExportKeyingMaterial: two ends of one connection derive
// the same bytes for the same label and context, other connections and
// other labels derive unrelated bytes, and rekeying changes nothing.
//
// It is RFC 4253 section 7.2's key derivation with the label in place of
// the key letter:
//
//	K1 = HASH(K || H || X || session_id)
//	K2 = HASH(K || H || K1), K3 = HASH(K || H || K1 || K2), ...
//
// truncated to length, where HASH, K (the shared secret, encoded as in the
// exchange hash) and H are those of the first key exchange, session_id =
// H, and X is the label's bytes, followed, if context is not nil, by
// context as an SSH string (uint32 length, then its bytes). Length 0 asks
// for K1 alone: one output of HASH, not extended. So the resume key of
// docs/PROTOCOL.resume.md, RK = HASH(K || H || "rsftp-resume-v00" || H),
// is ExportKey("rsftp-resume-v00", nil, 0).
//
// The label must be at least two printable ASCII characters (no space),
// which keeps it apart from the key letters and from the context; context
// is at most 65535 bytes. The first key exchange's secret is kept for the
// life of the connection only where one of Config.Extensions was
// negotiated; elsewhere it is dropped after the first key exchange, as the
// keys derived from it are, and ExportKey returns an error.
func (e *engine) ExportKey(label string, context []byte, length int) ([]byte, error) {
	if len(label) < minExportLabel {
		return nil, fmt.Errorf("transport: export label %q is shorter than %d bytes", label, minExportLabel)
	}
	for i := 0; i < len(label); i++ {
		if label[i] <= ' ' || label[i] > '~' {
			return nil, fmt.Errorf("transport: export label %q is not printable ASCII", label)
		}
	}
	if len(context) > maxExportContext {
		return nil, fmt.Errorf("transport: export context of %d bytes exceeds %d", len(context), maxExportContext)
	}
	if length < 0 {
		return nil, fmt.Errorf("transport: negative export length %d", length)
	}
	e.lock()
	ex := e.exporter
	e.unlock()
	if ex == nil {
		return nil, errors.New("transport: no keying material to export: no extension was negotiated")
	}
	x := []byte(label)
	if context != nil {
		x = append(x, byte(len(context)>>24), byte(len(context)>>16), byte(len(context)>>8), byte(len(context)))
		x = append(x, context...)
	}
	if length == 0 {
		length = ex.hash.Size()
	}
	return deriveLabelled(ex.hash, ex.k, e.sessionID, x, length), nil
}

// deriveLabelled is kex.DeriveKey with x in place of the key letter.
func deriveLabelled(hash crypto.Hash, K, H, x []byte, n int) []byte {
	h := hash.New()
	h.Write(K)
	h.Write(H)
	h.Write(x)
	h.Write(H)
	out := h.Sum(nil)
	for len(out) < n {
		h.Reset()
		h.Write(K)
		h.Write(H)
		h.Write(out)
		out = h.Sum(out)
	}
	return out[:n]
}

// negotiateExtensions records, at the first KEXINIT, which configured
// extensions both sides named.
func (e *engine) negotiateExtensions(peer *kexInitMsg) {
	var got []Extension
	for _, x := range e.cfg.Extensions {
		if _, theirs := x.names(e.isClient); slices.Contains(peer.KexAlgos, theirs) {
			got = append(got, x)
		}
	}
	e.lock()
	e.negotiated = got
	e.unlock()
}

// keepExporter keeps the first key exchange's secret for ExportKey where
// an extension was negotiated.
func (e *engine) keepExporter(res *kex.Result) {
	e.lock()
	defer e.unlock()
	if len(e.negotiated) == 0 {
		return
	}
	e.exporter = &exporter{hash: res.Hash, k: bytes.Clone(res.K)}
}

// quietFailures reports whether a negotiated extension in effect (the
// first key exchange completed) asks transport failures to go without
// DISCONNECT. It belongs to the reading goroutine (it reads the reader's
// kex state).
func (e *engine) quietFailures() bool {
	if !e.rk.firstDone {
		return false
	}
	e.lock()
	defer e.unlock()
	for i := range e.negotiated {
		if e.negotiated[i].QuietFailures {
			return true
		}
	}
	return false
}

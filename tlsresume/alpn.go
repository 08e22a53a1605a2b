package tlsresume

import (
	"crypto/tls"
	"slices"
	"strings"
)

// Marker is the ALPN protocol name of the resumable mode with no
// application protocol; "P+" + Marker is its name with application
// protocol P (section 2).
const Marker = "rsftp-resume/1"

const suffix = "+" + Marker

// maxALPN is the longest protocol name ALPN carries (RFC 7301 section 3.1).
const maxALPN = 255

// resumableName is the name offering the resumable mode with application
// protocol p ("" for none), or "" if it would be too long for ALPN.
func resumableName(p string) string {
	if p == "" {
		return Marker
	}
	if len(p)+len(suffix) > maxALPN {
		return ""
	}
	return p + suffix
}

// splitALPN reports whether a negotiated protocol is a resumable one and
// the application protocol it carries.
func splitALPN(neg string) (app string, resumable bool) {
	if neg == Marker {
		return "", true
	}
	if p, ok := strings.CutSuffix(neg, suffix); ok && p != "" {
		return p, true
	}
	return neg, false
}

// clientOffer is the client's ALPN list: each of the application's
// protocols paired with the marker, in its order, then the application's
// own (a server without the extension picks among those as it would); an
// application with none offers the marker alone.
func clientOffer(app []string) []string {
	if len(app) == 0 {
		return []string{Marker}
	}
	out := make([]string, 0, 2*len(app))
	for _, p := range app {
		if n := resumableName(p); n != "" {
			out = append(out, n)
		}
	}
	return append(out, app...)
}

// serverProtos is the server's ALPN list for a client that may use TLS
// 1.3: the application's protocols paired with the marker (so the
// application's order decides, as crypto/tls's server preference does),
// the marker alone (a client with no application protocol), then the
// application's own for stock clients.
func serverProtos(app []string) []string {
	out := make([]string, 0, 2*len(app)+1)
	for _, p := range app {
		if n := resumableName(p); n != "" {
			out = append(out, n)
		}
	}
	out = append(out, Marker)
	return append(out, app...)
}

// allows13 reports whether a config lets TLS 1.3 be negotiated.
func allows13(c *tls.Config) bool {
	return c.MaxVersion == 0 || c.MaxVersion >= tls.VersionTLS13
}

// offers13 reports whether a ClientHello offers TLS 1.3.
func offers13(h *tls.ClientHelloInfo) bool {
	return slices.Contains(h.SupportedVersions, tls.VersionTLS13)
}

// appState is a connection's state as the application sees it: the
// negotiated protocol without the marker.
func appState(st tls.ConnectionState) tls.ConnectionState {
	st.NegotiatedProtocol, _ = splitALPN(st.NegotiatedProtocol)
	return st
}

package resume

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/rsftp/rsftp/internal/wire"
)

// keyLabel replaces RFC 4253's key letter in the resume key derivation.
const keyLabel = "rsftp-resume-v00"

// MAC labels.
const (
	requestLabel = "rsftp-resume-request-v00"
	acceptLabel  = "rsftp-resume-accept-v00"
)

// KeyExporter is what Key needs of a connection: keying material derived
// from its first key exchange. transport.Conn's ExportKey is one; its doc
// comment gives the formula, of which RK is the instance with the label
// "rsftp-resume-v00", no context and one hash output.
type KeyExporter interface {
	ExportKey(label string, context []byte, length int) ([]byte, error)
}

// Key returns the resume key RK of the session whose first connection is
// c, on which the extension was negotiated: the same bytes as DeriveKey
// from that connection's key exchange (docs/PROTOCOL.resume.md section
// 4.1). Callers keep it for the life of the session.
func Key(c KeyExporter) ([]byte, error) {
	rk, err := c.ExportKey(keyLabel, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("resume: deriving the resume key: %w", err)
	}
	return rk, nil
}

// DeriveKey computes the resume key RK = HASH(K || H || "rsftp-resume-v00"
// || H) from the first connection's key exchange: hash is its method's
// hash, K the shared secret as encoded in the exchange hash, H the
// exchange hash (the session identifier).
func DeriveKey(hash crypto.Hash, K, H []byte) ([]byte, error) {
	if !hash.Available() {
		return nil, fmt.Errorf("resume: hash %v not available", hash)
	}
	if len(K) == 0 || len(H) == 0 {
		return nil, errors.New("resume: empty shared secret or exchange hash")
	}
	h := hash.New()
	h.Write(K)
	h.Write(H)
	h.Write([]byte(keyLabel))
	h.Write(H)
	return h.Sum(nil), nil
}

// RequestMAC is the MAC of RESUME_REQUEST on the connection whose
// exchange hash is newH.
func RequestMAC(rk, newH, handle []byte, clientReceived uint64) []byte {
	m := hmac.New(sha256.New, rk)
	b := wire.AppendString(nil, requestLabel)
	b = wire.AppendBytes(b, newH)
	b = wire.AppendBytes(b, handle)
	b = wire.AppendUint64(b, clientReceived)
	m.Write(b)
	return m.Sum(nil)
}

// AcceptMAC is the MAC of RESUME_ACCEPT.
func AcceptMAC(rk, newH, handle []byte, serverReceived, clientReceived uint64) []byte {
	m := hmac.New(sha256.New, rk)
	b := wire.AppendString(nil, acceptLabel)
	b = wire.AppendBytes(b, newH)
	b = wire.AppendBytes(b, handle)
	b = wire.AppendUint64(b, serverReceived)
	b = wire.AppendUint64(b, clientReceived)
	m.Write(b)
	return m.Sum(nil)
}

// VerifyRequest checks a request's MAC in constant time.
func VerifyRequest(rk, newH []byte, req *Request) bool {
	return hmac.Equal(req.MAC, RequestMAC(rk, newH, req.Handle, req.Received))
}

// VerifyAccept checks an answer's MAC in constant time; clientReceived is
// the count the client sent in its request.
func VerifyAccept(rk, newH, handle []byte, acc *Accept, clientReceived uint64) bool {
	return hmac.Equal(acc.MAC, AcceptMAC(rk, newH, handle, acc.Received, clientReceived))
}

// CountInRange reports whether a count n the peer says it received is
// one this side can resume from: acked <= n <= sent, where acked is the
// highest count the peer acknowledged (everything from there on is still
// retained) and sent the number of counted messages sent. Nothing outside
// that range may be resent.
func CountInRange(n, acked, sent uint64) bool {
	return acked <= n && n <= sent
}

package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rsftp/rsftp/internal/wire"
)

// Transport is what authentication needs from an SSH transport after the
// first key exchange.
type Transport interface {
	ReadPacket() ([]byte, error) // next non-transport payload (msg byte first); valid until next call
	WritePacket(p []byte) error
	SessionID() []byte
}

// Service and method names (RFC 4252, RFC 4256).
const (
	serviceUserauth   = "ssh-userauth"
	serviceConnection = "ssh-connection"

	methodNone     = "none"
	methodPubkey   = "publickey"
	methodPassword = "password"
	methodKbdInt   = "keyboard-interactive"
)

// Method specific message numbers. They share the number 60 (and 61), so
// what a 60 means depends on the method in progress (RFC 4252 section 7
// and 8, RFC 4256 section 5).
const (
	msgUserauthPKOK                 = wire.MsgUserauthPKOK // publickey
	msgUserauthPasswdChangereq      = 60                   // password
	msgUserauthInfoRequest          = 60                   // keyboard-interactive
	msgUserauthInfoResponse         = 61                   // keyboard-interactive
	msgUserauthFirstMethodSpec      = 60
	msgUserauthLastMethodSpec       = 79
	maxUserLen                      = 256  // bytes of a user name we accept
	maxPasswordLen                  = 1024 // bytes of a password the server passes to its callback
	maxBannerLen                    = 16 << 10
	maxBanners                      = 32 // per authentication, before the client gives up
	maxKbdIntRounds                 = 32 // INFO_REQUEST rounds per keyboard-interactive attempt
	maxKbdIntPrompts                = 64
	maxKbdIntFieldLen               = 4096 // name, instruction, prompt or response
	minPromptEncodedLen             = 4 + 1
	minResponseEncodedLen           = 4
	defaultMaxAuthTries             = 6
	signatureBoolTrue          byte = 1
)

// DisconnectError reports a condition after which the SSH connection must be
// closed. The caller sends SSH_MSG_DISCONNECT with Reason and Message (both
// are safe to send to the peer) and then closes the transport.
type DisconnectError struct {
	Reason  uint32 // a wire.Disconnect* code
	Message string
}

func (e *DisconnectError) Error() string {
	return fmt.Sprintf("auth: disconnect (reason %d): %s", e.Reason, e.Message)
}

func protocolError(format string, args ...any) *DisconnectError {
	return &DisconnectError{Reason: wire.DisconnectProtocolError, Message: fmt.Sprintf(format, args...)}
}

// userauthRequest is SSH_MSG_USERAUTH_REQUEST (RFC 4252 section 5) with
// the fields of the methods this package knows decoded.
type userauthRequest struct {
	User    string
	Service string
	Method  string

	// publickey (RFC 4252 section 7)
	HasSig    bool
	Algorithm string
	PubKey    []byte
	Signature []byte

	// password (RFC 4252 section 8)
	ChangePassword bool
	Password       []byte
	NewPassword    []byte

	// keyboard-interactive (RFC 4256 section 3.1)
	Language   string
	Submethods string

	// any other method: the undecoded method-specific fields
	Rest []byte
}

func marshalUserauthRequest(r *userauthRequest) []byte {
	b := []byte{wire.MsgUserauthRequest}
	b = wire.AppendString(b, r.User)
	b = wire.AppendString(b, r.Service)
	b = wire.AppendString(b, r.Method)
	switch r.Method {
	case methodNone:
	case methodPubkey:
		b = wire.AppendBool(b, r.HasSig)
		b = wire.AppendString(b, r.Algorithm)
		b = wire.AppendBytes(b, r.PubKey)
		if r.HasSig {
			b = wire.AppendBytes(b, r.Signature)
		}
	case methodPassword:
		b = wire.AppendBool(b, r.ChangePassword)
		b = wire.AppendBytes(b, r.Password)
		if r.ChangePassword {
			b = wire.AppendBytes(b, r.NewPassword)
		}
	case methodKbdInt:
		b = wire.AppendString(b, r.Language)
		b = wire.AppendString(b, r.Submethods)
	default:
		b = append(b, r.Rest...)
	}
	return b
}

// parseUserauthRequest decodes a USERAUTH_REQUEST. Byte slices alias p.
func parseUserauthRequest(p []byte) (*userauthRequest, error) {
	rd := wire.NewReader(p)
	if rd.Byte() != wire.MsgUserauthRequest {
		return nil, errors.New("auth: not a USERAUTH_REQUEST")
	}
	r := &userauthRequest{}
	user := rd.Bytes()
	service := rd.Bytes()
	method := rd.Bytes()
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("auth: malformed USERAUTH_REQUEST: %w", err)
	}
	if len(user) > maxUserLen {
		return nil, fmt.Errorf("auth: user name of %d bytes exceeds %d", len(user), maxUserLen)
	}
	if !validName(user) {
		return nil, errors.New("auth: user name is not printable UTF-8")
	}
	if len(service) > 64 || len(method) > 64 {
		return nil, errors.New("auth: service or method name too long")
	}
	r.User, r.Service, r.Method = string(user), string(service), string(method)
	switch r.Method {
	case methodNone:
	case methodPubkey:
		r.HasSig = rd.Bool()
		r.Algorithm = rd.String()
		r.PubKey = rd.Bytes()
		if r.HasSig {
			r.Signature = rd.Bytes()
		}
	case methodPassword:
		r.ChangePassword = rd.Bool()
		r.Password = rd.Bytes()
		if r.ChangePassword {
			r.NewPassword = rd.Bytes()
		}
	case methodKbdInt:
		r.Language = rd.String()
		r.Submethods = rd.String()
	default:
		r.Rest = rd.Rest()
	}
	if err := rd.Done(); err != nil {
		return nil, fmt.Errorf("auth: malformed %q USERAUTH_REQUEST: %w", r.Method, err)
	}
	return r, nil
}

// validName reports whether b is valid UTF-8 without control characters,
// which keeps user names safe to log and to hand to callbacks.
func validName(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range string(b) {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return false
		}
	}
	return true
}

// marshalPublickeySignedData builds the data a publickey signature covers
// (RFC 4252 section 7): the session identifier followed by the request
// with the "has signature" flag TRUE and without the signature.
func marshalPublickeySignedData(sessionID []byte, user, service, algorithm string, pubKey []byte) []byte {
	b := wire.AppendBytes(nil, sessionID)
	b = append(b, wire.MsgUserauthRequest)
	b = wire.AppendString(b, user)
	b = wire.AppendString(b, service)
	b = wire.AppendString(b, methodPubkey)
	b = append(b, signatureBoolTrue)
	b = wire.AppendString(b, algorithm)
	b = wire.AppendBytes(b, pubKey)
	return b
}

// parseSignatureAlgorithm returns the algorithm name at the front of an SSH
// signature encoding (string algorithm, string blob), checking its shape.
//
// A security key's signature goes on after the body (flags, counter and,
// for webauthn, three more strings: PROTOCOL.u2f), so bytes after it are
// left to the key's Verify, which reads the whole blob strictly.
func parseSignatureAlgorithm(sig []byte) (string, error) {
	rd := wire.NewReader(sig)
	algo := rd.String()
	rd.Bytes()
	if err := rd.Err(); err != nil {
		return "", fmt.Errorf("auth: malformed signature: %w", err)
	}
	return algo, nil
}

// userauthFailure is SSH_MSG_USERAUTH_FAILURE (RFC 4252 section 5.1).
type userauthFailure struct {
	Methods        []string // authentications that can continue
	PartialSuccess bool
}

func marshalUserauthFailure(f *userauthFailure) []byte {
	b := []byte{wire.MsgUserauthFailure}
	b = wire.AppendNameList(b, f.Methods)
	return wire.AppendBool(b, f.PartialSuccess)
}

func parseUserauthFailure(p []byte) (*userauthFailure, error) {
	rd := wire.NewReader(p)
	if rd.Byte() != wire.MsgUserauthFailure {
		return nil, errors.New("auth: not a USERAUTH_FAILURE")
	}
	f := &userauthFailure{Methods: rd.NameList(), PartialSuccess: rd.Bool()}
	if err := rd.Done(); err != nil {
		return nil, fmt.Errorf("auth: malformed USERAUTH_FAILURE: %w", err)
	}
	if len(f.Methods) > 32 {
		return nil, fmt.Errorf("auth: USERAUTH_FAILURE lists %d methods", len(f.Methods))
	}
	return f, nil
}

func marshalUserauthSuccess() []byte { return []byte{wire.MsgUserauthSuccess} }

func parseUserauthSuccess(p []byte) error {
	if len(p) != 1 || p[0] != wire.MsgUserauthSuccess {
		return errors.New("auth: malformed USERAUTH_SUCCESS")
	}
	return nil
}

// marshalUserauthBanner builds SSH_MSG_USERAUTH_BANNER (RFC 4252 section 5.4).
func marshalUserauthBanner(message string) []byte {
	b := []byte{wire.MsgUserauthBanner}
	b = wire.AppendString(b, message)
	return wire.AppendString(b, "") // language tag
}

func parseUserauthBanner(p []byte) (string, error) {
	rd := wire.NewReader(p)
	if rd.Byte() != wire.MsgUserauthBanner {
		return "", errors.New("auth: not a USERAUTH_BANNER")
	}
	msg := rd.Bytes()
	rd.Bytes() // language tag, unused
	if err := rd.Done(); err != nil {
		return "", fmt.Errorf("auth: malformed USERAUTH_BANNER: %w", err)
	}
	if len(msg) > maxBannerLen {
		msg = msg[:maxBannerLen]
	}
	return strings.ToValidUTF8(string(msg), "\uFFFD"), nil
}

// marshalUserauthPKOK builds SSH_MSG_USERAUTH_PK_OK (RFC 4252 section 7).
func marshalUserauthPKOK(algorithm string, pubKey []byte) []byte {
	b := []byte{msgUserauthPKOK}
	b = wire.AppendString(b, algorithm)
	return wire.AppendBytes(b, pubKey)
}

func parseUserauthPKOK(p []byte) (algorithm string, pubKey []byte, err error) {
	rd := wire.NewReader(p)
	if rd.Byte() != msgUserauthPKOK {
		return "", nil, errors.New("auth: not a USERAUTH_PK_OK")
	}
	algorithm = rd.String()
	pubKey = rd.Bytes()
	if err := rd.Done(); err != nil {
		return "", nil, fmt.Errorf("auth: malformed USERAUTH_PK_OK: %w", err)
	}
	return algorithm, pubKey, nil
}

// parseUserauthPasswdChangereq decodes SSH_MSG_USERAUTH_PASSWD_CHANGEREQ
// (RFC 4252 section 8).
func parseUserauthPasswdChangereq(p []byte) (prompt string, err error) {
	rd := wire.NewReader(p)
	if rd.Byte() != msgUserauthPasswdChangereq {
		return "", errors.New("auth: not a USERAUTH_PASSWD_CHANGEREQ")
	}
	prompt = rd.String()
	rd.Bytes() // language tag
	if err := rd.Done(); err != nil {
		return "", fmt.Errorf("auth: malformed USERAUTH_PASSWD_CHANGEREQ: %w", err)
	}
	return prompt, nil
}

// userauthInfoRequest is SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 section 3.2).
type userauthInfoRequest struct {
	Name        string
	Instruction string
	Prompts     []string
	Echo        []bool
}

func marshalUserauthInfoRequest(r *userauthInfoRequest) []byte {
	b := []byte{msgUserauthInfoRequest}
	b = wire.AppendString(b, r.Name)
	b = wire.AppendString(b, r.Instruction)
	b = wire.AppendString(b, "") // language tag
	b = wire.AppendUint32(b, uint32(len(r.Prompts)))
	for i, p := range r.Prompts {
		b = wire.AppendString(b, p)
		b = wire.AppendBool(b, i < len(r.Echo) && r.Echo[i])
	}
	return b
}

func parseUserauthInfoRequest(p []byte) (*userauthInfoRequest, error) {
	rd := wire.NewReader(p)
	if rd.Byte() != msgUserauthInfoRequest {
		return nil, errors.New("auth: not a USERAUTH_INFO_REQUEST")
	}
	r := &userauthInfoRequest{}
	name := rd.Bytes()
	instruction := rd.Bytes()
	rd.Bytes() // language tag, deprecated
	n := rd.Uint32()
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("auth: malformed USERAUTH_INFO_REQUEST: %w", err)
	}
	if len(name) > maxKbdIntFieldLen || len(instruction) > maxKbdIntFieldLen {
		return nil, errors.New("auth: USERAUTH_INFO_REQUEST name or instruction too long")
	}
	// Check the count against both a fixed bound and the bytes present
	// before allocating anything sized by it.
	if n > maxKbdIntPrompts || uint64(n)*minPromptEncodedLen > uint64(rd.Len()) {
		return nil, fmt.Errorf("auth: USERAUTH_INFO_REQUEST with implausible prompt count %d", n)
	}
	r.Name = strings.ToValidUTF8(string(name), "\uFFFD")
	r.Instruction = strings.ToValidUTF8(string(instruction), "\uFFFD")
	r.Prompts = make([]string, n)
	r.Echo = make([]bool, n)
	for i := range r.Prompts {
		prompt := rd.Bytes()
		if len(prompt) > maxKbdIntFieldLen {
			return nil, errors.New("auth: USERAUTH_INFO_REQUEST prompt too long")
		}
		r.Prompts[i] = strings.ToValidUTF8(string(prompt), "\uFFFD")
		r.Echo[i] = rd.Bool()
	}
	if err := rd.Done(); err != nil {
		return nil, fmt.Errorf("auth: malformed USERAUTH_INFO_REQUEST: %w", err)
	}
	return r, nil
}

// marshalUserauthInfoResponse builds SSH_MSG_USERAUTH_INFO_RESPONSE
// (RFC 4256 section 3.4).
func marshalUserauthInfoResponse(responses []string) []byte {
	b := []byte{msgUserauthInfoResponse}
	b = wire.AppendUint32(b, uint32(len(responses)))
	for _, r := range responses {
		b = wire.AppendString(b, r)
	}
	return b
}

func parseUserauthInfoResponse(p []byte) ([]string, error) {
	rd := wire.NewReader(p)
	if rd.Byte() != msgUserauthInfoResponse {
		return nil, errors.New("auth: not a USERAUTH_INFO_RESPONSE")
	}
	n := rd.Uint32()
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("auth: malformed USERAUTH_INFO_RESPONSE: %w", err)
	}
	if n > maxKbdIntPrompts || uint64(n)*minResponseEncodedLen > uint64(rd.Len()) {
		return nil, fmt.Errorf("auth: USERAUTH_INFO_RESPONSE with implausible response count %d", n)
	}
	out := make([]string, n)
	for i := range out {
		resp := rd.Bytes()
		if len(resp) > maxKbdIntFieldLen {
			return nil, errors.New("auth: USERAUTH_INFO_RESPONSE answer too long")
		}
		out[i] = string(resp)
	}
	if err := rd.Done(); err != nil {
		return nil, fmt.Errorf("auth: malformed USERAUTH_INFO_RESPONSE: %w", err)
	}
	return out, nil
}

func marshalServiceRequest(service string) []byte {
	return wire.AppendString([]byte{wire.MsgServiceRequest}, service)
}

func parseServiceRequest(p []byte) (string, error) {
	rd := wire.NewReader(p)
	if rd.Byte() != wire.MsgServiceRequest {
		return "", errors.New("auth: not a SERVICE_REQUEST")
	}
	s := rd.String()
	if err := rd.Done(); err != nil {
		return "", fmt.Errorf("auth: malformed SERVICE_REQUEST: %w", err)
	}
	return s, nil
}

func marshalServiceAccept(service string) []byte {
	return wire.AppendString([]byte{wire.MsgServiceAccept}, service)
}

func parseServiceAccept(p []byte) (string, error) {
	rd := wire.NewReader(p)
	if rd.Byte() != wire.MsgServiceAccept {
		return "", errors.New("auth: not a SERVICE_ACCEPT")
	}
	s := rd.String()
	if err := rd.Done(); err != nil {
		return "", fmt.Errorf("auth: malformed SERVICE_ACCEPT: %w", err)
	}
	return s, nil
}

// parseDisconnect decodes SSH_MSG_DISCONNECT (RFC 4253 section 11.1), in
// case the transport hands one up instead of turning it into an error.
func parseDisconnect(p []byte) (*DisconnectError, error) {
	rd := wire.NewReader(p)
	if rd.Byte() != wire.MsgDisconnect {
		return nil, errors.New("auth: not a DISCONNECT")
	}
	reason := rd.Uint32()
	msg := rd.Bytes()
	rd.Bytes() // language tag
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("auth: malformed DISCONNECT: %w", err)
	}
	if len(msg) > 256 {
		msg = msg[:256]
	}
	return &DisconnectError{Reason: reason, Message: strings.ToValidUTF8(string(msg), "\uFFFD")}, nil
}

// peerDisconnected is returned when the peer sent DISCONNECT.
type peerDisconnected struct{ d *DisconnectError }

func (e *peerDisconnected) Error() string {
	return fmt.Sprintf("auth: peer disconnected (reason %d): %q", e.d.Reason, e.d.Message)
}

// msgName names a message number for error texts.
func msgName(b byte) string {
	switch b {
	case wire.MsgDisconnect:
		return "DISCONNECT"
	case wire.MsgServiceRequest:
		return "SERVICE_REQUEST"
	case wire.MsgServiceAccept:
		return "SERVICE_ACCEPT"
	case wire.MsgUserauthRequest:
		return "USERAUTH_REQUEST"
	case wire.MsgUserauthFailure:
		return "USERAUTH_FAILURE"
	case wire.MsgUserauthSuccess:
		return "USERAUTH_SUCCESS"
	case wire.MsgUserauthBanner:
		return "USERAUTH_BANNER"
	case wire.MsgGlobalRequest:
		return "GLOBAL_REQUEST"
	case wire.MsgChannelOpen:
		return "CHANNEL_OPEN"
	}
	return fmt.Sprintf("message %d", b)
}

// readPacket reads one payload, giving up when ctx is done. ReadPacket
// itself cannot be interrupted, so when ctx ends first the read is left
// running in a goroutine: its result is dropped and the transport must be
// closed by the caller (which also ends that goroutine).
func readPacket(ctx context.Context, t Transport) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ctx.Done() == nil {
		return readNonEmpty(t)
	}
	type result struct {
		p   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := readNonEmpty(t)
		ch <- result{p, err}
	}()
	select {
	case r := <-ch:
		return r.p, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func readNonEmpty(t Transport) ([]byte, error) {
	p, err := t.ReadPacket()
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, protocolError("empty packet")
	}
	return p, nil
}

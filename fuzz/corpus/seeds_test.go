package corpus

// Mapping of the recordings of TestRecordFuzzCorpora onto the input
// formats of the module's fuzz targets, and the writer of the seed files
// (go test fuzz v1, one file per seed, named rec-<source>-<what>-NNN).

import (
	"bytes"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
)

// Message numbers the mapping looks at.
const (
	recMsgServiceRequest = 5
	recMsgServiceAccept  = 6
	recMsgKexInit        = 20
	recMsgNewKeys        = 21
	recMsgKexInitECDH    = 30
	recMsgKexReply       = 31
	recMsgUserauthReq    = 50
	recMsgUserauthOK     = 52
	recMsgGlobalRequest  = 80
	recMsgChannelOpen    = 90
	recMsgOpenConfirm    = 91
	recMsgOpenFailure    = 92
	recMsgChannelData    = 94
	recMsgExtendedData   = 95
	recMsgChannelClose   = 97
	recMsgChannelRequest = 98
	recMsgChannelFailure = 100
)

// recMsgNames name the connection protocol's messages in seed names.
var recMsgNames = map[byte]string{
	80: "global-request", 81: "request-success", 82: "request-failure",
	90: "channel-open", 91: "open-confirmation", 92: "open-failure", 93: "window-adjust",
	94: "data", 95: "extended-data", 96: "eof", 97: "close", 98: "channel-request",
	99: "channel-success", 100: "channel-failure",
}

// recLineStyle sorts known_hosts and authorized_keys lines by what
// their parser makes of them: marker, hashed or bracketed host, patterns,
// options (by name), key type. "" for blank lines and comments.
func recLineStyle(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return ""
	}
	var st []string
	for i, w := range f {
		switch {
		case strings.HasPrefix(w, "@"):
			st = append(st, w)
		case strings.HasPrefix(w, "|1|"):
			st = append(st, "hashed")
		case strings.HasPrefix(w, "["):
			st = append(st, "bracket")
		case strings.ContainsAny(w, "*?!"):
			st = append(st, "pattern")
		case strings.HasPrefix(w, "ssh-") || strings.HasPrefix(w, "ecdsa-"):
			st = append(st, w)
			if i+2 < len(f) {
				st = append(st, "comment")
			}
			return strings.Join(st, " ")
		case strings.Contains(w, "="):
			for _, o := range strings.Split(w, ",") {
				st = append(st, strings.SplitN(o, "=", 2)[0])
			}
		}
	}
	return strings.Join(st, " ")
}

// recClass sorts sessions by what they exercise, for spreading seeds.
func recClass(what string) string {
	for _, c := range []string{"rekey", "resume", "password", "kbdint", "sftp", "tcpip", "keepalive", "pty"} {
		if strings.Contains(what, c) {
			return c
		}
	}
	return "exec"
}

// Size bounds of what is committed.
const (
	recMaxFile = 64 << 10 // bytes of one seed file
	recFitFile = 60 << 10 // what sequence builders aim for, leaving room
)

// recTarget is a fuzz target and how many recorded seeds it gets.
type recTarget struct {
	pkg, name string
	max       int
}

// recTargets are the targets the recordings feed. A target that is not
// declared (any more) in its package is skipped.
var recTargets = []recTarget{
	{"transport", "FuzzInboundPacket", 26},
	{"transport", "FuzzParseKexInit", 24},
	{"transport", "FuzzReadVersion", 8},
	{"transport", "FuzzConnAfterKex", 16},
	{"kex", "FuzzParseKexInitMsg", 12},
	{"kex", "FuzzParseKexReply", 16},
	{"kex", "FuzzParsePublicKey", 24},
	{"kex", "FuzzParseSignature", 24},
	{"auth", "FuzzServe", 20},
	{"auth", "FuzzAuthenticate", 16},
	{"auth", "FuzzParseKnownHosts", 20},
	{"auth", "FuzzParseAuthorizedKeys", 16},
	{"auth", "FuzzParsePrivateKey", 16},
	{"auth", "FuzzAgentReply", 16},
	{"channel", "FuzzMuxPackets", 30},
	{"fuzz", "FuzzPublicKey", 24},
	{"fuzz", "FuzzChannelMessages", 40},
	{"fuzz", "FuzzPrivateKey", 20},
	{"fuzz", "FuzzResumeMessages", 12},
	{"resume", "FuzzRegistryResume", 6},
	{"resume", "FuzzSessionReadPacket", 10},
	{"sftp", "FuzzServerPackets", 30},
	{"sftp", "FuzzClientReplies", 10},
	{"cmd/rsftp", "FuzzSSHConfig", 24},
}

// recSeed is one seed: its arguments, in the target's order, a label
// saying where it comes from (the file name) and a kind, so that the
// choice spreads over kinds before taking two of one.
type recSeed struct {
	label, kind string
	vals        []any
}

// recConvo is one connection's payloads as our side's tap saw them.
type recConvo struct {
	sess *recSession
	ev   []recEvent
}

// convos splits each session's tap into connections: a KEXINIT with
// sequence number 0 in a direction that had one already starts a new one.
func (r *recorder) convos() []recConvo {
	var out []recConvo
	for _, s := range r.sessions {
		if s.tap == nil {
			continue
		}
		var cur []recEvent
		var seen [2]bool
		for _, e := range s.tap.events() {
			d := 0
			if e.fromClient {
				d = 1
			}
			if len(e.p) > 0 && e.p[0] == recMsgKexInit && e.seq == 0 {
				if seen[d] {
					out = append(out, recConvo{s, cur})
					cur, seen = nil, [2]bool{}
				}
				seen[d] = true
			}
			cur = append(cur, e)
		}
		if len(cur) > 0 {
			out = append(out, recConvo{s, cur})
		}
	}
	// Client-server pairs in turn, so that every pair comes early in the
	// candidates of each target.
	byPair := map[string][]recConvo{}
	var pairs []string
	for _, c := range out {
		p := c.sess.client + "-" + c.sess.server
		if _, ok := byPair[p]; !ok {
			pairs = append(pairs, p)
		}
		byPair[p] = append(byPair[p], c)
	}
	var mixed []recConvo
	for i := 0; len(mixed) < len(out); i++ {
		for _, p := range pairs {
			if i < len(byPair[p]) {
				mixed = append(mixed, byPair[p][i])
			}
		}
	}
	return mixed
}

// recPlain is the unencrypted start of one direction of a connection.
type recPlain struct {
	sess       *recSession
	fromClient bool
	version    []byte   // the lines up to and including the version line
	raw        []byte   // the packets after it, NEWKEYS included
	packets    [][]byte // their payloads
}

// impl is the program that sent the bytes.
func (p recPlain) impl() string {
	if p.fromClient {
		return p.sess.client + "-client"
	}
	return p.sess.server + "-server"
}

func (p recPlain) dir() string {
	if p.fromClient {
		return "c2s"
	}
	return "s2c"
}

// recSplitPlain cuts a connection's first bytes into the version lines and
// the unencrypted packets ("none" cipher, no MAC) up to NEWKEYS.
func recSplitPlain(b []byte) (version, raw []byte, pkts [][]byte) {
	off := 0
	for {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return nil, nil, nil
		}
		line := b[off : off+i+1]
		off += i + 1
		if bytes.HasPrefix(line, []byte("SSH-")) {
			break
		}
	}
	version = b[:off]
	rest := b[off:]
	n := 0
	for len(rest)-n >= 5 {
		l := int(binary.BigEndian.Uint32(rest[n:]))
		if l < 2 || 4+l > len(rest)-n {
			break
		}
		pad := int(rest[n+4])
		if pad+1 >= l {
			break
		}
		payload := rest[n+5 : n+4+l-pad]
		pkts = append(pkts, payload)
		n += 4 + l
		if payload[0] == recMsgNewKeys {
			break
		}
	}
	return version, rest[:n], pkts
}

func (r *recorder) plains() []recPlain {
	var out []recPlain
	for _, s := range r.sessions {
		for _, w := range s.allWires() {
			c2s, s2c := w.bytes()
			for _, d := range []struct {
				b          []byte
				fromClient bool
			}{{c2s, true}, {s2c, false}} {
				v, raw, pkts := recSplitPlain(d.b)
				if v != nil {
					out = append(out, recPlain{sess: s, fromClient: d.fromClient, version: v, raw: raw, packets: pkts})
				}
			}
		}
	}
	return out
}

// recPayload is a payload recorded in the clear; payloads returns them
// all: taps, and the unencrypted packets of connections no tap saw.
type recPayload struct {
	sess       *recSession
	fromClient bool
	p          []byte
}

func (r *recorder) payloads(convos []recConvo, plains []recPlain) []recPayload {
	var out []recPayload
	for _, c := range convos {
		for _, e := range c.ev {
			out = append(out, recPayload{c.sess, e.fromClient, e.p})
		}
	}
	for _, p := range plains {
		if p.sess.tap != nil {
			continue // the tap has these
		}
		for _, pk := range p.packets {
			out = append(out, recPayload{p.sess, p.fromClient, pk})
		}
	}
	return out
}

// recJoin16 frames packets with a 16-bit length each (the auth targets).
func recJoin16(ps [][]byte) []byte {
	var b []byte
	for _, p := range ps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

// recQuotedLen is about what a []byte costs in a seed file.
func recQuotedLen(b []byte) int { return len(strconv.Quote(string(b))) }

// recTrimData shortens the data of a CHANNEL_DATA or EXTENDED_DATA
// message so that the whole message has at most n bytes; other messages
// come back as they are.
func recTrimData(p []byte, n int) []byte {
	if len(p) <= n || len(p) < 1 {
		return p
	}
	hdr := 5
	if p[0] == recMsgExtendedData {
		hdr = 9
	} else if p[0] != recMsgChannelData {
		return p
	}
	if n < hdr+4 || len(p) < hdr+4 {
		return p
	}
	keep := n - hdr - 4
	q := bytes.Clone(p[:hdr])
	q = binary.BigEndian.AppendUint32(q, uint32(keep))
	return append(q, p[hdr+4:hdr+4+keep]...)
}

// recipient returns the recipient channel of a channel message (91-100).
func recRecipient(p []byte) (uint32, bool) {
	if len(p) < 5 || p[0] < recMsgOpenConfirm || p[0] > recMsgChannelFailure {
		return 0, false
	}
	return binary.BigEndian.Uint32(p[1:]), true
}

func recWithRecipient(p []byte, id uint32) []byte {
	q := bytes.Clone(p)
	binary.BigEndian.PutUint32(q[1:], id)
	return q
}

// recRequestName is the name of a global or channel request, or the type
// of a channel open.
func recRequestName(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	rd := wire.NewReader(p[1:])
	switch p[0] {
	case recMsgGlobalRequest:
		return rd.String()
	case recMsgChannelOpen:
		return rd.String()
	case recMsgChannelRequest:
		rd.Uint32()
		return rd.String()
	}
	return ""
}

// recAuthDone is the index of USERAUTH_SUCCESS (or of RESUME_ACCEPT for a
// resumption) in a connection, or -1.
func recAuthDone(ev []recEvent) int {
	for i, e := range ev {
		if !e.fromClient && len(e.p) > 0 && (e.p[0] == recMsgUserauthOK || e.p[0] == resume.MsgAccept) {
			return i
		}
	}
	return -1
}

func recDir(fromClient bool) string {
	if fromClient {
		return "c2s"
	}
	return "s2c"
}

// recSigPair is a public key blob and a signature by it, from anywhere.
type recSigPair struct {
	label, kind string
	blob, sig   []byte
}

func recSigAlgo(sig []byte) string {
	return wire.NewReader(sig).String()
}

func recKeyType(blob []byte) string {
	return wire.NewReader(blob).String()
}

// sigPairs collects key blobs with signatures: host keys and the
// exchange hash signatures of KEX_ECDH_REPLY, userauth publickey
// requests, ssh-keygen -Y and ssh-agent signatures, and the host keys
// sshd announces (hostkeys-00@openssh.com, no signature).
func (r *recorder) sigPairs(pls []recPayload) []recSigPair {
	var out []recSigPair
	for _, pl := range pls {
		p := pl.p
		switch {
		case p[0] == recMsgKexReply && !pl.fromClient:
			rd := wire.NewReader(p[1:])
			hk, _, sig := rd.Bytes(), rd.Bytes(), rd.Bytes()
			if rd.Err() == nil {
				out = append(out, recSigPair{pl.sess.server + "-hostkey", "kex " + recSigAlgo(sig), hk, sig})
			}
		case p[0] == recMsgUserauthReq && pl.fromClient:
			rd := wire.NewReader(p[1:])
			_, _ = rd.String(), rd.String() // user, service
			if rd.String() != "publickey" {
				continue
			}
			signed := rd.Bool()
			algo, blob := rd.String(), rd.Bytes()
			var sig []byte
			if signed {
				sig = rd.Bytes()
			}
			if rd.Err() == nil {
				out = append(out, recSigPair{pl.sess.client + "-userauth", "userauth " + algo + strconv.FormatBool(signed), blob, sig})
			}
		case p[0] == recMsgGlobalRequest && recRequestName(p) == "hostkeys-00@openssh.com":
			rd := wire.NewReader(p[1:])
			_, _ = rd.String(), rd.Bool()
			for rd.Len() > 0 && rd.Err() == nil {
				blob := rd.Bytes()
				if rd.Err() == nil {
					out = append(out, recSigPair{pl.sess.server + "-hostkeys", "hostkeys " + recKeyType(blob), blob, nil})
				}
			}
		}
	}
	for _, s := range r.sigs {
		out = append(out, recSigPair{s.label, s.label + " " + recSigAlgo(s.sig), s.blob, s.sig})
	}
	return out
}

// recKeyIndex is the index in kex's testKeys of the key of the same kind.
func recKeyIndex(blob []byte) int {
	switch recKeyType(blob) {
	case kex.KeyAlgoED25519:
		return 0
	case kex.KeyAlgoECDSA256:
		return 1
	case kex.KeyAlgoECDSA384:
		return 2
	case kex.KeyAlgoECDSA521:
		return 3
	}
	if k, err := kex.ParsePublicKey(blob); err == nil {
		if rk, ok := k.CryptoPublicKey().(interface{ Size() int }); ok && rk.Size() > 256 {
			return 5
		}
	}
	return 4
}

// recMethodIndex guesses the kex method from the size of an ephemeral
// share, as the index that kex's fuzz targets' mode bits use (their
// fuzzMethods: ML-KEM hybrid, curve25519, curve25519@libssh.org,
// sntrup761x25519).
func recMethodIndex(q []byte) uint8 {
	switch len(q) {
	case 1184 + 32, 1088 + 32:
		return 0
	case 1158 + 32, 1039 + 32:
		return 3
	}
	return 1
}

// seeds maps the recordings onto every target's input format.
func (r *recorder) seeds() map[string][]recSeed {
	out := map[string][]recSeed{}
	add := func(target, label, kind string, vals ...any) {
		out[target] = append(out[target], recSeed{label: label, kind: kind, vals: vals})
	}
	convos := r.convos()
	plains := r.plains()
	pls := r.payloads(convos, plains)

	// transport: version lines, the unencrypted packets up to NEWKEYS,
	// every KEXINIT.
	for _, p := range plains {
		add("transport/FuzzReadVersion", p.impl()+"-version", p.impl(), p.version, !p.fromClient)
		if len(p.raw) > 0 && recQuotedLen(p.raw) < recFitFile {
			kind := p.sess.client + p.sess.server + p.dir()
			for _, pk := range p.packets {
				if pk[0] == recMsgKexInitECDH || pk[0] == recMsgKexReply {
					kind += strconv.Itoa(len(pk))
				}
			}
			add("transport/FuzzInboundPacket", p.sess.label()+"-"+p.dir()+"-plain", kind, uint8(0), p.raw)
		}
	}
	// The same target under each cipher: recorded payloads after
	// NEWKEYS, sealed again under the all-zero keys the target gives
	// every cipher, so that they decrypt there.
	combos := recCipherCombos()
	ci := 0
	for _, c := range convos {
		if ci >= len(combos) {
			break
		}
		for _, fromClient := range []bool{true, false} {
			if ci >= len(combos) {
				break
			}
			var pkts [][]byte
			keyed, size := false, 0
			for _, e := range c.ev {
				if e.fromClient != fromClient {
					continue
				}
				if !keyed {
					keyed = e.p[0] == recMsgNewKeys
					continue
				}
				p := recTrimData(e.p, 256)
				if len(pkts) >= 12 || size+len(p) > 2048 {
					break
				}
				pkts = append(pkts, p)
				size += len(p)
			}
			if len(pkts) == 0 {
				continue
			}
			cb := combos[ci]
			ci++
			label := c.sess.label() + "-" + recDir(fromClient) + "-sealed-" + cb.cipher
			if cb.mac != "" {
				label += "-" + cb.mac
			}
			add("transport/FuzzInboundPacket", label, "sealed "+cb.cipher+cb.mac, cb.which, recSeal(cb.cipher, cb.mac, pkts))
		}
	}
	seenKI := map[string]bool{}
	for _, pl := range pls {
		if pl.p[0] != recMsgKexInit || len(pl.p) < 17 || seenKI[string(pl.p[17:])] {
			continue
		}
		seenKI[string(pl.p[17:])] = true
		impl := pl.sess.server + "-server"
		if pl.fromClient {
			impl = pl.sess.client + "-client"
		}
		add("transport/FuzzParseKexInit", impl+"-kexinit", impl, pl.p)
	}

	// kex: ECDH init and reply messages, key blobs and signatures.
	ki := 0
	for _, pl := range pls {
		switch {
		case pl.p[0] == recMsgKexInitECDH && pl.fromClient:
			q := wire.NewReader(pl.p[1:]).Bytes()
			mi := recMethodIndex(q)
			add("kex/FuzzParseKexInitMsg", pl.sess.client+"-client-ecdh-init", pl.sess.client+strconv.Itoa(len(q)),
				mi|uint8(ki%6)<<2, pl.p)
			ki++
		case pl.p[0] == recMsgKexReply && !pl.fromClient:
			rd := wire.NewReader(pl.p[1:])
			hk, q, sig := rd.Bytes(), rd.Bytes(), rd.Bytes()
			if rd.Err() != nil {
				continue
			}
			ai := uint8(0)
			for i, a := range []string{kex.KeyAlgoED25519, kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521,
				kex.SigAlgoRSASHA256, kex.SigAlgoRSASHA512} {
				if a == recSigAlgo(sig) {
					ai = uint8(i)
				}
			}
			mi := recMethodIndex(q)
			kind := pl.sess.server + recSigAlgo(sig) + strconv.Itoa(len(q))
			add("kex/FuzzParseKexReply", pl.sess.server+"-server-ecdh-reply", kind, mi|ai<<2, hk, q, sig)
			add("kex/FuzzParseKexReply", pl.sess.server+"-server-ecdh-reply-whole", kind+"whole", mi|ai<<2|0x80, pl.p, []byte(nil), []byte(nil))
		}
	}
	seenSig := map[string]bool{}
	for _, sp := range r.sigPairs(pls) {
		key := string(sp.blob) + "\x00" + string(sp.sig)
		if seenSig[key] {
			continue
		}
		seenSig[key] = true
		mode := uint8(7)
		if sp.sig == nil {
			mode = 6
		}
		add("kex/FuzzParsePublicKey", sp.label, sp.kind, mode, sp.blob, sp.sig)
		add("fuzz/FuzzPublicKey", sp.label, sp.kind, sp.blob, sp.sig)
		if sp.sig != nil {
			kidx := uint8(recKeyIndex(sp.blob))
			add("kex/FuzzParseSignature", sp.label+"-sig", sp.kind+"whole", kidx|0x80, "", sp.sig)
			rd := wire.NewReader(sp.sig)
			algo, raw := rd.String(), rd.Bytes()
			if rd.Err() == nil {
				ai := uint8(7)
				for i, a := range []string{kex.KeyAlgoED25519, kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521,
					kex.SigAlgoRSASHA256, kex.SigAlgoRSASHA512, kex.KeyAlgoRSA} {
					if a == algo {
						ai = uint8(i)
					}
				}
				name := ""
				if ai == 7 {
					name = algo
				}
				add("kex/FuzzParseSignature", sp.label+"-sig-raw", sp.kind+"raw", kidx|ai<<3, name, raw)
			}
		}
	}

	// auth: the client's side of userauth for Serve, the server's for
	// Authenticate, each a whole recorded exchange.
	for _, c := range convos {
		label := c.sess.label()
		var cs, sc [][]byte
		done := false
		for _, e := range c.ev {
			t := e.p[0]
			isAuth := t == recMsgServiceRequest || t == recMsgServiceAccept || (t >= 50 && t <= 79)
			if e.fromClient {
				if isAuth {
					cs = append(cs, e.p)
				} else if done && len(cs) > 0 && t >= 80 && t <= 127 {
					cs = append(cs, e.p) // the first message after success
					break
				}
			} else if isAuth && !done {
				sc = append(sc, e.p)
				if t == recMsgUserauthOK {
					done = true
				}
			}
		}
		pair := c.sess.client + "-" + c.sess.server
		if len(cs) > 0 {
			add("auth/FuzzServe", label+"-userauth", pair, recJoin16(cs))
		}
		if len(sc) > 0 {
			add("auth/FuzzAuthenticate", label+"-userauth", pair, recJoin16(sc))
		}
	}

	// channel: per channel and direction, the messages after
	// authentication, renumbered to the target's channel 0; global
	// requests on their own.
	for _, c := range convos {
		start := recAuthDone(c.ev)
		if start < 0 {
			continue
		}
		for _, fromClient := range []bool{true, false} {
			var globals [][]byte
			var chans [][][]byte
			cur := map[uint32]int{} // recipient -> index in chans
			var pendingOpen []byte
			for _, e := range c.ev[start+1:] {
				if e.fromClient != fromClient || e.p[0] < 80 || e.p[0] > 100 {
					continue
				}
				p := e.p
				id, ok := recRecipient(p)
				if !ok {
					if p[0] == recMsgChannelOpen && fromClient {
						// It goes with the next channel to appear.
						if pendingOpen != nil {
							globals = append(globals, pendingOpen)
						}
						pendingOpen = p
						continue
					}
					globals = append(globals, p)
					continue
				}
				if !fromClient && (p[0] == recMsgOpenConfirm || p[0] == recMsgOpenFailure) {
					continue // the target's channel was opened by the peer
				}
				i, ok := cur[id]
				if !ok {
					i = len(chans)
					cur[id] = i
					chans = append(chans, nil)
					if pendingOpen != nil {
						chans[i] = append(chans[i], pendingOpen)
						pendingOpen = nil
					}
				}
				chans[i] = append(chans[i], recWithRecipient(p, 0))
				if p[0] == recMsgChannelClose {
					delete(cur, id) // the id may be reused for another channel
				}
			}
			for _, msgs := range chans {
				if data := recMuxStream(msgs); data != nil {
					kind := c.sess.client + "-" + c.sess.server + recDir(fromClient) + recClass(c.sess.what)
					add("channel/FuzzMuxPackets", c.sess.label()+"-"+recDir(fromClient)+"-channel", kind, data)
				}
			}
			if data := recMuxStream(globals); data != nil {
				add("channel/FuzzMuxPackets", c.sess.label()+"-"+recDir(fromClient)+"-global", c.sess.client+"-"+c.sess.server+recDir(fromClient)+"g", data)
			}
		}
	}

	// fuzz: single channel messages, by type and request name, the
	// smallest of each first; resume messages.
	var chanMsgs []recPayload
	for _, pl := range pls {
		if pl.p[0] >= 80 && pl.p[0] <= 100 {
			chanMsgs = append(chanMsgs, pl)
		}
	}
	slices.SortStableFunc(chanMsgs, func(a, b recPayload) int { return len(a.p) - len(b.p) })
	seenCM := map[string]int{}
	for _, pl := range chanMsgs {
		kind := fmt.Sprintf("%d %s %s", pl.p[0], recRequestName(pl.p), recDir(pl.fromClient))
		if seenCM[kind] >= 2 || len(pl.p) > 4096 {
			continue
		}
		seenCM[kind]++
		impl := pl.sess.server + "-server"
		if pl.fromClient {
			impl = pl.sess.client + "-client"
		}
		name := recRequestName(pl.p)
		if name == "" {
			name = recMsgNames[pl.p[0]]
		}
		add("fuzz/FuzzChannelMessages", impl+"-"+name, kind, pl.p)
	}
	for _, pl := range pls {
		if !resume.IsResumeMessage(pl.p[0]) {
			continue
		}
		impl := pl.sess.server + "-server"
		if pl.fromClient {
			impl = pl.sess.client + "-client"
		}
		add("fuzz/FuzzResumeMessages", impl+"-resume-"+strconv.Itoa(int(pl.p[0])), strconv.Itoa(int(pl.p[0])), pl.p)
		if pl.p[0] == resume.MsgRequest {
			if req, err := resume.ParseRequest(pl.p); err == nil {
				add("resume/FuzzRegistryResume", impl+"-resume-request", impl, pl.p, req.Received, byte(0))
			}
		}
	}

	// resume: what each side of a resumable session read after
	// RESUME_ENABLE or RESUME_ACCEPT (counted messages and ACKs).
	for _, c := range convos {
		for _, fromClient := range []bool{true, false} {
			started := false
			var pkts [][]byte
			var sentByReader uint64
			for _, e := range c.ev {
				t := e.p[0]
				if t == resume.MsgEnable || t == resume.MsgAccept {
					started = true
					continue
				}
				if !started {
					continue
				}
				if e.fromClient != fromClient {
					if resume.Counted(t) {
						sentByReader++
					}
					continue
				}
				if resume.Counted(t) || t == resume.MsgAck {
					p := recTrimData(e.p, 255)
					if len(p) <= 255 {
						pkts = append(pkts, p)
					}
				}
			}
			if !started || len(pkts) == 0 {
				continue
			}
			stream := []byte{byte(min(sentByReader, 15))}
			for _, p := range pkts {
				if recQuotedLen(stream)+recQuotedLen(p) > recFitFile {
					break
				}
				stream = append(stream, byte(len(p)))
				stream = append(stream, p...)
			}
			add("resume/FuzzSessionReadPacket", c.sess.label()+"-"+recDir(fromClient), c.sess.label()+recDir(fromClient), stream)
		}
	}

	// sftp: the byte stream each SFTP client sent, after its INIT.
	for _, c := range convos {
		for i, st := range recSFTPStreams(c.ev) {
			label := c.sess.what
			c.sess.mu.Lock()
			if i < len(c.sess.sftpLabels) {
				label = c.sess.sftpLabels[i]
			}
			c.sess.mu.Unlock()
			if data := recSFTPCut(st); len(data) > 0 {
				add("sftp/FuzzServerPackets", c.sess.client+"-"+c.sess.server+"-"+label, c.sess.client+label, data)
			}
		}
	}

	// sftp: the replies OpenSSH's internal-sftp gave to the requests of
	// FuzzClientReplies' operations: the operation mask, then each
	// reply as type, 16-bit length and body (without the request id,
	// which the target fills in).
	for _, c := range convos {
		c.sess.mu.Lock()
		ops := slices.Clone(c.sess.sftpOps)
		labels := slices.Clone(c.sess.sftpLabels)
		c.sess.mu.Unlock()
		if len(ops) == 0 {
			continue
		}
		for i, st := range recSFTPReplyStreams(c.ev) {
			if i >= len(ops) {
				break
			}
			in := []byte{ops[i]}
			for len(st) >= 5 {
				n := 4 + int(binary.BigEndian.Uint32(st))
				if n > len(st) || n < 5 {
					break
				}
				typ, body := st[4], st[5:n]
				st = st[n:]
				if typ != 2 && len(body) >= 4 { // all but VERSION carry an id
					body = body[4:]
				}
				body = body[:min(len(body), 0xffff)]
				if recQuotedLen(in)+recQuotedLen(body) > recFitFile {
					break
				}
				in = append(in, typ, byte(len(body)>>8), byte(len(body)))
				in = append(in, body...)
			}
			add("sftp/FuzzClientReplies", c.sess.client+"-"+c.sess.server+"-"+labels[i], labels[i], in)
		}
	}

	// transport: what one side sent after its first NEWKEYS, as the
	// records FuzzConnAfterKex has the sender send (tag 0, 16-bit
	// length, payload); data cut to 1 KiB. The mode picks sender, the
	// kex method the recording used for rekeys, the resume extension
	// when the recording had it, and ciphers in turn.
	nc := 0
	for _, c := range convos {
		for _, fromClient := range []bool{true, false} {
			var in []byte
			keyed, n := false, 0
			hybrid, resumeOn := false, false
			for _, e := range c.ev {
				if e.fromClient != fromClient {
					continue
				}
				t := e.p[0]
				if t == recMsgKexInitECDH && len(e.p) > 1000 {
					hybrid = true
				}
				if !keyed {
					keyed = t == recMsgNewKeys
					continue
				}
				if n >= 48 {
					break
				}
				if resume.IsResumeMessage(t) {
					resumeOn = true
				}
				p := recTrimData(e.p, 1024)
				if len(p) > 0xffff || recQuotedLen(in)+recQuotedLen(p) > recFitFile {
					break
				}
				in = append(in, 0)
				in = binary.BigEndian.AppendUint16(in, uint16(len(p)))
				in = append(in, p...)
				n++
			}
			if n == 0 {
				continue
			}
			mode := uint16(nc%5) | uint16(nc/5%4)<<3
			nc++
			if !fromClient {
				mode |= 1 << 5
			}
			if hybrid {
				mode |= 1 << 6
			}
			if resumeOn {
				mode |= 1 << 7
			}
			label := c.sess.label() + "-" + recDir(fromClient)
			add("transport/FuzzConnAfterKex", label+"-after-newkeys", c.sess.client+"-"+c.sess.server+recClass(c.sess.what)+recDir(fromClient), mode, in)
		}
	}

	// Files of OpenSSH's tools.
	// known_hosts and authorized_keys: each line of a recorded file on
	// its own first (small inputs fuzz faster), one per style of line,
	// then a few whole files.
	seenLine := map[string]bool{}
	lines := map[string]int{}
	for _, f := range r.files {
		target := map[string]string{"knownhosts": "auth/FuzzParseKnownHosts", "authkeys": "auth/FuzzParseAuthorizedKeys"}[f.kind]
		if target == "" {
			continue
		}
		for _, line := range strings.SplitAfter(string(f.data), "\n") {
			style := recLineStyle(line)
			if style == "" || seenLine[target+style] || lines[target] >= 12 {
				continue
			}
			seenLine[target+style] = true
			lines[target]++
			add(target, f.label+"-line", "line "+style, []byte(line))
		}
	}
	for _, f := range r.files {
		switch f.kind {
		case "knownhosts":
			kind := "file " + f.label
			if strings.HasPrefix(f.label, "openssh-written-") {
				kind = "file openssh-written" // one file per session: take few
			}
			add("auth/FuzzParseKnownHosts", f.label, kind, f.data)
		case "authkeys":
			add("auth/FuzzParseAuthorizedKeys", f.label, "file "+f.label, f.data)
		case "privkey", "privkey-other":
			add("fuzz/FuzzPrivateKey", f.label, f.label, f.data)
			if blk, _ := pem.Decode(f.data); blk != nil && blk.Type == "OPENSSH PRIVATE KEY" {
				add("auth/FuzzParsePrivateKey", f.label, f.label, blk.Bytes)
			}
		}
	}
	for _, a := range r.agent {
		add("auth/FuzzAgentReply", a.label+"-conversation", a.label, bytes.Join(a.replies, nil))
		for _, rep := range a.replies {
			if len(rep) > 4 {
				add("auth/FuzzAgentReply", a.label+"-reply-"+strconv.Itoa(int(rep[4])), "reply"+strconv.Itoa(int(rep[4])), rep)
			}
		}
	}
	for _, c := range r.configs {
		add("cmd/rsftp/FuzzSSHConfig", "openssh-config-"+c.label, c.label, c.host, c.opt, c.data)
	}
	return out
}

// recMuxStream frames messages for FuzzMuxPackets (a length byte before
// each, 0 meaning the rest): data messages are shortened to fit a length
// byte; the first message too long for one otherwise ends the stream.
func recMuxStream(msgs [][]byte) []byte {
	var b []byte
	for _, p := range msgs {
		p = recTrimData(p, 255)
		if len(p) > 255 {
			if recQuotedLen(b)+recQuotedLen(p) <= recFitFile {
				b = append(b, 0)
				b = append(b, p...)
			}
			break
		}
		if recQuotedLen(b)+recQuotedLen(p) > recFitFile {
			break
		}
		b = append(b, byte(len(p)))
		b = append(b, p...)
	}
	return b
}

// recSFTPStreams reassembles what the client sent on each SFTP subsystem
// channel of a connection, in the order the channels were started.
func recSFTPStreams(ev []recEvent) [][]byte {
	var out [][]byte
	open := map[uint32]int{} // recipient -> index in out
	for _, e := range ev {
		if !e.fromClient || len(e.p) < 5 {
			continue
		}
		id := binary.BigEndian.Uint32(e.p[1:])
		switch e.p[0] {
		case recMsgChannelRequest:
			rd := wire.NewReader(e.p[5:])
			typ := rd.String()
			rd.Bool()
			if typ == "subsystem" && strings.Contains(rd.String(), "sftp") {
				open[id] = len(out)
				out = append(out, nil)
			}
		case recMsgChannelData:
			if i, ok := open[id]; ok {
				out[i] = append(out[i], wire.NewReader(e.p[5:]).Bytes()...)
			}
		case recMsgChannelClose, 96:
			delete(open, id)
		}
	}
	return out
}

// recSFTPReplyStreams reassembles what the server sent on each SFTP
// subsystem channel of a connection, in the order the channels were
// started.
func recSFTPReplyStreams(ev []recEvent) [][]byte {
	var out [][]byte
	clientID := map[uint32]uint32{} // the server's channel id -> the client's
	open := map[uint32]int{}        // the client's channel id -> index in out
	for _, e := range ev {
		if len(e.p) < 9 {
			continue
		}
		id := binary.BigEndian.Uint32(e.p[1:])
		switch {
		case !e.fromClient && e.p[0] == recMsgOpenConfirm:
			clientID[binary.BigEndian.Uint32(e.p[5:])] = id
		case e.fromClient && e.p[0] == recMsgChannelRequest:
			rd := wire.NewReader(e.p[5:])
			typ := rd.String()
			rd.Bool()
			if cid, ok := clientID[id]; ok && typ == "subsystem" && strings.Contains(rd.String(), "sftp") {
				open[cid] = len(out)
				out = append(out, nil)
			}
		case !e.fromClient && e.p[0] == recMsgChannelData:
			if i, ok := open[id]; ok {
				out[i] = append(out[i], wire.NewReader(e.p[5:]).Bytes()...)
			}
		case !e.fromClient && (e.p[0] == recMsgChannelClose || e.p[0] == 96):
			delete(open, id)
		}
	}
	return out
}

// recSFTPCut drops the client's INIT (FuzzServerPackets sends its own) and
// keeps whole packets while the seed stays small.
func recSFTPCut(st []byte) []byte {
	if len(st) < 5 || st[4] != 1 {
		return nil
	}
	n := 4 + int(binary.BigEndian.Uint32(st))
	if n > len(st) {
		return nil
	}
	st = st[n:]
	end, q := 0, 0
	for end+4 <= len(st) {
		l := 4 + int(binary.BigEndian.Uint32(st[end:]))
		if end+l > len(st) {
			break
		}
		ql := recQuotedLen(st[end : end+l])
		if q+ql > recFitFile {
			break
		}
		q += ql
		end += l
	}
	return st[:end]
}

// recEncodeSeed writes values in the go test fuzz v1 format.
func recEncodeSeed(vals []any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case uint16:
			fmt.Fprintf(&b, "uint16(%d)\n", v)
		case uint64:
			fmt.Fprintf(&b, "uint64(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			panic(fmt.Sprintf("recEncodeSeed: %T", v))
		}
	}
	return b.Bytes()
}

var recLabelClean = regexp.MustCompile(`[^a-z0-9]+`)

// recModuleRoot is the module's root directory, relative to this package's
// (go test runs a package's tests in its own directory): the targets' pkg
// paths are relative to it.
const recModuleRoot = "../.."

// recTargetDeclared reports whether the package declares the fuzz target.
func recTargetDeclared(t recTarget) bool {
	files, _ := filepath.Glob(filepath.Join(recModuleRoot, filepath.FromSlash(t.pkg), "*_test.go"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("func "+t.name+"(")) {
			return true
		}
	}
	return false
}

// recWriteCorpora replaces the rec-* files of every target with the chosen
// seeds: kinds in turn, no content twice (nor one a committed seed has),
// none over recMaxFile.
func recWriteCorpora(out string, seeds map[string][]recSeed) ([]string, error) {
	var report []string
	total := 0
	for _, tg := range recTargets {
		key := tg.pkg + "/" + tg.name
		if !recTargetDeclared(tg) {
			report = append(report, fmt.Sprintf("%-36s skipped: not declared", key))
			continue
		}
		dir := filepath.Join(out, filepath.FromSlash(tg.pkg), "testdata", "fuzz", tg.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		have := map[string]bool{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if strings.HasPrefix(e.Name(), "rec-") {
				if err := os.Remove(p); err != nil {
					return nil, err
				}
				continue
			}
			if b, err := os.ReadFile(p); err == nil {
				have[string(b)] = true
			}
		}
		// Kinds in turn, in order of first appearance; within a kind,
		// the first seed of each label before the second of any.
		ordered := slices.Clone(seeds[key])
		nth := map[string]int{}
		rank := make(map[*recSeed]int)
		for i := range ordered {
			rank[&ordered[i]] = nth[ordered[i].label]
			nth[ordered[i].label]++
		}
		idx := make([]int, len(ordered))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return rank[&ordered[a]] - rank[&ordered[b]] })
		byKind := map[string][]recSeed{}
		var kinds []string
		for _, i := range idx {
			s := ordered[i]
			if _, ok := byKind[s.kind]; !ok {
				kinds = append(kinds, s.kind)
			}
			byKind[s.kind] = append(byKind[s.kind], s)
		}
		var files []string
		count := map[string]int{}
		size := 0
		for round := 0; len(files) < tg.max; round++ {
			progress := false
			for _, k := range kinds {
				if len(files) >= tg.max {
					break
				}
				if round >= len(byKind[k]) {
					continue
				}
				progress = true
				s := byKind[k][round]
				data := recEncodeSeed(s.vals)
				if len(data) > recMaxFile || have[string(data)] {
					continue
				}
				have[string(data)] = true
				label := strings.Trim(recLabelClean.ReplaceAllString(strings.ToLower(s.label), "-"), "-")
				count[label]++
				name := fmt.Sprintf("rec-%s-%03d", label, count[label])
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					return nil, err
				}
				files = append(files, name)
				size += len(data)
			}
			if !progress {
				break
			}
		}
		total += size
		report = append(report, fmt.Sprintf("%-36s %3d seeds, %7d bytes (%d candidates)", key, len(files), size, len(seeds[key])))
	}
	report = append(report, fmt.Sprintf("total %d bytes", total))
	return report, nil
}

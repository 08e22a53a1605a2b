package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// processStart is when the process began, near enough: the packet log's
// times count from it, so that a command's log covers it from start to
// exit.
var processStart = time.Now()

// packetLog is $RSFTP_PACKETS, for developers counting round trips
// (scripts/bench-wan.sh, issue 17): when set, every packet the client
// sends or receives is appended to that file as one line, the
// milliseconds since the process started, > for sent and < for received,
// the message number and name, the payload's length, and for channel
// data that starts an SFTP packet its type. Names and sizes only,
// never contents.
var packetLog = sync.OnceValue(func() func(sent bool, seq uint32, payload []byte) {
	p := os.Getenv("RSFTP_PACKETS")
	if p == "" {
		return nil
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rsftp: RSFTP_PACKETS: %v\n", err)
		return nil
	}
	var mu sync.Mutex
	return func(sent bool, seq uint32, payload []byte) {
		mu.Lock()
		defer mu.Unlock()
		writePacketLine(f, time.Since(processStart), sent, payload)
	}
})

var sshMsgNames = map[byte]string{
	1: "DISCONNECT", 2: "IGNORE", 3: "UNIMPLEMENTED", 4: "DEBUG", 5: "SERVICE_REQUEST", 6: "SERVICE_ACCEPT",
	7: "EXT_INFO", 20: "KEXINIT", 21: "NEWKEYS", 30: "KEX_ECDH_INIT", 31: "KEX_ECDH_REPLY",
	50: "USERAUTH_REQUEST", 51: "USERAUTH_FAILURE", 52: "USERAUTH_SUCCESS", 53: "USERAUTH_BANNER",
	60: "USERAUTH_PK_OK", 80: "GLOBAL_REQUEST", 81: "REQUEST_SUCCESS", 82: "REQUEST_FAILURE",
	90: "CHANNEL_OPEN", 91: "CHANNEL_OPEN_CONFIRMATION", 92: "CHANNEL_OPEN_FAILURE",
	93: "CHANNEL_WINDOW_ADJUST", 94: "CHANNEL_DATA", 95: "CHANNEL_EXTENDED_DATA", 96: "CHANNEL_EOF",
	97: "CHANNEL_CLOSE", 98: "CHANNEL_REQUEST", 99: "CHANNEL_SUCCESS", 100: "CHANNEL_FAILURE",
	192: "PING", 193: "PONG", 200: "RESUME_ENABLE",
}

var sftpTypeNames = map[byte]string{
	1: "INIT", 2: "VERSION", 3: "OPEN", 4: "CLOSE", 5: "READ", 6: "WRITE", 7: "LSTAT", 8: "FSTAT",
	9: "SETSTAT", 10: "FSETSTAT", 11: "OPENDIR", 12: "READDIR", 13: "REMOVE", 14: "MKDIR", 15: "RMDIR",
	16: "REALPATH", 17: "STAT", 18: "RENAME", 19: "READLINK", 20: "SYMLINK", 101: "STATUS",
	102: "HANDLE", 103: "DATA", 104: "NAME", 105: "ATTRS", 200: "EXTENDED", 201: "EXTENDED_REPLY",
}

func writePacketLine(w io.Writer, since time.Duration, sent bool, p []byte) {
	if len(p) == 0 {
		return
	}
	dir := "<"
	if sent {
		dir = ">"
	}
	name := sshMsgNames[p[0]]
	if name == "" {
		name = "?"
	}
	extra := ""
	// CHANNEL_DATA: recipient, then the data's length and the data; an
	// SFTP packet in it begins with its length and type (a guess: the
	// data may continue an earlier packet).
	if p[0] == 20 {
		extra = kexInitSummary(p)
	}
	if p[0] == 94 && len(p) >= 14 {
		n := binary.BigEndian.Uint32(p[9:13])
		if t, ok := sftpTypeNames[p[13]]; ok && n >= 5 {
			extra = fmt.Sprintf(" sftp %s (%d bytes)", t, n)
		}
	}
	fmt.Fprintf(w, "%9.3f ms %s %3d %s %d%s\n", float64(since.Microseconds())/1000, dir, p[0], name, len(p), extra)
}

// kexInitSummary names a KEXINIT's first kex and host key algorithms and
// its first_kex_packet_follows: whether a guessed kex packet can be right
// (RFC 4253 section 7).
func kexInitSummary(p []byte) string {
	r := p[min(len(p), 17):] // type and cookie
	var lists [10]string
	for i := range lists {
		if len(r) < 4 {
			return ""
		}
		n := binary.BigEndian.Uint32(r)
		if uint64(n) > uint64(len(r)-4) {
			return ""
		}
		lists[i], r = string(r[4:4+n]), r[4+n:]
	}
	first := func(l string) string {
		if i := strings.IndexByte(l, ','); i >= 0 {
			return l[:i]
		}
		return l
	}
	follows := len(r) > 0 && r[0] != 0
	return fmt.Sprintf(" (kex %s, host key %s, guess follows %v)", first(lists[0]), first(lists[1]), follows)
}

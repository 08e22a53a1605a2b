// Package sftp is SFTP version 3 (draft-ietf-secsh-filexfer-02) with the
// OpenSSH extensions OpenSSH's sftp client uses: a server confined to a
// root directory, and a pipelined client.
//
// This file holds the wire format shared by both: packet framing, message
// numbers, file attributes and status codes.
package sftp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// ProtocolVersion is the version we speak.
const ProtocolVersion = 3

// Message types.
const (
	typeInit          = 1
	typeVersion       = 2
	typeOpen          = 3
	typeClose         = 4
	typeRead          = 5
	typeWrite         = 6
	typeLstat         = 7
	typeFstat         = 8
	typeSetstat       = 9
	typeFsetstat      = 10
	typeOpendir       = 11
	typeReaddir       = 12
	typeRemove        = 13
	typeMkdir         = 14
	typeRmdir         = 15
	typeRealpath      = 16
	typeStat          = 17
	typeRename        = 18
	typeReadlink      = 19
	typeSymlink       = 20
	typeStatus        = 101
	typeHandle        = 102
	typeData          = 103
	typeName          = 104
	typeAttrs         = 105
	typeExtended      = 200
	typeExtendedReply = 201
)

// Open flags (pflags).
const (
	FlagRead   = 0x01
	FlagWrite  = 0x02
	FlagAppend = 0x04
	FlagCreate = 0x08
	FlagTrunc  = 0x10
	FlagExcl   = 0x20
)

// Attribute flags.
const (
	AttrSize        = 0x00000001
	AttrUIDGID      = 0x00000002
	AttrPermissions = 0x00000004
	AttrACModTime   = 0x00000008
	AttrExtended    = 0x80000000
)

// Status codes.
const (
	StatusOK               = 0
	StatusEOF              = 1
	StatusNoSuchFile       = 2
	StatusPermissionDenied = 3
	StatusFailure          = 4
	StatusBadMessage       = 5
	StatusNoConnection     = 6
	StatusConnectionLost   = 7
	StatusOpUnsupported    = 8
)

// Extension names.
const (
	extLimits      = "limits@openssh.com"
	extPosixRename = "posix-rename@openssh.com"
	extStatVFS     = "statvfs@openssh.com"
	extFstatVFS    = "fstatvfs@openssh.com"
	extFsync       = "fsync@openssh.com"
	extHardlink    = "hardlink@openssh.com"
	extExpandPath  = "expand-path@openssh.com"
	extHomeDir     = "home-directory"
	extUsersGroups = "users-groups-by-id@openssh.com"
	extLsetstat    = "lsetstat@openssh.com"
	extCopyData    = "copy-data"
	extHashRange   = "hash-range@rsftp" // ours: SHA-256 of a byte range, for verified resume
)

// Limits.
const (
	// MaxPacket bounds a whole SFTP packet (length field excluded) in
	// both directions, as OpenSSH's server does.
	MaxPacket = 256 * 1024
	// MaxReadWrite is the most data one READ or WRITE carries: what
	// OpenSSH's client asks for when the server's limits allow it, and
	// what fits a packet with its headers.
	MaxReadWrite = 261120
	// maxHandleLen bounds handle strings.
	maxHandleLen = 256
	// maxExtensions bounds extension pairs in VERSION and attributes.
	maxExtensions = 64
)

// StatusError is a STATUS reply other than OK.
type StatusError struct {
	Code    uint32
	Message string
	Lang    string
}

func (e *StatusError) Error() string {
	name := statusName(e.Code)
	// Servers repeat the code's name as the message ("No such file"
	// from OpenSSH, "no such file or directory" from ours): said once.
	if m := strings.ToLower(strings.TrimSpace(e.Message)); m != "" && !strings.HasPrefix(m, name) {
		return "sftp: " + name + ": " + e.Message
	}
	return "sftp: " + name
}

// Is lets errors.Is(err, fs.ErrNotExist) and friends work.
func (e *StatusError) Is(target error) bool {
	switch e.Code {
	case StatusNoSuchFile:
		return target == fs.ErrNotExist
	case StatusPermissionDenied:
		return target == fs.ErrPermission
	case StatusEOF:
		return target == io.EOF
	}
	return false
}

func statusName(code uint32) string {
	switch code {
	case StatusOK:
		return "ok"
	case StatusEOF:
		return "end of file"
	case StatusNoSuchFile:
		return "no such file"
	case StatusPermissionDenied:
		return "permission denied"
	case StatusFailure:
		return "failure"
	case StatusBadMessage:
		return "bad message"
	case StatusNoConnection:
		return "no connection"
	case StatusConnectionLost:
		return "connection lost"
	case StatusOpUnsupported:
		return "operation unsupported"
	}
	return fmt.Sprintf("status %d", code)
}

// Attrs are file attributes. Flags says which fields are present.
type Attrs struct {
	Flags    uint32
	Size     uint64
	UID, GID uint32
	// Mode holds permission and file type bits as in POSIX st_mode.
	Mode         uint32
	Atime, Mtime uint32
	Extended     []ExtPair
}

// ExtPair is an extension name and its data.
type ExtPair struct{ Name, Data string }

// POSIX file type bits in Attrs.Mode.
const (
	modeType    = 0o170000
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeFIFO    = 0o010000
	modeChar    = 0o020000
	modeBlock   = 0o060000
	modeSocket  = 0o140000
)

// FileMode converts the Mode to an fs.FileMode.
func (a *Attrs) FileMode() fs.FileMode {
	m := fs.FileMode(a.Mode & 0o777)
	if a.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if a.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if a.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch a.Mode & modeType {
	case modeDir:
		m |= fs.ModeDir
	case modeSymlink:
		m |= fs.ModeSymlink
	case modeFIFO:
		m |= fs.ModeNamedPipe
	case modeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case modeBlock:
		m |= fs.ModeDevice
	case modeSocket:
		m |= fs.ModeSocket
	}
	return m
}

// ModTime is Mtime as a time.
func (a *Attrs) ModTime() time.Time { return time.Unix(int64(a.Mtime), 0) }

// posixMode converts an fs.FileMode to POSIX st_mode bits.
func posixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	switch {
	case m.IsDir():
		v |= modeDir
	case m&fs.ModeSymlink != 0:
		v |= modeSymlink
	case m&fs.ModeNamedPipe != 0:
		v |= modeFIFO
	case m&fs.ModeCharDevice != 0:
		v |= modeChar
	case m&fs.ModeDevice != 0:
		v |= modeBlock
	case m&fs.ModeSocket != 0:
		v |= modeSocket
	default:
		v |= modeRegular
	}
	return v
}

// AttrsFromFileInfo fills Attrs from a local file's information.
func AttrsFromFileInfo(fi fs.FileInfo) Attrs {
	a := Attrs{
		Flags: AttrSize | AttrPermissions | AttrACModTime,
		Size:  uint64(fi.Size()),
		Mode:  posixMode(fi.Mode()),
		Mtime: uint32(fi.ModTime().Unix()),
	}
	a.Atime = a.Mtime
	if st, ok := sysStat(fi); ok {
		a.Flags |= AttrUIDGID
		a.UID, a.GID = st.uid, st.gid
		a.Atime = st.atime
	}
	return a
}

func appendAttrs(b []byte, a *Attrs) []byte {
	flags := a.Flags
	if len(a.Extended) > 0 {
		flags |= AttrExtended
	} else {
		flags &^= AttrExtended
	}
	b = wire.AppendUint32(b, flags)
	if flags&AttrSize != 0 {
		b = wire.AppendUint64(b, a.Size)
	}
	if flags&AttrUIDGID != 0 {
		b = wire.AppendUint32(b, a.UID)
		b = wire.AppendUint32(b, a.GID)
	}
	if flags&AttrPermissions != 0 {
		b = wire.AppendUint32(b, a.Mode)
	}
	if flags&AttrACModTime != 0 {
		b = wire.AppendUint32(b, a.Atime)
		b = wire.AppendUint32(b, a.Mtime)
	}
	if flags&AttrExtended != 0 {
		b = wire.AppendUint32(b, uint32(len(a.Extended)))
		for _, e := range a.Extended {
			b = wire.AppendString(b, e.Name)
			b = wire.AppendString(b, e.Data)
		}
	}
	return b
}

func parseAttrs(r *wire.Reader) Attrs {
	var a Attrs
	a.Flags = r.Uint32()
	if a.Flags&AttrSize != 0 {
		a.Size = r.Uint64()
	}
	if a.Flags&AttrUIDGID != 0 {
		a.UID = r.Uint32()
		a.GID = r.Uint32()
	}
	if a.Flags&AttrPermissions != 0 {
		a.Mode = r.Uint32()
	}
	if a.Flags&AttrACModTime != 0 {
		a.Atime = r.Uint32()
		a.Mtime = r.Uint32()
	}
	if a.Flags&AttrExtended != 0 {
		n := r.Uint32()
		// Each pair takes at least 8 bytes: bound the count by what
		// remains before looping.
		if n > maxExtensions || int(n) > r.Len()/8 {
			r.Failf("sftp: %d extended attributes", n)
			return a
		}
		for range n {
			a.Extended = append(a.Extended, ExtPair{Name: r.String(), Data: r.String()})
		}
	}
	return a
}

// ErrPacketTooLarge reports a packet length over MaxPacket.
var ErrPacketTooLarge = errors.New("sftp: packet too large")

// newReplyReader is where the client reads replies: rw itself when it
// buffers on its own (an SSH channel keeps what arrived within its window,
// and a bufio.Reader on top would copy every byte of DATA once more), a
// bufio.Reader of size bytes otherwise (pipes to an sftp-server).
//
// The server keeps its bufio.Reader even on a channel: it flushes replies
// when its buffer runs dry, and a channel's buffer, filled as requests
// arrive, runs dry later, so replies went out in bigger, later batches
// and downloads were 10% slower.
func newReplyReader(rw io.Reader, size int) io.Reader {
	if r, ok := rw.(interface {
		io.Reader
		Buffered() int
	}); ok {
		return r
	}
	return bufio.NewReaderSize(rw, size)
}

// readPacket reads one length-prefixed packet into buf (grown up to
// MaxPacket as needed) and returns it without the length.
func readPacket(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxPacket {
		return nil, fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, n)
	}
	if n < 1 {
		return nil, errors.New("sftp: empty packet")
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// startPacket begins a packet in b with a placeholder length; finish
// fills it in.
func startPacket(b []byte, typ byte) []byte {
	return append(b[:0], 0, 0, 0, 0, typ)
}

func finishPacket(b []byte) []byte {
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// statusCode maps a local error to a status code.
func statusCode(err error) uint32 {
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, io.EOF):
		return StatusEOF
	case errors.Is(err, fs.ErrNotExist):
		return StatusNoSuchFile
	case errors.Is(err, fs.ErrPermission):
		return StatusPermissionDenied
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return StatusFailure
}

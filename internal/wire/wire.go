// Package wire holds the SSH data type encodings of RFC 4251 section 5:
// bounds-checked readers and append-style writers. Every length read from a
// peer is checked against the bytes that remain before it is used, so a
// parser built on Reader cannot over-read or allocate from a peer's number.
package wire

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// ErrShort is returned when a message ends before a field does.
var ErrShort = errors.New("wire: message truncated")

// Reader decodes SSH wire types from a byte slice. The first error sticks:
// later reads return zero values, and Err reports it, so a parser may read
// all its fields and check once.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b. It does not copy b: strings returned
// by Bytes alias it.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err reports the first decoding error.
func (r *Reader) Err() error { return r.err }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Rest returns the unread bytes and consumes them.
func (r *Reader) Rest() []byte {
	b := r.b
	r.b = nil
	return b
}

func (r *Reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

// Failf records a semantic error found by the caller.
func (r *Reader) Failf(format string, args ...any) {
	r.fail(fmt.Errorf(format, args...))
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if len(r.b) < 1 {
		r.fail(ErrShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// Bool reads a boolean (any non-zero byte is true, RFC 4251).
func (r *Reader) Bool() bool { return r.Byte() != 0 }

// Uint32 reads a big-endian uint32.
func (r *Reader) Uint32() uint32 {
	if len(r.b) < 4 {
		r.fail(ErrShort)
		return 0
	}
	v := uint32(r.b[0])<<24 | uint32(r.b[1])<<16 | uint32(r.b[2])<<8 | uint32(r.b[3])
	r.b = r.b[4:]
	return v
}

// Uint64 reads a big-endian uint64.
func (r *Reader) Uint64() uint64 {
	hi := r.Uint32()
	lo := r.Uint32()
	return uint64(hi)<<32 | uint64(lo)
}

// Fixed reads n raw bytes, aliasing the input.
func (r *Reader) Fixed(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.fail(ErrShort)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Bytes reads a string (uint32 length, then bytes), aliasing the input.
// The length is checked against what remains before use.
func (r *Reader) Bytes() []byte {
	n := r.Uint32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)) {
		r.fail(fmt.Errorf("wire: string length %d exceeds the %d bytes left", n, len(r.b)))
		return nil
	}
	return r.Fixed(int(n))
}

// String reads a string and copies it into a Go string.
func (r *Reader) String() string { return string(r.Bytes()) }

// NameList reads a comma-separated name-list. Empty names are rejected.
func (r *Reader) NameList() []string {
	b := r.Bytes()
	if r.err != nil || len(b) == 0 {
		return nil
	}
	names := strings.Split(string(b), ",")
	for _, n := range names {
		if n == "" {
			r.fail(errors.New("wire: empty name in name-list"))
			return nil
		}
	}
	return names
}

// MPInt reads a multiple precision integer (RFC 4251). Negative values are
// rejected: nothing in SSH uses them.
func (r *Reader) MPInt() *big.Int {
	b := r.Bytes()
	if r.err != nil {
		return nil
	}
	if len(b) > 0 && b[0]&0x80 != 0 {
		r.fail(errors.New("wire: negative mpint"))
		return nil
	}
	if len(b) > 1 && b[0] == 0 && b[1]&0x80 == 0 {
		r.fail(errors.New("wire: mpint with needless leading zero"))
		return nil
	}
	return new(big.Int).SetBytes(b)
}

// Done returns the first error, or an error if bytes remain unread.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("wire: %d trailing bytes", len(r.b))
	}
	return nil
}

// AppendByte appends one byte.
func AppendByte(b []byte, v byte) []byte { return append(b, v) }

// AppendBool appends a boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendUint32 appends a big-endian uint32.
func AppendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// AppendUint64 appends a big-endian uint64.
func AppendUint64(b []byte, v uint64) []byte {
	return AppendUint32(AppendUint32(b, uint32(v>>32)), uint32(v))
}

// AppendBytes appends a string of bytes.
func AppendBytes(b, v []byte) []byte {
	return append(AppendUint32(b, uint32(len(v))), v...)
}

// AppendString appends a string.
func AppendString(b []byte, v string) []byte {
	return append(AppendUint32(b, uint32(len(v))), v...)
}

// AppendNameList appends a name-list.
func AppendNameList(b []byte, names []string) []byte {
	return AppendString(b, strings.Join(names, ","))
}

// AppendMPInt appends a non-negative integer in mpint form.
func AppendMPInt(b []byte, v *big.Int) []byte {
	if v.Sign() < 0 {
		panic("wire: negative mpint")
	}
	return AppendMPIntBytes(b, v.Bytes())
}

// AppendMPIntBytes appends the unsigned big-endian magnitude mag as an
// mpint: leading zeros stripped, a zero byte added when the top bit is set.
func AppendMPIntBytes(b, mag []byte) []byte {
	for len(mag) > 0 && mag[0] == 0 {
		mag = mag[1:]
	}
	if len(mag) > 0 && mag[0]&0x80 != 0 {
		b = AppendUint32(b, uint32(len(mag)+1))
		b = append(b, 0)
		return append(b, mag...)
	}
	return AppendBytes(b, mag)
}

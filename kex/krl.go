package kex

// OpenSSH key revocation lists (PROTOCOL.krl), as ssh-keygen -k writes
// them and sshd's RevokedKeys reads them.

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"

	"github.com/rsftp/rsftp/internal/wire"
)

const (
	krlMagic         = "SSHKRL\n\x00"
	krlFormatVersion = 1

	krlSectionCertificates      = 1
	krlSectionExplicitKey       = 2
	krlSectionFingerprintSHA1   = 3
	krlSectionSignature         = 4
	krlSectionFingerprintSHA256 = 5
	krlSectionExtension         = 255

	krlCertSerialList   = 0x20
	krlCertSerialRange  = 0x21
	krlCertSerialBitmap = 0x22
	krlCertKeyID        = 0x23
	krlCertExtension    = 0x39
)

// ErrNotKRL is returned by ParseKRL for data that does not start with the
// KRL magic: a caller may then read it as a list of public keys, as sshd
// does.
var ErrNotKRL = errors.New("kex: not a KRL (bad magic)")

// KRL is a parsed key revocation list. Every section type of
// PROTOCOL.krl is read: certificates by serial (lists, ranges, bitmaps)
// and key ID, per CA or for any CA; plain keys explicitly and by SHA-1
// and SHA-256 fingerprint. Extensions marked critical are refused; others
// are skipped. Signature sections are skipped unverified, as OpenSSH
// does (it no longer checks KRL signatures).
type KRL struct {
	Version       uint64
	GeneratedDate uint64
	Comment       string

	certs  []*krlCA
	keys   map[string]bool
	sha1   map[[sha1.Size]byte]bool
	sha256 map[[sha256.Size]byte]bool
}

// krlCA is what a KRL revokes of one CA's certificates (ca nil: any CA's).
type krlCA struct {
	ca      []byte
	ranges  []serialRange // sorted, merged
	bitmaps []serialBitmap
	keyIDs  map[string]bool
}

type serialRange struct{ lo, hi uint64 }

type serialBitmap struct {
	offset uint64
	bits   *big.Int
}

// ParseKRL parses a binary KRL. Every length is checked against the data
// and nothing is allocated beyond what the data holds (a bitmap of n
// bytes costs n bytes, however many serials it revokes).
func ParseKRL(data []byte) (*KRL, error) {
	if !bytes.HasPrefix(data, []byte(krlMagic)) {
		return nil, ErrNotKRL
	}
	r := wire.NewReader(data[len(krlMagic):])
	if v := r.Uint32(); r.Err() == nil && v != krlFormatVersion {
		return nil, fmt.Errorf("kex: KRL format version %d, want %d", v, krlFormatVersion)
	}
	k := &KRL{keys: map[string]bool{}, sha1: map[[sha1.Size]byte]bool{}, sha256: map[[sha256.Size]byte]bool{}}
	k.Version = r.Uint64()
	k.GeneratedDate = r.Uint64()
	r.Uint64() // flags: none defined
	r.Bytes()  // reserved
	comment := r.Bytes()
	if r.Err() != nil {
		return nil, fmt.Errorf("kex: malformed KRL header: %w", r.Err())
	}
	if bytes.IndexByte(comment, 0) >= 0 {
		return nil, errors.New("kex: KRL comment contains a NUL byte")
	}
	k.Comment = string(comment)
	for r.Len() > 0 {
		typ := r.Byte()
		sect := r.Bytes()
		if r.Err() != nil {
			return nil, fmt.Errorf("kex: malformed KRL section: %w", r.Err())
		}
		var err error
		switch typ {
		case krlSectionCertificates:
			err = k.parseCertSection(sect)
		case krlSectionExplicitKey:
			err = krlBlobs(sect, 0, func(b []byte) error {
				key, err := ParsePublicKey(b)
				if err != nil {
					return err
				}
				if _, ok := key.(*Certificate); ok {
					return errors.New("a certificate in the explicit key section")
				}
				k.keys[string(b)] = true
				return nil
			})
		case krlSectionFingerprintSHA1:
			err = krlBlobs(sect, sha1.Size, func(b []byte) error { k.sha1[[sha1.Size]byte(b)] = true; return nil })
		case krlSectionFingerprintSHA256:
			err = krlBlobs(sect, sha256.Size, func(b []byte) error { k.sha256[[sha256.Size]byte(b)] = true; return nil })
		case krlSectionSignature:
			// string signature_key (the section), then string signature.
			r.Bytes()
			err = r.Err()
		case krlSectionExtension:
			err = krlExtension(sect)
		default:
			err = fmt.Errorf("unknown section type %d", typ)
		}
		if err != nil {
			return nil, fmt.Errorf("kex: KRL section %d: %w", typ, err)
		}
	}
	for _, c := range k.certs {
		c.ranges = mergeRanges(c.ranges)
	}
	return k, nil
}

// krlBlobs calls f for each string of a section; size, if not 0, is the
// length each must have.
func krlBlobs(sect []byte, size int, f func([]byte) error) error {
	r := wire.NewReader(sect)
	for r.Len() > 0 {
		b := r.Bytes()
		if r.Err() != nil {
			return r.Err()
		}
		if size != 0 && len(b) != size {
			return fmt.Errorf("a %d-byte hash, want %d", len(b), size)
		}
		if err := f(b); err != nil {
			return err
		}
	}
	return nil
}

// krlExtension: string name, bool critical, string contents. No
// extension is known: a critical one fails the KRL.
func krlExtension(sect []byte) error {
	r := wire.NewReader(sect)
	name := r.Bytes()
	critical := r.Bool()
	r.Bytes()
	if err := r.Done(); err != nil {
		return err
	}
	if critical {
		return fmt.Errorf("unsupported critical extension %s", printable(string(name)))
	}
	return nil
}

func (k *KRL) caFor(ca []byte) *krlCA {
	for _, c := range k.certs {
		if bytes.Equal(c.ca, ca) {
			return c
		}
	}
	c := &krlCA{ca: ca, keyIDs: map[string]bool{}}
	k.certs = append(k.certs, c)
	return c
}

// parseCertSection: string ca_key (empty: any CA), string reserved, then
// (byte type, string data) subsections.
func (k *KRL) parseCertSection(sect []byte) error {
	r := wire.NewReader(sect)
	caBlob := r.Bytes()
	r.Bytes()
	if r.Err() != nil {
		return r.Err()
	}
	var ca []byte
	if len(caBlob) > 0 {
		key, err := ParsePublicKey(caBlob)
		if err != nil {
			return fmt.Errorf("CA key: %w", err)
		}
		if _, ok := key.(*Certificate); ok {
			return errors.New("CA key is a certificate")
		}
		ca = bytes.Clone(caBlob)
	}
	c := k.caFor(ca)
	for r.Len() > 0 {
		typ := r.Byte()
		data := r.Bytes()
		if r.Err() != nil {
			return r.Err()
		}
		s := wire.NewReader(data)
		switch typ {
		case krlCertSerialList:
			for s.Len() > 0 {
				v := s.Uint64()
				c.ranges = append(c.ranges, serialRange{v, v})
			}
		case krlCertSerialRange:
			lo, hi := s.Uint64(), s.Uint64()
			if s.Err() == nil && lo > hi {
				return fmt.Errorf("serial range %d-%d ends before it starts", lo, hi)
			}
			c.ranges = append(c.ranges, serialRange{lo, hi})
		case krlCertSerialBitmap:
			// An mpint, read as OpenSSH does: never negative, leading
			// zero bytes allowed.
			offset := s.Uint64()
			raw := s.Bytes()
			if s.Err() != nil {
				break
			}
			if len(raw) > 0 && raw[0]&0x80 != 0 {
				return errors.New("negative serial bitmap")
			}
			bits := new(big.Int).SetBytes(raw)
			if bits.BitLen() > 0 && uint64(bits.BitLen()-1) > ^uint64(0)-offset {
				return errors.New("serial bitmap wraps past 2^64")
			}
			c.bitmaps = append(c.bitmaps, serialBitmap{offset, bits})
		case krlCertKeyID:
			for s.Len() > 0 {
				id := s.Bytes()
				if s.Err() == nil && bytes.IndexByte(id, 0) >= 0 {
					return errors.New("a key ID contains a NUL byte")
				}
				c.keyIDs[string(id)] = true
			}
		case krlCertExtension:
			if err := krlExtension(data); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("unknown certificate subsection type %#x", typ)
		}
		if err := s.Done(); err != nil {
			return fmt.Errorf("certificate subsection %#x: %w", typ, err)
		}
	}
	return nil
}

func mergeRanges(rs []serialRange) []serialRange {
	if len(rs) < 2 {
		return rs
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].lo < rs[j].lo })
	out := rs[:1]
	for _, x := range rs[1:] {
		last := &out[len(out)-1]
		if x.lo <= last.hi || last.hi != ^uint64(0) && x.lo == last.hi+1 {
			last.hi = max(last.hi, x.hi)
			continue
		}
		out = append(out, x)
	}
	return slices.Clip(out)
}

// IsRevoked reports whether the KRL revokes key: a plain key listed
// explicitly or by fingerprint; a certificate whose certified key is so
// listed, or that its CA's (or any CA's) sections revoke by key ID or
// serial (serial 0 is never revoked by number, as in OpenSSH), or whose
// CA key is itself revoked.
func (k *KRL) IsRevoked(key PublicKey) bool {
	c, isCert := key.(*Certificate)
	if isCert {
		if k.plainRevoked(c.Key) || k.plainRevoked(c.SignatureKey) {
			return true
		}
		ca := c.SignatureKey.Marshal()
		for _, s := range k.certs {
			if (s.ca == nil || bytes.Equal(s.ca, ca)) && s.revokes(c) {
				return true
			}
		}
		return false
	}
	return k.plainRevoked(key)
}

func (k *KRL) plainRevoked(key PublicKey) bool {
	if key == nil {
		return false
	}
	blob := key.Marshal()
	return k.keys[string(blob)] || k.sha1[sha1.Sum(blob)] || k.sha256[sha256.Sum256(blob)]
}

func (s *krlCA) revokes(c *Certificate) bool {
	if s.keyIDs[c.KeyID] {
		return true
	}
	if c.Serial == 0 {
		return false
	}
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].hi >= c.Serial })
	if i < len(s.ranges) && s.ranges[i].lo <= c.Serial {
		return true
	}
	for _, b := range s.bitmaps {
		if c.Serial >= b.offset && c.Serial-b.offset < uint64(b.bits.BitLen()) && b.bits.Bit(int(c.Serial-b.offset)) == 1 {
			return true
		}
	}
	return false
}

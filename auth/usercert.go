package auth

// User certificates trusted through CA keys the server configures: sshd's
// TrustedUserCAKeys with AuthorizedPrincipalsFile.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/rsftp/rsftp/kex"
)

// TrustedUserCAs admits user certificates signed by trusted CA keys, as
// sshd's TrustedUserCAKeys: the certificate must be valid
// (kex.CheckCertificate: the CA's signature by an allowed algorithm, a
// user certificate, within its validity window, known critical options),
// its source-address must admit the client, and
//
//   - without AuthorizedPrincipals, the user name must be one of its
//     principals;
//   - with AuthorizedPrincipals (sshd's AuthorizedPrincipalsFile), one of
//     its principals must be listed for the user, and that line's options
//     (expiry-time, from=, command=, restrict, no-pty...) apply, merged
//     with the certificate's as sshd merges them.
//
// Set it as ServerConfig.TrustedUserCAs; Authorize may also be called
// directly.
type TrustedUserCAs struct {
	// Keys are trusted CA keys.
	Keys []kex.PublicKey
	// KeysFile, if set, is a file of more CA keys, one "type base64
	// [comment]" a line as sshd's TrustedUserCAKeys, read at each login
	// and each Recheck (so removing a CA refuses its certificates at the
	// next resumption). A file that cannot be read trusts none of its
	// keys.
	KeysFile string
	// AuthorizedPrincipals, if set, returns the principals that may log
	// in as user (AuthorizedPrincipalsFile returns a reader of files
	// such as sshd's). A nil list with a nil error admits nobody.
	AuthorizedPrincipals func(user string) ([]AuthorizedPrincipal, error)
	// CASignatureAlgorithms are the algorithms a CA's signature may use;
	// nil means kex.DefaultCASignatureAlgorithms.
	CASignatureAlgorithms []string
	// Check, if set, is called with the Permissions a certificate would
	// get; an error refuses it (rsftp serve refuses a forced command
	// other than the SFTP server's).
	Check func(p *Permissions) error
	// Now returns the time certificates are checked at; nil means
	// time.Now.
	Now func() time.Time
}

// Authorize decides cert for the connection c. Its Permissions carry the
// certified key's fingerprint as Identity, the certificate, and a Recheck
// that decides again for a new address: it fails once the certificate
// has expired, its CA is no longer trusted, its principal no longer
// authorized, or its source-address does not admit the address.
func (t *TrustedUserCAs) Authorize(c ConnMetadata, cert *kex.Certificate) (*Permissions, error) {
	p, err := t.authorize(c.User, cert, c.RemoteAddr)
	if err != nil {
		return nil, err
	}
	p.Recheck = func(remote net.Addr) error {
		_, err := t.authorize(c.User, cert, remote)
		return err
	}
	return p, nil
}

func (t *TrustedUserCAs) trusted(ca kex.PublicKey) (bool, error) {
	blob := ca.Marshal()
	for _, k := range t.Keys {
		if k != nil && bytes.Equal(k.Marshal(), blob) {
			return true, nil
		}
	}
	if t.KeysFile == "" {
		return false, nil
	}
	keys, err := LoadAuthorizedKeys(t.KeysFile)
	if len(keys) == 0 && err != nil {
		return false, fmt.Errorf("auth: trusted user CA keys: %w", err)
	}
	for _, k := range keys {
		if bytes.Equal(k.Key.Marshal(), blob) {
			return true, nil
		}
	}
	return false, nil
}

func (t *TrustedUserCAs) authorize(user string, cert *kex.Certificate, remote net.Addr) (*Permissions, error) {
	if cert == nil || cert.SignatureKey == nil {
		return nil, errors.New("auth: no certificate")
	}
	ok, err := t.trusted(cert.SignatureKey)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("auth: certificate ID %s: CA %s %s is not trusted", quoteShort(cert.KeyID),
			cert.SignatureKey.Type(), kex.FingerprintSHA256(cert.SignatureKey))
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	principal := user
	var line *AuthorizedPrincipal
	if t.AuthorizedPrincipals != nil {
		principal = ""
		list, err := t.AuthorizedPrincipals(user)
		if err != nil {
			return nil, fmt.Errorf("auth: authorized principals of %s: %w", quoteShort(user), err)
		}
		var refusal error
		for i := range list {
			l := &list[i]
			if !containsString(cert.ValidPrincipals, l.Principal) {
				continue
			}
			if err := l.Allows(remote); err != nil {
				if refusal == nil {
					refusal = err
				}
				continue
			}
			line = l
			break
		}
		if line == nil {
			if refusal != nil {
				return nil, fmt.Errorf("auth: certificate ID %s: %w", quoteShort(cert.KeyID), refusal)
			}
			return nil, fmt.Errorf("auth: certificate ID %s: none of its principals (%s) is authorized for %s",
				quoteShort(cert.KeyID), quoteShort(strings.Join(cert.ValidPrincipals, ",")), quoteShort(user))
		}
	}
	if err := kex.CheckCertificate(cert, kex.CertCheck{Type: kex.UserCert, Principal: principal, Now: now(),
		CASignatureAlgorithms: t.CASignatureAlgorithms}); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	kp, err := certKeyPermissions(cert, remote)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	comment := ""
	if line != nil {
		if kp, err = mergeKeyPermissions(line.Permissions(), kp); err != nil {
			return nil, fmt.Errorf("auth: certificate ID %s, principal at line %d: %w", quoteShort(cert.KeyID), line.Line, err)
		}
		comment = "principal " + line.Principal
	}
	p := &Permissions{KeyComment: comment, KeyOptions: &kp, Identity: kex.FingerprintSHA256(cert.Key), Certificate: cert}
	if kp.HasCommand {
		p.ForceCommand = kp.Command
	}
	if t.Check != nil {
		if err := t.Check(p); err != nil {
			return nil, fmt.Errorf("auth: certificate ID %s: %w", quoteShort(cert.KeyID), err)
		}
	}
	return p, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// AuthorizedPrincipalsFile returns a TrustedUserCAs.AuthorizedPrincipals
// that reads the file named by pattern at each call, after expanding %u
// to the user name and %% to a percent sign (as sshd's
// AuthorizedPrincipalsFile; other % sequences are refused here, before
// any login). A user name that would leave the file's directory (one with
// a slash, ".", "..", or a NUL) is refused; a missing file admits nobody.
func AuthorizedPrincipalsFile(pattern string) (func(user string) ([]AuthorizedPrincipal, error), error) {
	if _, err := expandPrincipalsPattern(pattern, "x"); err != nil {
		return nil, err
	}
	return func(user string) ([]AuthorizedPrincipal, error) {
		if user == "" || user == "." || user == ".." || strings.ContainsAny(user, "/\x00") {
			return nil, fmt.Errorf("user name %s cannot name a principals file", quoteShort(user))
		}
		path, err := expandPrincipalsPattern(pattern, user)
		if err != nil {
			return nil, err
		}
		list, err := LoadAuthorizedPrincipals(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if len(list) == 0 && err != nil {
			return nil, err
		}
		return list, nil // lines that do not parse are skipped
	}, nil
}

func expandPrincipalsPattern(pattern, user string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '%' {
			b.WriteByte(pattern[i])
			continue
		}
		if i+1 == len(pattern) {
			return "", fmt.Errorf("authorized principals file %s ends with %%", quoteShort(pattern))
		}
		i++
		switch pattern[i] {
		case '%':
			b.WriteByte('%')
		case 'u':
			b.WriteString(user)
		default:
			return "", fmt.Errorf("authorized principals file %s: %%%c is not supported (only %%u and %%%%)", quoteShort(pattern), pattern[i])
		}
	}
	return b.String(), nil
}

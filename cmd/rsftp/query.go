package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/transport"
)

// rsftp ssh -Q, as ssh's: the names rsftp supports for one feature, one
// per line, so that a user can see what -c, -m, Ciphers, KexAlgorithms,
// HostKeyAlgorithms and the like accept here (the lists are those
// connect.go and hostkeyalgs.go check values against). The features are
// ssh's query terms; ssh_config keywords that take an algorithm list name
// their own list.

// queryTerms are ssh's -Q terms, in the order -Q help prints them.
var queryTerms = []string{"cipher", "cipher-auth", "compression", "kex", "kex-gss", "key", "key-ca-sign",
	"key-cert", "key-plain", "key-sig", "mac", "protocol-version", "sig"}

// queryKeys pairs each plain key type with its certificate type, in
// ssh's order of -Q key.
var queryKeys = [][2]string{
	{kex.KeyAlgoED25519, kex.CertAlgoED25519},
	{kex.KeyAlgoSKED25519, kex.CertAlgoSKED25519},
	{kex.KeyAlgoECDSA256, kex.CertAlgoECDSA256},
	{kex.KeyAlgoECDSA384, kex.CertAlgoECDSA384},
	{kex.KeyAlgoECDSA521, kex.CertAlgoECDSA521},
	{kex.KeyAlgoSKECDSA256, kex.CertAlgoSKECDSA256},
	{kex.KeyAlgoRSA, kex.CertAlgoRSA},
}

// querySigs are the signature algorithms that are not a key type's own
// name, each with its certificate form (none for WebAuthn's).
var querySigs = [][2]string{
	{kex.SigAlgoWebAuthnSKECDSA256, kex.CertSigAlgoWebAuthnSKECDSA256},
	{kex.SigAlgoRSASHA256, kex.CertSigAlgoRSASHA256},
	{kex.SigAlgoRSASHA512, kex.CertSigAlgoRSASHA512},
}

// aeadCiphers are the ciphers that authenticate as they encrypt (no MAC
// is negotiated with them).
var aeadCiphers = []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}

// queryAlgorithms answers -Q term.
func queryAlgorithms(term string) ([]string, error) {
	keys := func(plain, certs bool) []string {
		var out []string
		for _, k := range queryKeys {
			if plain {
				out = append(out, k[0])
			}
			if certs {
				out = append(out, k[1])
			}
		}
		return out
	}
	// ssh_config keywords that take an algorithm list, whatever their
	// case, name the list that keyword accepts.
	switch strings.ToLower(term) {
	case "ciphers":
		term = "cipher"
	case "macs":
		term = "mac"
	case "kexalgorithms":
		term = "kex"
	case "casignaturealgorithms":
		return slices.Clone(kex.DefaultCASignatureAlgorithms), nil
	case "hostkeyalgorithms":
		return auth.WithCertAlgorithms(transport.DefaultHostKeyAlgorithms), nil
	case "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes":
		return auth.DefaultPublicKeyAlgorithms(), nil
	}
	switch term {
	case "cipher":
		return transport.SupportedCiphers(), nil
	case "cipher-auth":
		var out []string
		for _, c := range transport.SupportedCiphers() {
			if slices.Contains(aeadCiphers, c) {
				out = append(out, c)
			}
		}
		return out, nil
	case "mac":
		return transport.SupportedMACs(), nil
	case "kex":
		return kex.SupportedMethods(), nil
	case "kex-gss":
		return nil, nil // no GSSAPI
	case "compression":
		return []string{"none"}, nil
	case "protocol-version":
		return []string{"2"}, nil
	case "key":
		return keys(true, true), nil
	case "key-plain":
		return keys(true, false), nil
	case "key-cert":
		return keys(false, true), nil
	case "key-ca-sign":
		return slices.Clone(kex.DefaultCASignatureAlgorithms), nil
	case "key-sig":
		out := keys(true, true)
		for _, s := range querySigs {
			out = append(out, s[0], s[1])
		}
		return out, nil
	case "sig":
		// What a signature can be made with: every plain key type
		// but RSA's SHA-1 (refused), and the other signature names.
		var out []string
		for _, k := range keys(true, false) {
			if k != kex.KeyAlgoRSA {
				out = append(out, k)
			}
		}
		for _, s := range querySigs {
			out = append(out, s[0])
		}
		return out, nil
	case "help":
		return slices.Clone(queryTerms), nil
	}
	return nil, fmt.Errorf("unsupported query %q (rsftp ssh -Q help lists the terms)", term)
}

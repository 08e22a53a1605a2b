package main

import (
	"strings"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// caSignatureAlgorithms applies a CASignatureAlgorithms spec to the
// default list (kex.DefaultCASignatureAlgorithms, ssh's): "a,b" replaces
// it, "+a" appends, "-a" removes, "^a" puts first; nil for "" (the
// default). ssh-rsa (SHA-1) is not among the names rsftp knows.
func caSignatureAlgorithms(spec string) ([]string, error) {
	return algorithmList(spec, kex.DefaultCASignatureAlgorithms, "CA signature algorithm")
}

// newHostKeyChecker is the host key check of a destination's options
// (ssh's verify_host_key): RevokedHostKeys (a KRL or a key list, each
// file read at every check; missing, it refuses every host, as in ssh),
// then the known_hosts files with their @cert-authority and @revoked
// lines, CASignatureAlgorithms for host certificates' CAs, and a warning
// when a certificate of a trusted CA fails its checks and the plain key
// is checked instead.
func newHostKeyChecker(cfg *sshConfig, files []string, mode auth.StrictMode, hash bool, log *logger) (*auth.HostKeyChecker, error) {
	c := &auth.HostKeyChecker{Files: files, Mode: mode, HashNew: hash,
		Warn: func(msg string) { log.warnf("%s", msg) }}
	if v, ok := cfg.get("revokedhostkeys"); ok && !strings.EqualFold(v, "none") {
		c.RevokedHostKeys = cfg.all("revokedhostkeys") // expanded by resolveHost, each a file
	}
	algs, err := caSignatureAlgorithms(cfg.getDefault("casignaturealgorithms", ""))
	if err != nil {
		return nil, err
	}
	c.CASignatureAlgorithms = algs
	return c, nil
}

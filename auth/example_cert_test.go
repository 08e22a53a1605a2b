package auth_test

import (
	"context"
	"log"
	"os"
	"path/filepath"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/transport"
)

// A client with a key and its OpenSSH certificate (offered first, then
// the plain key, as ssh does), that trusts host certificates through the
// @cert-authority lines of known_hosts and refuses what a KRL revokes.
func ExampleCertificateSigner() {
	home, _ := os.UserHomeDir()
	keyFile := filepath.Join(home, ".ssh", "id_ed25519")
	pemBytes, err := os.ReadFile(keyFile)
	if err != nil {
		log.Fatal(err)
	}
	key, _, err := auth.ParsePrivateKey(pemBytes, nil)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := auth.LoadCertificate(keyFile + "-cert.pub")
	if err != nil {
		log.Fatal(err)
	}
	withCert, err := auth.CertificateSigner(key, cert)
	if err != nil {
		log.Fatal(err)
	}
	files := auth.DefaultKnownHostsFiles()
	hosts := &auth.HostKeyChecker{Files: files, Mode: auth.StrictYes,
		RevokedHostKeys: []string{"/etc/ssh/revoked_host_keys.krl"}}
	cfg := &rsftp.ClientConfig{
		User:            "alice",
		Auth:            []auth.Method{auth.PublicKeySigners(withCert), auth.PublicKeys(key)},
		HostKeyCallback: hosts.Check,
	}
	// Ask for the server's host certificate first where known_hosts
	// trusts a CA for it.
	cfg.Transport.HostKeyAlgorithms = auth.KnownHostsAlgorithms(files, "files.example.org", 22,
		auth.WithCertAlgorithms(transport.DefaultHostKeyAlgorithms))
	c, err := rsftp.Dial(context.Background(), "tcp", "files.example.org:22", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

package main

// The keys publickey authentication offers, gathered as ssh gathers them
// (pubkey_prepare in sshconnect2.c): certificates, the agent's keys,
// identity files and the certificates beside them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

func defaultIdentities() []string {
	var out []string
	for _, n := range []string{"id_ed25519", "id_ed25519_sk", "id_ecdsa", "id_ecdsa_sk", "id_rsa"} {
		out = append(out, filepath.Join(homeDir(), ".ssh", n))
	}
	return out
}

// agentSocket is where IdentityAgent (or, as ssh finds it,
// auth.DefaultAgentSocket: SSH_AUTH_SOCK) says the agent listens, "" for
// none.
func agentSocket(cfg *sshConfig) string {
	sock := auth.DefaultAgentSocket()
	if ia, ok := cfg.get("identityagent"); ok {
		sock = ia // expanded by resolveHost
		if strings.EqualFold(ia, "none") {
			sock = ""
		} else if ia == "SSH_AUTH_SOCK" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
	}
	return sock
}

// publicKeyMethod is the publickey method: at each authentication (the
// first connection, a jump host's reconnection...) it lists, in order,
//
//  1. the certificates of CertificateFile, each signed by the agent if it
//     holds the certificate or its key, else by the identity file of its
//     key;
//  2. the agent's identities that are an identity file's key or
//     certificate, then the certificates beside identity files
//     (key-cert.pub) whose key the agent holds, signed by the agent: no
//     passphrase is asked for a key the agent has;
//  3. the agent's other identities, unless IdentitiesOnly;
//  4. the identity files the agent does not hold: each one's certificate
//     (key-cert.pub, unless CertificateFile is given, as in ssh), then the
//     key.
//
// Within each group certificates come before plain keys, as ssh (10.5)
// orders the identities it was not given explicitly; a key is offered
// once. Identity files are read once, for their public keys (an
// encrypted key's is in the clear): the passphrase is asked for only when
// the server accepts the key, and the key is kept for later
// authentications. A security key's file (id_ed25519_sk) is used only
// through an agent that holds the key: rsftp has no FIDO library. report
// is told why an identity file or certificate cannot be used.
func publicKeyMethod(ctx context.Context, cfg *sshConfig, batch bool, log *logger, report func(path string, err error)) auth.Method {
	ids := cfg.all("identityfile") // expanded by resolveHost
	explicit := len(ids) > 0
	if !explicit {
		ids = defaultIdentities()
	}
	certFiles := cfg.all("certificatefile")
	agentSock := agentSocket(cfg)
	identitiesOnly := yes(cfg.getDefault("identitiesonly", "no"))

	var once sync.Once
	var files []*fileIdentity
	var certs []*certFile
	return auth.PublicKeysCallback(func() ([]kex.Signer, error) {
		once.Do(func() {
			for _, p := range ids {
				if strings.EqualFold(p, "none") {
					continue
				}
				files = append(files, loadFileIdentity(p, explicit, len(certFiles) == 0, batch, log, report))
			}
			for _, p := range certFiles {
				c, err := auth.LoadCertificate(p)
				if err == nil && c.CertType != kex.UserCert {
					err = fmt.Errorf("certificate file %s: not a user certificate", p)
				}
				if err != nil {
					report(p, fmt.Errorf("certificate file %s: %w", p, err))
					continue
				}
				certs = append(certs, &certFile{path: p, cert: c})
			}
		})
		var agentSigners []kex.Signer
		if agentSock != "" {
			a, err := auth.DialAgent(ctx, agentSock)
			if err != nil {
				log.debugf("agent: %v", err)
			} else if agentSigners, err = a.Signers(); err != nil {
				log.debugf("agent: %v", err)
			}
		}
		return orderIdentities(agentSigners, files, certs, identitiesOnly, log, report), nil
	})
}

// fileIdentity is an identity file: its public key and, beside it, its
// certificate; the private key is loaded when a signature is needed.
type fileIdentity struct {
	path     string
	explicit bool
	key      *lazyKey // nil if the public key is unknown
	cert     *kex.Certificate
	// unusable says why the file cannot sign by itself (missing
	// private key, a security key): it is then used only if the agent
	// holds its key.
	unusable error
	reported bool
}

type certFile struct {
	path     string
	cert     *kex.Certificate
	reported bool
}

// loadFileIdentity reads an identity file's public key (from the private
// key file, or from path.pub if that is missing) and, if withCert, the
// certificate in path-cert.pub.
func loadFileIdentity(path string, explicit, withCert, batch bool, log *logger, report func(string, error)) *fileIdentity {
	id := &fileIdentity{path: path, explicit: explicit}
	data, err := os.ReadFile(path)
	var pub kex.PublicKey
	if err == nil {
		if pub, err = auth.PrivateKeyPublicKey(data); err != nil {
			err = fmt.Errorf("identity file %s: %w", path, err)
		}
	} else {
		err = fmt.Errorf("identity file %s: %w", path, err)
		if pubData, perr := os.ReadFile(path + ".pub"); perr == nil {
			if k, _, perr := auth.ParsePublicKeyFile(pubData); perr == nil {
				pub, id.unusable = k, err
			}
		}
	}
	if pub == nil {
		if explicit || !errors.Is(err, fs.ErrNotExist) {
			report(path, err)
		}
		return id
	}
	if _, ok := pub.(kex.SKPublicKey); ok && id.unusable == nil {
		id.unusable = fmt.Errorf("identity file %s: %s is a security key, which rsftp signs with only through ssh-agent (ssh-add %s)", path, pub.Type(), path)
	}
	id.key = &lazyKey{path: path, pub: pub, batch: batch, report: report}
	if withCert {
		cp := path + "-cert.pub"
		c, err := auth.LoadCertificate(cp)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			report(cp, fmt.Errorf("certificate file %s: %w", cp, err))
		case c.CertType != kex.UserCert:
			log.debugf("%s is not a user certificate; not used", cp)
		case !bytes.Equal(c.Key.Marshal(), pub.Marshal()):
			report(cp, fmt.Errorf("certificate file %s certifies another key than %s's", cp, path))
		default:
			id.cert = c
		}
	}
	return id
}

// orderIdentities is publicKeyMethod's list for one authentication.
func orderIdentities(agentSigners []kex.Signer, files []*fileIdentity, certs []*certFile, identitiesOnly bool, log *logger, report func(string, error)) []kex.Signer {
	inAgent := map[string]kex.Signer{}
	for _, s := range agentSigners {
		inAgent[string(s.PublicKey().Marshal())] = s
	}
	held := func(k kex.PublicKey) kex.Signer { return inAgent[string(k.Marshal())] }
	certSigner := func(c *kex.Certificate, base kex.Signer) kex.Signer {
		s, err := kex.NewCertSigner(c, base)
		if err != nil {
			log.debugf("certificate %s: %v", c.KeyID, err)
			return nil
		}
		return s
	}
	// The identity files' keys and certificates, for the agent's.
	ofFiles := map[string]bool{}
	for _, f := range files {
		if f.key != nil {
			ofFiles[string(f.key.pub.Marshal())] = true
		}
		if f.cert != nil {
			ofFiles[string(f.cert.Marshal())] = true
		}
	}

	var g1, g2, g3, g4 []kex.Signer
	for _, c := range certs {
		s := held(c.cert)
		if s == nil {
			base := held(c.cert.Key)
			for _, f := range files {
				if base == nil && f.key != nil && f.unusable == nil && bytes.Equal(f.key.pub.Marshal(), c.cert.Key.Marshal()) {
					base = f.key
				}
			}
			if base == nil {
				if !c.reported {
					c.reported = true
					report(c.path, fmt.Errorf("certificate file %s: no private key for it (give the key with -i or IdentityFile, or add it to the agent)", c.path))
				}
				continue
			}
			s = certSigner(c.cert, base)
		}
		g1 = append(g1, s)
	}
	for _, s := range agentSigners {
		if ofFiles[string(s.PublicKey().Marshal())] {
			g2 = append(g2, s)
		} else if !identitiesOnly {
			g3 = append(g3, s)
		}
	}
	for _, f := range files {
		if f.key == nil {
			continue
		}
		agentKey := held(f.key.pub)
		if f.cert != nil && held(f.cert) == nil {
			switch {
			case agentKey != nil:
				g2 = append(g2, certSigner(f.cert, agentKey))
			case f.unusable == nil:
				g4 = append(g4, certSigner(f.cert, f.key))
			}
		}
		switch {
		case agentKey != nil:
		case f.unusable != nil:
			if !f.reported && (f.explicit || !errors.Is(f.unusable, fs.ErrNotExist)) {
				f.reported = true
				report(f.path, f.unusable)
			}
		default:
			g4 = append(g4, f.key)
		}
	}
	var out []kex.Signer
	seen := map[string]bool{}
	for _, g := range [][]kex.Signer{g1, g2, g3, g4} {
		for _, pass := range []bool{true, false} { // certificates first
			for _, s := range g {
				if s == nil {
					continue
				}
				_, isCert := s.PublicKey().(*kex.Certificate)
				blob := string(s.PublicKey().Marshal())
				if isCert != pass || seen[blob] {
					continue
				}
				seen[blob] = true
				out = append(out, s)
				log.debugf("Will attempt key: %s", describeIdentity(s, files, certs, inAgent))
			}
		}
	}
	return out
}

// describeIdentity names an identity for -v: its file or the agent, its
// type and fingerprint, as ssh's "Will attempt key".
func describeIdentity(s kex.Signer, files []*fileIdentity, certs []*certFile, inAgent map[string]kex.Signer) string {
	pub := s.PublicKey()
	blob := pub.Marshal()
	where := ""
	for _, f := range files {
		if f.key != nil && bytes.Equal(f.key.pub.Marshal(), blob) {
			where = f.path
		} else if f.cert != nil && bytes.Equal(f.cert.Marshal(), blob) {
			where = f.path + "-cert.pub"
		}
	}
	for _, c := range certs {
		if bytes.Equal(c.cert.Marshal(), blob) {
			where = c.path
		}
	}
	if inAgent[string(blob)] != nil {
		where = strings.TrimSpace(where + " (agent)")
	}
	what := pub.Type()
	if c, ok := pub.(*kex.Certificate); ok {
		what = fmt.Sprintf("%s ID %q serial %d", what, c.KeyID, c.Serial)
		pub = c.Key
	}
	return fmt.Sprintf("%s %s %s", where, what, kex.FingerprintSHA256(pub))
}

// lazyKey is an identity file's signer that reads (and decrypts) the
// private key at its first signature, and keeps it, or the reason it
// could not.
type lazyKey struct {
	path   string
	pub    kex.PublicKey
	batch  bool
	report func(string, error)

	mu     sync.Mutex
	done   bool
	signer kex.Signer
	err    error
}

func (k *lazyKey) PublicKey() kex.PublicKey { return k.pub }
func (k *lazyKey) Algorithms() []string     { return kex.SignatureAlgorithmsFor(k.pub.Type()) }

// SignsQuietly reports whether the key file is not encrypted (it is then
// loaded now): its signature needs no passphrase, and publickey may send
// it without asking the server about the key first (auth.QuietSigner).
func (k *lazyKey) SignsQuietly() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.done {
		data, err := os.ReadFile(k.path)
		if err != nil {
			return false
		}
		key, _, err := auth.ParsePrivateKey(data, nil)
		if err != nil {
			return false // encrypted, or broken: load says why
		}
		s, err := kex.NewSigner(key)
		if err != nil || !bytes.Equal(s.PublicKey().Marshal(), k.pub.Marshal()) {
			return false
		}
		k.done, k.signer = true, s
	}
	return k.signer != nil && signsQuietly(k.signer)
}

func signsQuietly(s kex.Signer) bool {
	q, ok := s.(auth.QuietSigner)
	return ok && q.SignsQuietly()
}

func (k *lazyKey) Sign(rand io.Reader, data []byte, algo string) ([]byte, error) {
	s, err := k.load()
	if err != nil {
		return nil, err
	}
	return s.Sign(rand, data, algo)
}

func (k *lazyKey) load() (kex.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.done {
		k.done = true
		k.signer, k.err = loadIdentity(k.path, k.batch)
		if k.err == nil && !bytes.Equal(k.signer.PublicKey().Marshal(), k.pub.Marshal()) {
			k.signer, k.err = nil, fmt.Errorf("identity file %s changed while rsftp ran", k.path)
		}
		if k.err != nil {
			k.report(k.path, k.err)
		}
	}
	return k.signer, k.err
}

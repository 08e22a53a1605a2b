package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/sftp"
)

// runServe is an SFTP-only server: no shell, no exec, no forwarding.
func runServe(ctx context.Context, args []string) error {
	fsf := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fsf.String("listen", "127.0.0.1:2222", "address to listen on")
	root := fsf.String("root", "", "directory the SFTP clients are confined to (required)")
	hostKeyPath := fsf.String("host-key", "", "host key file (OpenSSH format; an ed25519 key is created if missing) (required)")
	akPath := fsf.String("authorized-keys", "", "authorized_keys file (OpenSSH format), re-read at each login (required)")
	readOnly := fsf.Bool("read-only", false, "refuse every change to the file system")
	jsonLogs := fsf.Bool("json", false, "log as JSON instead of text")
	hold := fsf.Duration("hold", time.Hour, "how long a session whose connection was lost is kept for its client to resume it (0 turns resumption off)")
	idle := fsf.Duration("idle-timeout", time.Minute, "a resumable session whose connection brought nothing for this long is detached (its hold time starts)")
	eventsPath := fsf.String("events", "", "append session events (connected, link_lost, resumed, resume_failed, closed) to this file as JSON lines")
	maxResumable := fsf.Int("max-resumable", 4096, "resumable sessions kept at most, attached or not")
	maxPerUser := fsf.Int("max-detached-per-user", 16, "detached sessions kept per user")
	maxRetained := fsf.Int64("max-retained-bytes", 1<<30, "bytes all detached sessions may retain in total")
	loginGrace := fsf.Duration("login-grace-time", rsftp.DefaultLoginGraceTime, "time a client has to authenticate (OpenSSH's LoginGraceTime)")
	maxStartups := fsf.Int("max-startups", rsftp.DefaultMaxUnauthConns, "unauthenticated connections at once; more are dropped (OpenSSH's MaxStartups)")
	maxSessions := fsf.Int("max-sessions", rsftp.DefaultMaxSessionsPerConn, "session channels per connection (OpenSSH's MaxSessions)")
	if err := fsf.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if *root == "" || *hostKeyPath == "" || *akPath == "" || fsf.NArg() > 0 {
		return usageErr("serve needs --root, --host-key and --authorized-keys")
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if *jsonLogs {
		h = slog.NewJSONHandler(os.Stderr, nil)
	}
	log := slog.New(h)

	if fi, err := os.Stat(*root); err != nil || !fi.IsDir() {
		return fmt.Errorf("--root %s is not a directory", *root)
	}
	hostKey, created, err := loadOrCreateHostKey(*hostKeyPath)
	if err != nil {
		return err
	}
	fp := kex.FingerprintSHA256(hostKey.PublicKey())
	if created {
		fmt.Fprintf(os.Stderr, "created host key %s\n", *hostKeyPath)
	}
	fmt.Fprintf(os.Stderr, "host key fingerprint %s (%s)\n", fp, hostKey.PublicKey().Type())
	if _, err := auth.LoadAuthorizedKeys(*akPath); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return err
		}
		log.Warn("authorized_keys has lines that were skipped", "file", *akPath, "err", err)
	}

	events, err := openEventLog(*eventsPath)
	if err != nil {
		return err
	}
	defer events.close()
	var resumeCfg *rsftp.ResumeServerConfig
	if *hold > 0 {
		resumeCfg = &rsftp.ResumeServerConfig{Hold: *hold, IdleTimeout: *idle, MaxSessions: *maxResumable,
			MaxDetachedPerUser: *maxPerUser, MaxRetainedBytes: *maxRetained,
			Events: func(e rsftp.Event) {
				events.write(e)
				attrs := []any{"event", string(e.Kind)}
				if e.User != "" {
					attrs = append(attrs, "user", e.User)
				}
				if e.Remote != "" {
					attrs = append(attrs, "remote", e.Remote)
				}
				if e.Session != "" {
					attrs = append(attrs, "session", e.Session)
				}
				if e.Kind == rsftp.EventResumed {
					attrs = append(attrs, "offline", e.Offline, "handshake", e.Handshake, "resent_bytes", e.Retransmitted)
				}
				if e.Err != nil {
					attrs = append(attrs, "err", e.Err)
				}
				log.Info("resumable session", attrs...)
			}}
		fmt.Fprintf(os.Stderr, "sessions survive lost connections for %v (--hold)\n", *hold)
	}
	srv, err := rsftp.NewServer(&rsftp.ServerConfig{
		Resume:             resumeCfg,
		LoginGraceTime:     *loginGrace,
		MaxUnauthConns:     *maxStartups,
		MaxSessionsPerConn: *maxSessions,
		HostKeys:           []kex.Signer{hostKey},
		Auth: auth.ServerConfig{
			PublicKeyCallback: func(user string, key kex.PublicKey) (*auth.Permissions, error) {
				keys, err := auth.LoadAuthorizedKeys(*akPath)
				if len(keys) == 0 && err != nil {
					log.Error("reading authorized_keys", "file", *akPath, "err", err)
					return nil, err
				}
				ak, ok := auth.AuthorizedKeysCallback(keys)(user, key)
				if !ok {
					return nil, errors.New("key not in authorized_keys")
				}
				if _, restricted := ak.Option("from"); restricted {
					// The callback does not see the client's address:
					// refuse rather than ignore the restriction.
					log.Warn("key has a from= restriction, which rsftp serve does not enforce; refused", "line", ak.Line)
					return nil, errors.New("from= not supported")
				}
				return &auth.Permissions{KeyComment: ak.Comment}, nil
			},
		},
		Subsystems: map[string]rsftp.Handler{
			"sftp": func(ctx context.Context, s *rsftp.Session) int {
				l := log.With("user", s.User, "remote", s.RemoteAddr.String())
				l.Info("sftp session started")
				err := sftp.Serve(ctx, s.Channel, &sftp.ServerConfig{Root: *root, ReadOnly: *readOnly, Logger: l})
				if err != nil {
					l.Warn("sftp session ended", "err", err)
					return 1
				}
				l.Info("sftp session ended")
				return 0
			},
		},
		Logf: func(format string, args ...any) {
			log.Info(fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", l.Addr().String(), "root", *root, "host_key", fp)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err = srv.Serve(l)
	if ctx.Err() != nil {
		log.Info("shutting down")
		return nil
	}
	return err
}

// loadOrCreateHostKey reads an OpenSSH private key, or creates an ed25519
// one (and its .pub) if the file does not exist.
func loadOrCreateHostKey(path string) (kex.Signer, bool, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		k, _, err := auth.ParsePrivateKey(data, nil)
		if err != nil {
			return nil, false, fmt.Errorf("host key %s: %w", path, err)
		}
		s, err := kex.NewSigner(k)
		return s, false, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	host, _ := os.Hostname()
	pem, err := auth.MarshalPrivateKey(priv, "rsftp@"+host, nil)
	if err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	if _, err := f.Write(pem); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	s, err := kex.NewSigner(priv)
	if err != nil {
		return nil, false, err
	}
	pub := kex.MarshalAuthorizedKey(s.PublicKey())
	os.WriteFile(path+".pub", []byte(pub+" rsftp@"+host+"\n"), 0o644)
	return s, true, nil
}

// Package fuzz holds fuzz targets for the parsers that take bytes from a
// peer or from files users are given, and the list of every target in the
// module.
//
// # Targets
//
// Targets that need unexported code live beside it (package directory:
// targets):
//
//	transport:  FuzzInboundPacket (packet decoder, every cipher and MAC),
//	            FuzzParseKexInit (KEXINIT, parse/marshal round trip),
//	            FuzzReadVersion (the version line),
//	            FuzzConnAfterKex (fuzz_session_test.go: a client and a
//	            server Conn in memory after a real handshake; one sends
//	            the fuzzer's messages, framed and encrypted under the
//	            negotiated cipher and MAC, the other's dispatch must return
//	            them or fail cleanly: KEXINIT mid-stream, kex messages out
//	            of order, NEWKEYS early, EXT_INFO, DEBUG, DISCONNECT,
//	            unknown numbers, rekeys by either side)
//	transport/internal/chachapoly: FuzzChaChaPolySIMD (the AVX-512
//	            ChaCha20 and IFMA Poly1305 assembly against the portable
//	            code and x/crypto)
//	transport/internal/gcmvaes: FuzzGCMVAES (the VAES AES-GCM assembly
//	            against crypto/cipher)
//	kex:        FuzzParseKexInitMsg (KEX_ECDH_INIT as the server parses it,
//	            through Server), FuzzParseKexReply (KEX_ECDH_REPLY as the
//	            client parses it, through HandleReply; both for the
//	            curve25519, ML-KEM and sntrup761 methods), FuzzParsePublicKey
//	            (host and user key blobs of every algorithm),
//	            FuzzParseSignature (signature blobs of every algorithm,
//	            the DER ECDSA signature parser, sign/verify round trip),
//	            FuzzParseCertificate (cert_fuzz_test.go: OpenSSH
//	            certificates, whole or one field of a valid one replaced;
//	            a changed signed field never checks), FuzzSKSignature
//	            (security key signatures, webauthn's included, against
//	            the software authenticator's keys), FuzzParseKRL
//	            (krl_test.go: key revocation lists, whole or one
//	            certificate section)
//	internal/sntrup761: FuzzPeerBytes (a public key to encapsulate to and
//	            a ciphertext to decapsulate, as a peer sends them)
//	auth:       FuzzServe (server side of userauth), FuzzAuthenticate
//	            (client side), FuzzParseAuthorizedKeys,
//	            FuzzParseAuthorizedPrincipals (usercert_test.go),
//	            FuzzParseKnownHosts (with a host certificate checked
//	            against whatever parses, and the host key algorithms'
//	            order), FuzzParsePrivateKey (also PrivateKeyPublicKey,
//	            which must agree, and ParsePublicKeyFile), FuzzAgentReply
//	            (ssh-agent replies, security key signatures included)
//	channel:    FuzzMuxPackets (a multiplexer fed hostile packets)
//	internal/connmsg: FuzzForwardPayloads (forward_test.go: the payloads
//	            of tcpip-forward, its reply, forwarded-tcpip and the
//	            streamlocal requests and opens; what parses marshals back
//	            to the same bytes), FuzzSessionPayloads (session_test.go:
//	            the data of pty-req with its terminal modes,
//	            window-change, env, exit-status, exit-signal, signal and
//	            break; what parses marshals to bytes that parse the same)
//	sftp:       FuzzServerPackets (the server fed arbitrary requests),
//	            FuzzClientReplies (client_fuzz_test.go: the client fed
//	            arbitrary replies)
//	resume:     FuzzRegistryResume (RESUME_REQUEST against the server's
//	            registry), FuzzSessionReadPacket (the server's resume
//	            state machine against a model), FuzzSenderFrames
//	            (state_test.go: the Sender's retention and its pools
//	            against a model)
//	internal/netwatch: FuzzNetlinkChange (netlink messages),
//	            FuzzRtChanges (rtmsg_test.go: BSD and macOS routing
//	            socket messages), FuzzMibChange (Windows' notification
//	            types)
//	cmd/rsftp:  FuzzSSHConfig (sshconfig_fuzz_test.go: ssh_config files
//	            with Host patterns, Match (Match exec runs no command
//	            there), Include, quoting, Key=Value, long lines, and -o
//	            options), FuzzSOCKSParsers (ssh_fuzz_test.go: the SOCKS4,
//	            4a and 5 requests rsftp ssh -D reads from local clients),
//	            FuzzEscapeMachine (the escapes in typed keys, whole and a
//	            byte at a time)
//
// The ones here need nothing unexported: the reconnection messages of the
// resume extension (FuzzResumeMessages), the records of resumable TLS
// (FuzzTLSResumeRecords, tlsresume_test.go: a stream of records as a TLS
// connection delivers them, each length and body checked, docs/
// PROTOCOL.tlsresume.md section 3), public key blobs and signatures
// (FuzzPublicKey), the connection protocol's messages of internal/connmsg
// (FuzzChannelMessages: parse, marshal, parse again must agree), private
// key files (FuzzPrivateKey).
//
// The list above may lag the code; the module's targets are what
//
//	go test -list '^Fuzz' ./...
//
// prints. scripts/fuzz-ci.sh also fails when a target in its required
// list has disappeared.
//
// # Running
//
// One target, for a while or for hours (-fuzz takes a regular expression,
// so anchor the name; one package at a time):
//
//	go test ./kex -run '^$' -fuzz '^FuzzParseKexReply$' -fuzztime 60s
//	go test ./transport -run '^$' -fuzz '^FuzzConnAfterKex$' -fuzztime 4h
//
// -parallel N sets the number of worker processes (GOMAXPROCS by
// default). Each new interesting input is minimized for up to
// -fuzzminimizetime (60s by default) before its worker fuzzes again, so
// a short run on a slow target can spend nearly all its time minimizing;
// for runs of minutes add -fuzzminimizetime=10x. fuzz/run.sh runs every
// target in the module one after another (default 30s each):
//
//	fuzz/run.sh 10m
//
// and scripts/fuzz-ci.sh runs each briefly (default 5s) as CI does.
//
// # Corpus
//
// A target's inputs come from its f.Add seeds, from the committed seed
// corpus in <package>/testdata/fuzz/<Target>/ (files in the "go test fuzz
// v1" format), and from the generated corpus the fuzzer keeps in
// $(go env GOCACHE)/fuzz/<import path>/<Target>/, which persists between
// runs on one machine (fuzz-ci.sh uses it too) and is never committed
// (go clean -fuzzcache removes it). Plain go test runs the f.Add seeds
// and the committed corpus as ordinary subtests, so each committed file
// is a regression test. The rec-* files of the committed corpora are
// recorded from real sessions, ours and OpenSSH's, by package
// fuzz/corpus (scripts/record-corpora.sh).
//
// # Findings
//
// When a target fails, go test minimizes the input and writes it to
// <package>/testdata/fuzz/<Target>/<hash>, then prints how to rerun it:
//
//	go test ./kex -run '^FuzzParseKexReply/<hash>$' -v
//
// The minimizing stops after -fuzzminimizetime (60s by default): pass a
// longer one for a smaller input, or trim the file by hand while the
// rerun still fails (the file is plain text, one Go literal per
// argument). Then fix the code, check
// that the rerun passes, rename the file to say what it catches (any name
// works), and commit it with the fix: it runs with every go test from
// then on. An input that shows a bug in code someone else owns goes in
// the report with the file and line it fails at, not in testdata/ (a
// failing test there breaks everyone's go test).
package fuzz

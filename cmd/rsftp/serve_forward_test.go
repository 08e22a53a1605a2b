package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// TestServeForwardingFlags: rsftp serve forwards nothing unless told;
// --forwarding turns on each kind, the lists are sshd's, and bad values
// are refused when read.
func TestServeForwardingFlags(t *testing.T) {
	var help bytes.Buffer
	if _, err := parseServeFlags([]string{"-h"}, &help); err == nil {
		t.Fatal("-h: no ErrHelp")
	}
	for _, want := range []string{"-forwarding", "-permit-open", "-permit-listen", "-gateway-ports", "PermitOpen", "(default any)"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
	type kinds struct{ tcpL, tcpR, unixL, unixR, agent bool }
	kindsOf := func(cfg *rsftp.ServerConfig) kinds {
		k := kinds{tcpL: cfg.AllowTCPForwarding != nil, tcpR: cfg.AllowRemoteForwarding != nil, agent: cfg.AllowAgentForwarding != nil}
		if f := cfg.AllowStreamLocalForwarding; f != nil {
			k.unixL, k.unixR = f("u", "/p", false), f("u", "/p", true)
		}
		return k
	}
	for _, tc := range []struct {
		args []string
		want kinds
	}{
		{nil, kinds{}},
		{[]string{"--forwarding", "none"}, kinds{}},
		{[]string{"--forwarding", "local"}, kinds{tcpL: true, unixL: true}},
		{[]string{"--forwarding", "remote"}, kinds{tcpR: true, unixR: true}},
		{[]string{"--forwarding", "agent"}, kinds{agent: true}},
		{[]string{"--forwarding", "local,remote,agent"}, kinds{true, true, true, true, true}},
		{[]string{"--forwarding", "all"}, kinds{true, true, true, true, true}},
	} {
		o, err := parseServeFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		cfg := o.serverConfig()
		if got := kindsOf(cfg); got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.args, got, tc.want)
		}
		if cfg.PermitOpen != nil || cfg.PermitListen != nil || cfg.GatewayPorts != rsftp.GatewayPortsNo || cfg.StreamLocalBindUnlink {
			t.Errorf("%q: lists %q %q, GatewayPorts %v: want sshd's defaults", tc.args, cfg.PermitOpen, cfg.PermitListen, cfg.GatewayPorts)
		}
	}
	o, err := parseServeFlags([]string{"--forwarding", "remote", "--permit-open", "db:5432,[::1]:22", "--permit-listen", "8080 localhost:*", "--gateway-ports", "clientspecified", "--stream-local-bind-unlink"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.serverConfig()
	if strings.Join(cfg.PermitOpen, " ") != "db:5432 [::1]:22" || strings.Join(cfg.PermitListen, " ") != "8080 localhost:*" || cfg.GatewayPorts != rsftp.GatewayPortsClientSpecified || !cfg.StreamLocalBindUnlink {
		t.Errorf("lists %q %q, GatewayPorts %v, StreamLocalBindUnlink %v", cfg.PermitOpen, cfg.PermitListen, cfg.GatewayPorts, cfg.StreamLocalBindUnlink)
	}
	for _, args := range [][]string{
		{"--forwarding", "x11"}, {"--forwarding", "none,local"}, {"--permit-open", "db"},
		{"--permit-open", ""}, {"--permit-open", "any,db:1"}, {"--permit-listen", "h:99999"},
		{"--gateway-ports", "maybe"},
	} {
		if _, err := parseServeFlags(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// TestServeForwarding: rsftp serve with --forwarding local,remote lets a
// key forward both ways, within --permit-open; a restrict or
// no-port-forwarding line may not, and without --forwarding nobody may.
func TestServeForwarding(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	tport := target.Addr().(*net.TCPAddr).Port
	key, restricted, noPF := serveTestKey(t), serveTestKey(t), serveTestKey(t)
	lines := []string{
		kex.MarshalAuthorizedKey(key.PublicKey()),
		"restrict " + kex.MarshalAuthorizedKey(restricted.PublicKey()),
		"no-port-forwarding " + kex.MarshalAuthorizedKey(noPF.PublicKey()),
	}
	try := func(r *serveRig, k kex.Signer) (local, remote bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hk := r.hostKey.PublicKey().Marshal()
		c, err := rsftp.Dial(ctx, "tcp", r.addr, &rsftp.ClientConfig{
			User: currentUser(t),
			Auth: []auth.Method{auth.PublicKeySigners(k)},
			HostKeyCallback: func(_ string, _ int, pk kex.PublicKey) error {
				if !bytes.Equal(pk.Marshal(), hk) {
					return errors.New("host key mismatch")
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if fc, err := c.DialTCP(ctx, "127.0.0.1", tport); err == nil {
			io.WriteString(fc, "x")
			b := make([]byte, 1)
			_, err := io.ReadFull(fc, b)
			local = err == nil && b[0] == 'x'
			fc.Close()
		}
		if l, err := c.ListenTCP(ctx, "localhost", 0); err == nil {
			remote = true
			l.Close()
		}
		return local, remote
	}
	r := newServeRig(t, "", "--forwarding", "local,remote")
	r.writeKeys(t, lines...)
	for _, tc := range []struct {
		name          string
		k             kex.Signer
		local, remote bool
	}{{"plain key", key, true, true}, {"restrict", restricted, false, false}, {"no-port-forwarding", noPF, false, false}} {
		if l, rm := try(r, tc.k); l != tc.local || rm != tc.remote {
			t.Errorf("%s: local %v remote %v, want %v %v", tc.name, l, rm, tc.local, tc.remote)
		}
	}
	closed := newServeRig(t, "", "--forwarding", "local,remote", "--permit-open", "127.0.0.1:1", "--permit-listen", "none")
	closed.writeKeys(t, lines...)
	if l, rm := try(closed, key); l || rm {
		t.Errorf("outside --permit-open and --permit-listen none: local %v remote %v", l, rm)
	}
	off := newServeRig(t, "")
	off.writeKeys(t, lines...)
	if l, rm := try(off, key); l || rm {
		t.Errorf("without --forwarding: local %v remote %v", l, rm)
	}
}

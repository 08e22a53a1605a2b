package rsftp

import (
	"slices"
	"testing"
)

func TestPermitOpen(t *testing.T) {
	for _, tc := range []struct {
		list []string
		host string
		port int
		want bool
	}{
		{nil, "example.org", 22, true},
		{[]string{"any"}, "example.org", 22, true},
		{[]string{"none"}, "example.org", 22, false},
		{[]string{"example.org:22"}, "example.org", 22, true},
		{[]string{"example.org:22"}, "example.org", 23, false},
		{[]string{"example.org:22"}, "EXAMPLE.org", 22, false}, // as written, as sshd
		{[]string{"example.org:*"}, "example.org", 4000, true},
		{[]string{"*:443"}, "anything", 443, true},
		{[]string{"*:443"}, "anything", 80, false},
		{[]string{"[::1]:22"}, "::1", 22, true},
		{[]string{"10.0.0.1:22"}, "10.0.0.10", 22, false},
		{[]string{"bad", "h:1"}, "h", 1, true}, // a bad entry matches nothing
	} {
		if got := permitOpen(tc.list, tc.host, tc.port); got != tc.want {
			t.Errorf("permitOpen(%q, %s, %d) = %v", tc.list, tc.host, tc.port, got)
		}
	}
}

func TestPermitListen(t *testing.T) {
	for _, tc := range []struct {
		list []string
		host string
		port int
		want bool
	}{
		{nil, "localhost", 8080, true},
		{[]string{"none"}, "localhost", 8080, false},
		{[]string{"8080"}, "anything", 8080, true},
		{[]string{"8080"}, "localhost", 8081, false},
		{[]string{"8080"}, "localhost", 0, false},
		{[]string{"0"}, "localhost", 0, true},
		{[]string{"localhost:*"}, "LocalHost", 0, true},
		{[]string{"localhost:8080"}, "127.0.0.1", 8080, false}, // ssh's "localhost" is its own name
		{[]string{"loc*:80"}, "localhost", 80, true},
		{[]string{"l?calhost:80"}, "localhost", 80, true},
		{[]string{"[::1]:80"}, "::1", 80, true},
		{[]string{"*:*"}, "", 1, true},
	} {
		if got := permitListen(tc.list, tc.host, tc.port); got != tc.want {
			t.Errorf("permitListen(%q, %q, %d) = %v", tc.list, tc.host, tc.port, got)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		s, pat string
		want   bool
	}{
		{"", "", true}, {"", "*", true}, {"a", "", false}, {"abc", "a*c", true},
		{"abc", "a?c", true}, {"abbbc", "a*b*c", true}, {"abc", "a*d", false},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*a*a*a*c", false},
	} {
		if got := matchPattern(tc.s, tc.pat); got != tc.want {
			t.Errorf("matchPattern(%q, %q) = %v", tc.s, tc.pat, got)
		}
	}
}

func TestBindAddrs(t *testing.T) {
	for _, tc := range []struct {
		host string
		g    GatewayPorts
		want []string
	}{
		{"localhost", GatewayPortsNo, []string{"127.0.0.1", "::1"}},
		{"", GatewayPortsNo, []string{"127.0.0.1", "::1"}},
		{"0.0.0.0", GatewayPortsNo, []string{"127.0.0.1", "::1"}},
		{"::1", GatewayPortsNo, []string{"::1"}},
		{"127.0.0.1", GatewayPortsYes, []string{""}},
		{"localhost", GatewayPortsYes, []string{""}},
		{"", GatewayPortsClientSpecified, []string{""}},
		{"*", GatewayPortsClientSpecified, []string{""}},
		{"localhost", GatewayPortsClientSpecified, []string{"127.0.0.1", "::1"}},
		{"192.0.2.1", GatewayPortsClientSpecified, []string{"192.0.2.1"}},
	} {
		if got := bindAddrs(tc.host, tc.g); !slices.Equal(got, tc.want) {
			t.Errorf("bindAddrs(%q, %v) = %q, want %q", tc.host, tc.g, got, tc.want)
		}
	}
}

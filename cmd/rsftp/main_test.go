package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the tool the end-to-end tests built (e2eTool), which
// each run used to leave behind in the temporary directory. Started with
// RSFTP_TEST_RELAY set, the test binary is instead the ProxyCommand of
// the ProxyCommand tests (relayMain).
func TestMain(m *testing.M) {
	if f := os.Getenv("RSFTP_TEST_RELAY"); f != "" {
		os.Exit(relayMain(f, os.Args[1:]))
	}
	code := m.Run()
	if e2eBin != "" {
		os.RemoveAll(filepath.Dir(e2eBin))
	}
	os.Exit(code)
}

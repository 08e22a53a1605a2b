package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the tool the end-to-end tests built (e2eTool), which
// each run used to leave behind in the temporary directory.
func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBin != "" {
		os.RemoveAll(filepath.Dir(e2eBin))
	}
	os.Exit(code)
}

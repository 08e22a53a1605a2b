package main

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// TestCheckConfigPermWindows: a file of the user's own passes; once
// Everyone may write it, it is refused, as OpenSSH for Windows refuses
// it.
func TestCheckConfigPermWindows(t *testing.T) {
	f, err := os.CreateTemp("", "rsftp-config-")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	path := f.Name()
	defer os.Remove(path)
	if err := checkConfigPerm(path); err != nil {
		t.Fatalf("the user's own file: %v", err)
	}
	everyone, err := windows.CreateWellKnownSid(windows.WinWorldSid)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	old, _, _ := sd.DACL()
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: windows.FILE_WRITE_DATA,
		AccessMode:        windows.GRANT_ACCESS,
		Trustee: windows.TRUSTEE{
			TrusteeForm:  windows.TRUSTEE_IS_SID,
			TrusteeType:  windows.TRUSTEE_IS_WELL_KNOWN_GROUP,
			TrusteeValue: windows.TrusteeValueFromSID(everyone),
		},
	}}, old)
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION, nil, nil, acl, nil); err != nil {
		t.Fatal(err)
	}
	err = checkConfigPerm(path)
	if err == nil || !strings.Contains(err.Error(), "Bad owner or permissions") {
		t.Fatalf("a file Everyone may write: %v", err)
	}
	t.Log(err)
}

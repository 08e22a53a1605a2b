package main

import (
	"fmt"
	"os"
	"os/user"
	"unsafe"

	"golang.org/x/sys/windows"
)

// secureWriteMask is what no one but the user, SYSTEM, the
// administrators and TrustedInstaller may be granted on a configuration
// file: the rights OpenSSH for Windows counts as writing.
const secureWriteMask = windows.FILE_WRITE_DATA | windows.FILE_APPEND_DATA | windows.FILE_WRITE_EA |
	windows.FILE_WRITE_ATTRIBUTES | windows.WRITE_DAC | windows.WRITE_OWNER | windows.DELETE |
	windows.GENERIC_WRITE | windows.GENERIC_ALL

// trustedInstallerSID is NT SERVICE\TrustedInstaller.
const trustedInstallerSID = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"

// checkConfigPerm refuses, as OpenSSH for Windows'
// check_secure_file_permission does, a configuration file (it can run
// commands: ProxyCommand, Match exec) owned by anyone but the user,
// SYSTEM, the administrators or TrustedInstaller, or whose DACL lets
// anyone else write it (an allow entry with a write right; a missing
// DACL lets everyone).
func checkConfigPerm(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil // reading it says what is wrong
	}
	bad := func(why string) error { return fmt.Errorf("Bad owner or permissions on %s: %s", path, why) }
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return bad(fmt.Sprintf("reading its security descriptor: %v", err))
	}
	trusted, err := trustedSIDs()
	if err != nil {
		return bad(err.Error())
	}
	isTrusted := func(s *windows.SID) bool {
		for _, t := range trusted {
			if s.Equals(t) {
				return true
			}
		}
		return false
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return bad("no owner")
	}
	if !isTrusted(owner) {
		return bad("owned by " + owner.String())
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		return bad("no DACL: everyone may write it")
	}
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return bad(fmt.Sprintf("reading its DACL: %v", err))
		}
		if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE || ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0 {
			continue // a denial, or an entry only for the directory's children
		}
		if ace.Mask&secureWriteMask == 0 {
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		if !isTrusted(sid) {
			return bad(sid.String() + " may write it")
		}
	}
	return nil
}

// trustedSIDs are the user running rsftp, SYSTEM, the administrators and
// TrustedInstaller.
func trustedSIDs() ([]*windows.SID, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("who runs rsftp: %v", err)
	}
	out := []*windows.SID{tu.User.Sid}
	for _, k := range []windows.WELL_KNOWN_SID_TYPE{windows.WinLocalSystemSid, windows.WinBuiltinAdministratorsSid} {
		if s, err := windows.CreateWellKnownSid(k); err == nil {
			out = append(out, s)
		}
	}
	if s, err := windows.StringToSid(trustedInstallerSID); err == nil {
		out = append(out, s)
	}
	return out, nil
}

// localUser is the user's login name (%u, Match localuser, the default
// remote user) as OpenSSH for Windows makes it from DOMAIN\user:
// windowsLoginName.
func localUser() string {
	name := os.Getenv("USERNAME")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return loginName(name)
}

// loginName is the login name of an account as os/user names it
// (DOMAIN\user): the one a client on Windows sends (localUser), which
// rsftp serve accepts by default.
func loginName(account string) string {
	computer, _ := windows.ComputerName()
	return windowsLoginName(account, computer)
}

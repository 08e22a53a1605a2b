package main

import "strings"

// windowsLoginName makes a login name of a Windows account name
// (DOMAIN\user, as os/user gives it): user alone for an account of this
// computer (whose domain is the computer's name), user@domain for a
// domain account, in lower case, as OpenSSH for Windows names the local
// user. A server rarely knows DOMAIN\user; User in ssh_config or user@
// on the command line says otherwise. Here, not in a _windows file, so
// that it is tested everywhere.
func windowsLoginName(account, computer string) string {
	domain, name, ok := strings.Cut(account, `\`)
	if !ok {
		return strings.ToLower(account)
	}
	if domain == "" || strings.EqualFold(domain, computer) {
		return strings.ToLower(name)
	}
	return strings.ToLower(name + "@" + domain)
}

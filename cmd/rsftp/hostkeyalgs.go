package main

import (
	"path/filepath"
	"slices"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/transport"
)

// hostKeyAlgorithms is the list of host key algorithms offered to
// hostname and port: HostKeyAlgorithms (-o or ssh_config) applied to our
// defaults as Ciphers is ("a,b" replaces them, "+a" appends, "-a"
// removes, "^a" puts first), and then, as ssh does when the option is
// unset or only appends or removes, reordered so that the key types
// known_hosts holds for the host come first (auth.KnownHostsAlgorithms,
// OpenSSH's order_hostkeyalgs): a server with ed25519, ECDSA and RSA host
// keys whose ECDSA key alone is known then presents that one. The
// defaults are ssh's: the certificate algorithms
// (ssh-ed25519-cert-v01@openssh.com...) and then the plain ones; the
// certificate algorithms go first for a host an @cert-authority line
// covers, and after the plain ones for any other (unlike ssh: a host
// certificate nothing vouches for would be checked as its plain key, and
// the plain key first lets a guessed kex packet be right). A list given
// with "^" or in full is offered as it is.
// HostKeyAlias, if set, names the host in known_hosts, as in the host key
// check.
func hostKeyAlgorithms(cfg *sshConfig, hostname string, port int) ([]string, error) {
	spec := cfg.getDefault("hostkeyalgorithms", "")
	defaults := auth.WithCertAlgorithms(transport.DefaultHostKeyAlgorithms)
	algos, err := algorithmList(spec, defaults, "host key")
	if err != nil {
		return nil, err
	}
	if spec != "" && spec[0] != '+' && spec[0] != '-' {
		return algos, nil
	}
	if algos == nil {
		algos = slices.Clone(defaults)
	}
	if alias, ok := cfg.get("hostkeyalias"); ok {
		hostname, port = alias, 22
	}
	files, _ := knownHostsFiles(cfg)
	return auth.KnownHostsAlgorithms(files, hostname, port, algos), nil
}

// knownHostsFiles lists UserKnownHostsFile's files, then
// GlobalKnownHostsFile's; the first userFiles are the user's.
func knownHostsFiles(cfg *sshConfig) (files []string, userFiles int) {
	user := cfg.all("userknownhostsfile") // each a file, blanks and all
	if len(user) == 0 {
		user = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
	}
	for _, f := range user {
		if f != "none" {
			files = append(files, expandHome(f))
		}
	}
	userFiles = len(files)
	global := cfg.all("globalknownhostsfile")
	if len(global) == 0 {
		g := filepath.Join(auth.SystemSSHDir(), "ssh_known_hosts")
		global = []string{g, g + "2"}
	}
	for _, f := range global {
		if f != "none" {
			files = append(files, expandHome(f))
		}
	}
	return files, userFiles
}

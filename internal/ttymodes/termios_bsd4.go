//go:build freebsd || netbsd || openbsd

package ttymodes

import "golang.org/x/sys/unix"

type tcflag = uint32

var sysChars = []charMode{{VDSUSP, unix.VDSUSP}, {VSTATUS, unix.VSTATUS}}

var sysFlags []flagMode

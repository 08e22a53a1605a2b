package ttymodes

import "golang.org/x/sys/unix"

type tcflag = uint64

var sysChars = []charMode{{VDSUSP, unix.VDSUSP}, {VSTATUS, unix.VSTATUS}}

var sysFlags = []flagMode{{IUTF8, iflag, unix.IUTF8}}

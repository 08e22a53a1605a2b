//go:build linux

package sftp

import (
	"io/fs"
	"syscall"
)

type statInfo struct {
	uid, gid uint32
	atime    uint32
}

func sysStat(fi fs.FileInfo) (statInfo, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statInfo{}, false
	}
	return statInfo{uid: st.Uid, gid: st.Gid, atime: uint32(st.Atim.Sec)}, true
}

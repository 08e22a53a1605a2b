//go:build !linux

package sftp

import (
	"io/fs"
	"os"
	"time"
)

var errUnsupported = &StatusError{Code: StatusOpUnsupported, Message: "not supported on this system"}

func statvfs(*os.File) ([11]uint64, error) { return [11]uint64{}, errUnsupported }

func futimes(*os.File, time.Time, time.Time) error { return errUnsupported }

func nlinkOf(fs.FileInfo) uint64 { return 1 }

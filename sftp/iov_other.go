//go:build !linux

package sftp

import "os"

// readAtv is ReadAt into several buffers in turn. Like ReadAt it returns
// io.EOF when the file ends before the buffers are full.
func readAtv(f *os.File, bufs [][]byte, off int64) (int, error) {
	return eachAt(f.ReadAt, bufs, off)
}

// writeAtv is WriteAt from several buffers in turn.
func writeAtv(f *os.File, bufs [][]byte, off int64) (int, error) {
	return eachAt(f.WriteAt, bufs, off)
}

func eachAt(op func([]byte, int64) (int, error), bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		n, err := op(b, off)
		total += n
		off += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/sftp"
)

// BenchmarkDownloadOverRTT downloads a file over a simulated link with a
// 50 ms round trip (25 ms each way, 256 MiB of buffer per direction,
// bandwidth unlimited: the CPU bounds it) with the client's READs in
// flight fixed at 64 (16 MiB, as OpenSSH's client keeps) and left to
// grow (the default). It reports MB/s of each and the READs in flight the
// default grew to.
//
//	go test -run '^$' -bench DownloadOverRTT -benchtime 3x ./internal/e2e
//
// RSFTP_BENCH_MIB sets the file's size (default 256).
func BenchmarkDownloadOverRTT(b *testing.B) {
	size := int64(256 << 20)
	if v := os.Getenv("RSFTP_BENCH_MIB"); v != "" {
		n, _ := strconv.Atoi(v)
		size = int64(n) << 20
	}
	r := newRig(b, time.Hour, nil, netsim.WithLatency(25*time.Millisecond), netsim.WithBufferSize(256<<20))
	randomFile(b, filepath.Join(r.root, "big"), size)
	c := r.dial(nil)
	fixed, _ := openSFTP(b, c, sftp.MaxInflight(sftp.DefaultMaxInflight))
	grown, _ := openSFTP(b, c)
	local := filepath.Join(b.TempDir(), "dl")
	get := func(sc *sftp.Client) float64 {
		os.Remove(local)
		start := time.Now()
		if err := sc.Download(context.Background(), "big", local, sftp.TransferOptions{}); err != nil {
			b.Fatal(err)
		}
		return float64(size) / time.Since(start).Seconds() / 1e6
	}
	var rf, rg []float64
	b.ResetTimer()
	for range b.N {
		rf = append(rf, get(fixed))
		rg = append(rg, get(grown))
	}
	b.StopTimer()
	b.ReportMetric(median(rf), "fixed-MB/s")
	b.ReportMetric(median(rg), "grown-MB/s")
	b.ReportMetric(float64(grown.Limits().GrowInflight), "cap-reads")
}

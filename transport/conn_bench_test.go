package transport

import (
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
)

// BenchmarkConnThroughput moves 32 KiB channel-data payloads through a
// pair of Conns over loopback TCP, for each cipher: packet framing,
// sealing, coalesced writes, reads and opening together.
func BenchmarkConnThroughput(b *testing.B) {
	for _, cipher := range supportedCiphers {
		b.Run(cipher, func(b *testing.B) {
			cc, sc := newPair(b, func(c, s *Config) { c.Ciphers = []string{cipher} })
			const n = 32 * 1024
			p := make([]byte, n+1)
			p[0] = wire.MsgChannelData
			done := make(chan error, 1)
			// Someone must read on each side for rekeys to complete.
			go func() {
				for {
					if _, err := cc.ReadPacket(); err != nil {
						return
					}
				}
			}()
			go func() {
				for i := 0; i < b.N; i++ {
					if _, err := sc.ReadPacket(); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.SetBytes(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := cc.WritePacket(p); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

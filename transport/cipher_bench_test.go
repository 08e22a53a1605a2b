package transport

import (
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
)

// benchPayload is the payload of one packet: OpenSSH's default channel
// packet size, what SFTP transfers fill.
const benchPayload = 32 * 1024

func benchCombos() []cipherCombo {
	return append(allCombos(), cipherCombo{cipher: "none"})
}

// BenchmarkSeal measures appendPacket: framing (the payload copy and the
// padding included), encryption and MAC, into a reused buffer.
func BenchmarkSeal(b *testing.B) {
	for _, c := range benchCombos() {
		b.Run(c.String(), func(b *testing.B) {
			tx := newCombo(b, c, "bench")
			payload := make([]byte, benchPayload)
			buf := make([]byte, 0, packetSize(benchPayload, 16, tx.overhead()))
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			seq := uint32(0)
			for b.Loop() {
				buf = tx.appendPacket(buf[:0], seq, payload)
				seq++
			}
		})
	}
}

// BenchmarkSealFramed measures the path of SealFrame and WriteFrame: the payload
// framed where it lies and sealed from there into the write buffer, with
// no copy first (the AEAD ciphers; others fall back to appendPacket).
func BenchmarkSealFramed(b *testing.B) {
	for _, c := range benchCombos() {
		b.Run(c.String(), func(b *testing.B) {
			out := outbound{direction: direction{cipher: newCombo(b, c, "bench")}}
			frame := make([]byte, wire.FrameHeadroom+benchPayload, wire.FrameHeadroom+benchPayload+wire.FrameTailroom)
			buf := make([]byte, 0, packetSize(benchPayload, 16, out.cipher.overhead()))
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			for b.Loop() {
				buf = out.sealFramed(buf[:0], frame)
			}
		})
	}
}

// BenchmarkOpen measures packetLength plus openPacket (authentication,
// in-place decryption, padding checks). Packets are sealed in batches
// with the timer stopped, since opening consumes them and CTR and GCM
// receivers must follow the sender's state.
func BenchmarkOpen(b *testing.B) {
	const batch = 16
	for _, c := range benchCombos() {
		b.Run(c.String(), func(b *testing.B) {
			tx, rx := newCombo(b, c, "bench"), newCombo(b, c, "bench")
			payload := make([]byte, benchPayload)
			var bufs [batch][]byte
			for i := range bufs {
				bufs[i] = make([]byte, 0, packetSize(benchPayload, 16, tx.overhead()))
			}
			txSeq, rxSeq := uint32(0), uint32(0)
			refill := func() {
				for i := range bufs {
					bufs[i] = tx.appendPacket(bufs[i][:0], txSeq, payload)
					txSeq++
				}
			}
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			b.StopTimer()
			refill()
			b.StartTimer()
			for i := 0; i < b.N; i++ {
				if i%batch == 0 && i > 0 {
					b.StopTimer()
					refill()
					b.StartTimer()
				}
				pkt := bufs[i%batch]
				lb := rx.lengthBytes()
				rest, err := rx.packetLength(rxSeq, pkt[:lb])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := rx.openPacket(rxSeq, pkt[:lb+rest]); err != nil {
					b.Fatal(err)
				}
				rxSeq++
			}
		})
	}
}

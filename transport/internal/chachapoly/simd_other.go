//go:build !amd64 || purego

package transport

// chachaAVX512 is false where there is no assembly: the AEAD path runs.
const chachaAVX512 = false

func chachaXORAVX512(state *[16]uint32, dst, src *byte, chunks int) {
	panic("transport: chachaXORAVX512 without assembly")
}

// polyIFMA is false where there is no assembly: x/crypto/poly1305 runs.
const polyIFMA = false

func polyGroupsIFMA(h *[24]uint64, msg *byte, groups int, pw *polyPowers) {
	panic("transport: polyGroupsIFMA without assembly")
}

// gcmVAESOK is false where there is no assembly: crypto/cipher's GCM runs.
const gcmVAESOK = false

func gcmVAES(ks *byte, rounds int, pw *gcmVAESPowers, ctr *[16]byte, acc *gfElem, dst, src *byte, blocks int, dec int) {
	panic("transport: gcmVAES without assembly")
}

//go:build !amd64 || purego

package chachapoly

// chachaAVX512 is false where there is no assembly: x/crypto/chacha20 runs.
const chachaAVX512 = false

func chachaXORAVX512(state *[16]uint32, dst, src *byte, chunks int) {
	panic("chachapoly: chachaXORAVX512 without assembly")
}

// polyIFMA is false where there is no assembly: x/crypto/poly1305 runs.
const polyIFMA = false

func polyGroupsIFMA(h *[24]uint64, msg *byte, groups int, pw *polyPowers) {
	panic("chachapoly: polyGroupsIFMA without assembly")
}

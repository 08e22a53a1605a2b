//go:build !amd64 || purego

package gcmvaes

// gcmVAESOK is false where there is no assembly: crypto/cipher's GCM runs.
const gcmVAESOK = false

func gcmVAES(ks *byte, rounds int, pw *gcmVAESPowers, ctr *[16]byte, acc *gfElem, dst, src *byte, blocks int, dec int) {
	panic("gcmvaes: gcmVAES without assembly")
}

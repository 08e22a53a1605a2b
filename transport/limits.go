package transport

// maxPacketLength bounds packet_length (RFC 4253 section 6.1 requires 35000
// at least; OpenSSH accepts 256 KiB). Checked before any allocation.
const maxPacketLength = 256 * 1024

// maxPayload is the largest payload we send or accept.
const maxPayload = maxPacketLength - 5 - 255

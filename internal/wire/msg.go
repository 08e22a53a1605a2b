package wire

// Message numbers (RFC 4250 section 4.1, RFC 8308, OpenSSH PROTOCOL).
const (
	MsgDisconnect     = 1
	MsgIgnore         = 2
	MsgUnimplemented  = 3
	MsgDebug          = 4
	MsgServiceRequest = 5
	MsgServiceAccept  = 6
	MsgExtInfo        = 7
	MsgKexInit        = 20
	MsgNewKeys        = 21
	MsgKexECDHInit    = 30
	MsgKexECDHReply   = 31

	MsgUserauthRequest = 50
	MsgUserauthFailure = 51
	MsgUserauthSuccess = 52
	MsgUserauthBanner  = 53
	// 60..79 are method specific: PK_OK, PASSWD_CHANGEREQ, INFO_REQUEST.
	MsgUserauthPKOK = 60

	MsgGlobalRequest       = 80
	MsgRequestSuccess      = 81
	MsgRequestFailure      = 82
	MsgChannelOpen         = 90
	MsgChannelOpenConfirm  = 91
	MsgChannelOpenFailure  = 92
	MsgChannelWindowAdjust = 93
	MsgChannelData         = 94
	MsgChannelExtendedData = 95
	MsgChannelEOF          = 96
	MsgChannelClose        = 97
	MsgChannelRequest      = 98
	MsgChannelSuccess      = 99
	MsgChannelFailure      = 100
	MsgPing                = 192 // ping@openssh.com
	MsgPong                = 193 // ping@openssh.com
)

// Disconnect reason codes (RFC 4250 section 4.2.2).
const (
	DisconnectHostNotAllowedToConnect     = 1
	DisconnectProtocolError               = 2
	DisconnectKeyExchangeFailed           = 3
	DisconnectReserved                    = 4
	DisconnectMACError                    = 5
	DisconnectCompressionError            = 6
	DisconnectServiceNotAvailable         = 7
	DisconnectProtocolVersionNotSupported = 8
	DisconnectHostKeyNotVerifiable        = 9
	DisconnectConnectionLost              = 10
	DisconnectByApplication               = 11
	DisconnectTooManyConnections          = 12
	DisconnectAuthCancelledByUser         = 13
	DisconnectNoMoreAuthMethodsAvailable  = 14
	DisconnectIllegalUserName             = 15
)

// A payload framed in place: a message stored at buf[FrameHeadroom:], with
// at least FrameTailroom bytes of spare capacity after it, leaves room for
// the binary packet protocol's uint32 packet_length and byte
// padding_length before it and for the random padding (4 to 19 bytes)
// after it. The transport can then seal the packet straight from buf into
// its write buffer, in one pass, instead of copying the payload into a
// frame and sealing that (transport.Conn.SealFrame, which leaves the
// frame to its caller, and WriteFrame, which takes it: the frame writes
// of resume.Transport and channel.PacketConn). Those bytes are scratch:
// the transport overwrites them; the payload stays as it was.
const (
	FrameHeadroom = 5
	FrameTailroom = 32
)

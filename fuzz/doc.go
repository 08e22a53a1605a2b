// Package fuzz holds fuzz targets for the parsers that take bytes from a
// peer or from files users are given, and the list of every target in the
// module.
//
// Targets that need unexported code live beside it:
//
//	transport: FuzzInboundPacket (packet decoder, every cipher),
//	           FuzzParseKexInit, FuzzReadVersion
//	channel:   FuzzMuxPackets (a multiplexer fed hostile packets)
//	auth:      FuzzParseAuthorizedKeys, FuzzParseKnownHosts, FuzzServe,
//	           FuzzAuthenticate,
//	           FuzzParsePrivateKey, FuzzAgentReply
//	sftp:      FuzzServerPackets (the server fed arbitrary requests)
//	resume:    FuzzRegistryResume, FuzzSessionReadPacket (the server's resume state machine)
//	internal/netwatch: FuzzRelevant (netlink messages)
//
// The ones here use only exported API: the reconnection messages of the
// resume extension (FuzzResumeMessages, with a committed seed corpus in
// testdata/), public key blobs and signatures,
// channel messages (parse, marshal, parse again must agree), private key
// files. Run one with
//
//	go test ./fuzz -run '^$' -fuzz FuzzChannelMessages -fuzztime 60s
//
// or all of them, for a while each, with fuzz/run.sh.
package fuzz

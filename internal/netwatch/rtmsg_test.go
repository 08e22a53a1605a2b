package netwatch

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The routing messages of the tests are built here field by field, as
// darwin's and freebsd's <net/route.h> lay them out (x/sys/unix's
// ztypes_darwin_*.go and ztypes_freebsd_*.go give the same offsets and
// sizes). testdata/rtmsg/*.txt holds a set of them written out with each
// field named, the messages a laptop's kernel sends when it joins a
// network, loses it, or learns a neighbour; go test -run
// TestRtFixtures . -args -update-rtmsg rewrites them from rtFixtures below.

var updateRtmsg = flag.Bool("update-rtmsg", false, "rewrite testdata/rtmsg from rtFixtures")

// part is a run of a message's bytes and what they are.
type part struct {
	b    []byte
	note string
}

type rtBuilder struct {
	d     *rtDialect
	parts []part
}

func (m *rtBuilder) add(note string, b ...byte) *rtBuilder {
	m.parts = append(m.parts, part{b, note})
	return m
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// bytes assembles the message and sets its length word.
func (m *rtBuilder) bytes() []byte {
	var b []byte
	for _, p := range m.parts {
		b = append(b, p.b...)
	}
	binary.LittleEndian.PutUint16(b[0:2], uint16(len(b)))
	return b
}

// start opens a message with msglen (filled in by bytes), version and type.
func start(d *rtDialect, typ byte, what string) *rtBuilder {
	m := &rtBuilder{d: d}
	return m.add(fmt.Sprintf("msglen, version %d, type %#x (%s)", d.version, typ, what), 0, 0, d.version, typ)
}

// routeMsg is an rt_msghdr: index, flags, addrs, pid, seq, errno, then
// the rest of the header (use or fmask, inits, metrics) as zeros.
func routeMsg(d *rtDialect, typ byte, what string, index uint16, flags, addrs uint32, pid, errno int32) *rtBuilder {
	m := start(d, typ, what)
	m.add(fmt.Sprintf("rtm_index %d, pad", index), cat(le16(index), []byte{0, 0})...)
	m.add(fmt.Sprintf("rtm_flags %#x, rtm_addrs %#x", flags, addrs), cat(le32(flags), le32(addrs))...)
	m.add(fmt.Sprintf("rtm_pid %d, rtm_seq 1", pid), cat(le32(uint32(pid)), le32(1))...)
	m.add(fmt.Sprintf("rtm_errno %d", errno), le32(uint32(errno))...)
	return m.add("rtm_use/rtm_fmask, rtm_inits, rtm_rmx", make([]byte, d.sizeRt-28)...)
}

// addrMsg is an ifa_msghdr: addrs, flags, index, metric.
func addrMsg(d *rtDialect, typ byte, what string, index uint16, flags, addrs uint32) *rtBuilder {
	m := start(d, typ, what)
	m.add(fmt.Sprintf("ifam_addrs %#x, ifam_flags %#x", addrs, flags), cat(le32(addrs), le32(flags))...)
	return m.add(fmt.Sprintf("ifam_index %d, pad, ifam_metric 0", index), cat(le16(index), make([]byte, d.sizeIfa-14))...)
}

// ifMsg is an if_msghdr: addrs, flags, index, and if_data as zeros.
func ifMsg(d *rtDialect, index uint16, flags uint32) *rtBuilder {
	m := start(d, d.ifInfo, "RTM_IFINFO")
	m.add(fmt.Sprintf("ifm_addrs 0, ifm_flags %#x", flags), cat(le32(0), le32(flags))...)
	return m.add(fmt.Sprintf("ifm_index %d, ifm_data", index), cat(le16(index), make([]byte, d.sizeIf-14))...)
}

// announceMsg is freebsd's if_announcemsghdr.
func announceMsg(d *rtDialect, index uint16, name string, what uint16) *rtBuilder {
	m := start(d, d.ifAnnounce, "RTM_IFANNOUNCE")
	var n [16]byte
	copy(n[:], name)
	m.add(fmt.Sprintf("ifan_index %d, ifan_name %q", index, name), cat(le16(index), n[:])...)
	return m.add(fmt.Sprintf("ifan_what %d", what), le16(what)...)
}

// pad returns b padded to the dialect's alignment.
func (m *rtBuilder) sa(note string, b []byte) *rtBuilder {
	n := m.d.roundup(len(b))
	if len(b) > 0 && b[0] == 0 { // a zero-length sockaddr
		n = m.d.align
	}
	return m.add(note, append(append([]byte(nil), b...), make([]byte, n-len(b))...)...)
}

func (m *rtBuilder) sin(note string, a netip.Addr) *rtBuilder {
	ip := a.As4()
	return m.sa(fmt.Sprintf("%s: sockaddr_in %v", note, a), cat([]byte{16, afInet, 0, 0}, ip[:], make([]byte, 8)))
}

func (m *rtBuilder) sin6(note string, a netip.Addr, scope uint32) *rtBuilder {
	ip := a.As16()
	return m.sa(fmt.Sprintf("%s: sockaddr_in6 %v scope %d", note, a, scope),
		cat([]byte{28, m.d.afInet6, 0, 0}, le32(0), ip[:], le32(scope)))
}

// sdl is a sockaddr_dl of an interface (AF_LINK) with a name and a MAC
// address, or none.
func (m *rtBuilder) sdl(note string, index uint16, name string, mac []byte) *rtBuilder {
	b := cat([]byte{0, 0x12}, le16(index), []byte{6 /* IFT_ETHER */, byte(len(name)), byte(len(mac)), 0}, []byte(name), mac)
	if len(b) < 20 {
		b = append(b, make([]byte, 20-len(b))...)
	}
	b[0] = byte(len(b))
	return m.sa(fmt.Sprintf("%s: sockaddr_dl %s", note, name), b)
}

// mask is a netmask in the kernels' short form: b is what follows sa_len
// (a family byte, often 0, then the sockaddr's bytes up to the last
// non-zero one of the mask), and sa_len covers only that.
func (m *rtBuilder) mask(note string, b []byte) *rtBuilder {
	if len(b) == 0 {
		return m.sa(note+": zero-length netmask", []byte{0})
	}
	return m.sa(note+": netmask, short form", cat([]byte{byte(len(b) + 1)}, b))
}

type rtFixture struct {
	name, about string
	d           *rtDialect
	msgs        []*rtBuilder
	want        change
	wantErr     bool
}

// Route flags (the same on both systems).
const (
	rtfUp      = 0x1
	rtfGateway = 0x2
	rtfHost    = 0x4
	rtfDone    = 0x40
	rtfStatic  = 0x800
	rtfIfScope = 0x1000000 // darwin
)

var (
	dw, fb     = &darwinDialect, &freebsdDialect
	mac        = []byte{0x3c, 0x22, 0xfb, 0x01, 0x02, 0x03}
	gw4        = netip.MustParseAddr("192.168.1.1")
	laptop4    = netip.MustParseAddr("192.168.1.23")
	bcast4     = netip.MustParseAddr("192.168.1.255")
	linkLocal6 = netip.MustParseAddr("fe80::1c2a:3bff:fe01:203")
	global6    = netip.MustParseAddr("2001:db8:5::23")
)

func rtFixtures() []rtFixture {
	return []rtFixture{
		{name: "darwin-add-default", about: "the default route through the new network's router (configd after DHCP)", d: dw, want: changeRoute,
			msgs: []*rtBuilder{routeMsg(dw, rtmAdd, "RTM_ADD", 4, rtfUp|rtfGateway|rtfStatic|rtfDone, 0x7, 312, 0).
				sin("DST", netip.IPv4Unspecified()).sin("GATEWAY", gw4).mask("NETMASK", nil)}},
		{name: "darwin-delete-default", about: "the default route withdrawn when Wi-Fi goes", d: dw, want: changeRoute,
			msgs: []*rtBuilder{routeMsg(dw, rtmDelete, "RTM_DELETE", 4, rtfUp|rtfGateway|rtfStatic|rtfDone, 0x7, 312, 0).
				sin("DST", netip.IPv4Unspecified()).sin("GATEWAY", gw4).mask("NETMASK", nil)}},
		{name: "darwin-change-scoped", about: "an interface-scoped route changed (RTM_CHANGE)", d: dw, want: changeRoute,
			msgs: []*rtBuilder{routeMsg(dw, rtmChange, "RTM_CHANGE", 4, rtfUp|rtfGateway|rtfStatic|rtfIfScope, 0x7, 312, 0).
				sin("DST", netip.IPv4Unspecified()).sin("GATEWAY", gw4).mask("NETMASK", nil)}},
		{name: "darwin-add-arp", about: "an ARP entry for the router (RTF_LLINFO): a neighbour, no path change", d: dw, want: 0,
			msgs: []*rtBuilder{routeMsg(dw, rtmAdd, "RTM_ADD", 4, rtfUp|rtfHost|rtfLLInfo|rtfDone, 0x3, 0, 0).
				sin("DST", gw4).sdl("GATEWAY", 4, "en0", mac)}},
		{name: "darwin-add-cloned", about: "a host route cloned on demand (RTF_WASCLONED), as a connect makes", d: dw, want: 0,
			msgs: []*rtBuilder{routeMsg(dw, rtmAdd, "RTM_ADD", 4, rtfUp|rtfGateway|rtfHost|darwinRTFWasCloned, 0x3, 0, 0).
				sin("DST", netip.MustParseAddr("203.0.113.9")).sin("GATEWAY", gw4)}},
		{name: "darwin-add-failed", about: "another process's RTM_ADD the kernel refused (rtm_errno EEXIST)", d: dw, want: 0,
			msgs: []*rtBuilder{routeMsg(dw, rtmAdd, "RTM_ADD", 0, rtfUp|rtfGateway|rtfStatic, 0x7, 4711, 17).
				sin("DST", netip.MustParseAddr("10.9.0.0")).sin("GATEWAY", gw4).mask("NETMASK", []byte{0, 0, 0, 255, 255})}},
		{name: "darwin-get-reply", about: "another process's RTM_GET and its answer, which every routing socket sees", d: dw, want: 0,
			msgs: []*rtBuilder{routeMsg(dw, 0x4, "RTM_GET", 4, rtfUp|rtfGateway|rtfDone, 0x7, 4711, 0).
				sin("DST", netip.IPv4Unspecified()).sin("GATEWAY", gw4).mask("NETMASK", nil)}},
		{name: "darwin-miss", about: "RTM_MISS: a lookup that found nothing", d: dw, want: 0,
			msgs: []*rtBuilder{routeMsg(dw, 0x7, "RTM_MISS", 0, 0, 0x1, 0, 0).sin("DST", netip.MustParseAddr("198.51.100.7"))}},
		{name: "darwin-newaddr-v4", about: "the laptop's DHCP address on en0, with its interface, netmask and broadcast", d: dw, want: changeAddrAdded,
			msgs: []*rtBuilder{addrMsg(dw, rtmNewAddr, "RTM_NEWADDR", 4, 0, 0xb4).
				mask("NETMASK", []byte{0, 0, 0, 255, 255, 255}).sdl("IFP", 4, "en0", mac).sin("IFA", laptop4).sin("BRD", bcast4)}},
		{name: "darwin-deladdr-v6", about: "a link-local IPv6 address removed", d: dw, want: changeAddrRemoved,
			msgs: []*rtBuilder{addrMsg(dw, rtmDelAddr, "RTM_DELADDR", 4, 0, 0x34).
				mask("NETMASK", []byte{0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255}).
				sdl("IFP", 4, "en0", mac).sin6("IFA", linkLocal6, 4)}},
		{name: "darwin-newaddr-link", about: "an RTM_NEWADDR whose address is the interface's link-layer one", d: dw, want: 0,
			msgs: []*rtBuilder{addrMsg(dw, rtmNewAddr, "RTM_NEWADDR", 4, 0, 0x20).sdl("IFA", 4, "en0", mac)}},
		{name: "darwin-ifinfo-down", about: "en0 loses its link (IFF_UP without IFF_RUNNING)", d: dw, want: changeLink,
			msgs: []*rtBuilder{ifMsg(dw, 4, 0x8863&^0x40)}},
		{name: "darwin-join-network", about: "one read with several messages: link up, address, default route", d: dw,
			want: changeLink | changeAddrAdded | changeRoute,
			msgs: []*rtBuilder{
				ifMsg(dw, 4, 0x8863),
				addrMsg(dw, rtmNewAddr, "RTM_NEWADDR", 4, 0, 0x24).mask("NETMASK", []byte{0, 0, 0, 255, 255, 255}).sin("IFA", laptop4),
				routeMsg(dw, rtmAdd, "RTM_ADD", 4, rtfUp|rtfGateway|rtfStatic|rtfDone, 0x7, 312, 0).
					sin("DST", netip.IPv4Unspecified()).sin("GATEWAY", gw4).mask("NETMASK", nil),
			}},
		{name: "darwin-version-4", about: "a message of another RTM_VERSION, not decoded", d: dw, want: 0,
			msgs: []*rtBuilder{func() *rtBuilder {
				m := addrMsg(dw, rtmNewAddr, "RTM_NEWADDR", 4, 0, 0x20).sin("IFA", laptop4)
				m.parts[0].b[2] = 4
				m.parts[0].note = "msglen, version 4, type 0xc (RTM_NEWADDR)"
				return m
			}()}},
		{name: "freebsd-newaddr-v4", about: "an address added on em0: sockaddrs padded to 8 bytes", d: fb, want: changeAddrAdded,
			msgs: []*rtBuilder{addrMsg(fb, rtmNewAddr, "RTM_NEWADDR", 1, 0, 0xb4).
				sin("NETMASK", netip.MustParseAddr("255.255.255.0")).sdl("IFP", 1, "em0", mac).sin("IFA", laptop4).sin("BRD", bcast4)}},
		{name: "freebsd-delete-v6", about: "an IPv6 default route deleted", d: fb, want: changeRoute,
			msgs: []*rtBuilder{routeMsg(fb, rtmDelete, "RTM_DELETE", 1, rtfUp|rtfGateway|rtfStatic|rtfDone, 0x7, 80, 0).
				sin6("DST", netip.IPv6Unspecified(), 0).sin6("GATEWAY", netip.MustParseAddr("fe80::1"), 1).sin6("NETMASK", netip.IPv6Unspecified(), 0)}},
		{name: "freebsd-add-lldata", about: "an NDP entry (RTF_LLDATA): a neighbour, no path change", d: fb, want: 0,
			msgs: []*rtBuilder{routeMsg(fb, rtmAdd, "RTM_ADD", 1, rtfUp|rtfHost|rtfLLInfo, 0x3, 0, 0).
				sin6("DST", global6, 0).sdl("GATEWAY", 1, "em0", mac)}},
		{name: "freebsd-ifannounce", about: "a USB Ethernet adapter plugged in (IFAN_ARRIVAL)", d: fb, want: changeLink,
			msgs: []*rtBuilder{announceMsg(fb, 5, "ue0", ifanArrival)}},
		{name: "freebsd-ifinfo", about: "em0's link state changes", d: fb, want: changeLink,
			msgs: []*rtBuilder{ifMsg(fb, 1, 0x8843)}},
		{name: "truncated", about: "a read cut short: msglen says more than there is", d: dw, want: 0, wantErr: true,
			msgs: []*rtBuilder{func() *rtBuilder {
				m := addrMsg(dw, rtmNewAddr, "RTM_NEWADDR", 4, 0, 0x20).sin("IFA", laptop4)
				m.parts = m.parts[:len(m.parts)-1]
				return m
			}()}},
	}
}

// fixtureText writes a fixture as testdata/rtmsg holds it.
func fixtureText(f rtFixture) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s\n# Hand-built from <net/route.h>'s layout (not captured from a kernel).\n", f.about)
	fmt.Fprintf(&sb, "dialect: %s\nwant: %v\nerror: %v\n", f.d.name, f.want, f.wantErr)
	for i, m := range f.msgs {
		b := m.bytes()
		if f.wantErr && i == len(f.msgs)-1 {
			// The length word of the whole message, then cut.
			binary.LittleEndian.PutUint16(b[0:2], uint16(len(b)+16))
		}
		fmt.Fprintf(&sb, "\n# message %d: %d bytes\n", i+1, len(b))
		off := 0
		for _, p := range m.parts {
			for j := 0; j < len(p.b); j += 16 {
				end := min(j+16, len(p.b))
				note := p.note
				if j > 0 {
					note = "  ..."
				}
				fmt.Fprintf(&sb, "%-48s # %s\n", hexSpaced(b[off+j:off+end]), note)
			}
			off += len(p.b)
		}
	}
	return sb.String()
}

func hexSpaced(b []byte) string {
	s := hex.EncodeToString(b)
	var out []string
	for i := 0; i < len(s); i += 2 {
		out = append(out, s[i:i+2])
	}
	return strings.Join(out, " ")
}

// readFixture parses a testdata/rtmsg file: its dialect, wanted change,
// whether an error is wanted, and the bytes of all its messages.
func readFixture(t *testing.T, path string) (d *rtDialect, want string, wantErr bool, b []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "dialect: "):
			switch strings.TrimPrefix(line, "dialect: ") {
			case "darwin":
				d = &darwinDialect
			case "freebsd":
				d = &freebsdDialect
			default:
				t.Fatalf("%s: unknown dialect in %q", path, line)
			}
		case strings.HasPrefix(line, "want: "):
			want = strings.TrimPrefix(line, "want: ")
		case strings.HasPrefix(line, "error: "):
			wantErr = strings.TrimPrefix(line, "error: ") == "true"
		default:
			h, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
			if err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
			b = append(b, h...)
		}
	}
	if d == nil || want == "" {
		t.Fatalf("%s: no dialect or want line", path)
	}
	return d, want, wantErr, b
}

func TestRtFixtures(t *testing.T) {
	dir := filepath.Join("testdata", "rtmsg")
	if *updateRtmsg {
		os.MkdirAll(dir, 0o755)
		for _, f := range rtFixtures() {
			if err := os.WriteFile(filepath.Join(dir, f.name+".txt"), []byte(fixtureText(f)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	if len(files) < len(rtFixtures()) {
		t.Fatalf("%d fixtures in %s, want %d (go test -run TestRtFixtures . -args -update-rtmsg)", len(files), dir, len(rtFixtures()))
	}
	for _, path := range files {
		d, want, wantErr, b := readFixture(t, path)
		got, err := rtChanges(d, b)
		if got.String() != want {
			t.Errorf("%s: rtChanges = %v, want %s", path, got, want)
		}
		if (err != nil) != wantErr {
			t.Errorf("%s: error %v, want one: %v", path, err, wantErr)
		}
	}
	// The files are what the builders make.
	for _, f := range rtFixtures() {
		path := filepath.Join(dir, f.name+".txt")
		if b, err := os.ReadFile(path); err != nil || string(b) != fixtureText(f) {
			t.Errorf("%s differs from rtFixtures (go test -run TestRtFixtures . -args -update-rtmsg): %v", path, err)
		}
	}
}

// TestRtDecode checks the fields decoded, beyond the change they reduce to.
func TestRtDecode(t *testing.T) {
	b := addrMsg(dw, rtmNewAddr, "RTM_NEWADDR", 4, 0, 0xb4).
		mask("NETMASK", []byte{0, 0, 0, 255, 255, 255}).sdl("IFP", 4, "en0", mac).sin("IFA", laptop4).sin("BRD", bcast4).bytes()
	msgs, err := parseRtMsgs(dw, b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parseRtMsgs = %d messages, %v", len(msgs), err)
	}
	m := msgs[0]
	if m.addrsErr != nil {
		t.Fatal(m.addrsErr)
	}
	if m.family[rtaxIfp] != 0x12 || m.family[rtaxIfa] != afInet || m.addr[rtaxIfa] != laptop4 || m.addr[rtaxBrd] != bcast4 {
		t.Errorf("decoded families %v, addresses %v", m.family, m.addr)
	}
	if m.family[rtaxDst] != 0 || m.addr[rtaxNetmask].IsValid() {
		t.Errorf("absent or short sockaddrs decoded: %v %v", m.family, m.addr)
	}

	// freebsd pads sockaddr_dl (20 bytes) to 24 and reads the IPv6
	// address after it.
	b = routeMsg(fb, rtmDelete, "RTM_DELETE", 1, rtfUp|rtfGateway, 0x13, 80, 0).
		sin6("DST", global6, 0).sin6("GATEWAY", linkLocal6, 1).sdl("IFP", 1, "em0", mac).bytes()
	msgs, err = parseRtMsgs(fb, b)
	if err != nil || len(msgs) != 1 || msgs[0].addrsErr != nil {
		t.Fatalf("parseRtMsgs = %v, %v", msgs, err)
	}
	if m := msgs[0]; m.addr[rtaxDst] != global6 || m.addr[rtaxGateway] != linkLocal6 || m.family[rtaxIfp] != 0x12 {
		t.Errorf("decoded %v %v", m.family, m.addr)
	}
	// The same bytes read as darwin's are of another family and header
	// size: no IPv6 address comes out of them.
	if msgs, _ := parseRtMsgs(dw, b); len(msgs) == 1 && msgs[0].addr[rtaxDst] == global6 {
		t.Errorf("freebsd message decoded as darwin's: %v", msgs[0].addr)
	}

	// A sockaddr that runs past its message is an error of the message's
	// addresses; the message still counts.
	b = addrMsg(dw, rtmDelAddr, "RTM_DELADDR", 4, 0, 0x20).sin("IFA", laptop4).bytes()
	b[dw.sizeIfa] = 200
	msgs, err = parseRtMsgs(dw, b)
	if err != nil || len(msgs) != 1 || !errors.Is(msgs[0].addrsErr, errRtSockLen) {
		t.Fatalf("sockaddr past the end: %v, %v", msgs, err)
	}
	if c := dw.reduce(&msgs[0]); c != changeAddrRemoved {
		t.Errorf("undecodable address message reduces to %v, want %v", c, changeAddrRemoved)
	}
	// Addresses the bitmask names but the message lacks.
	b = addrMsg(dw, rtmNewAddr, "RTM_NEWADDR", 4, 0, 0x24).bytes()
	if msgs, _ := parseRtMsgs(dw, b); len(msgs) != 1 || !errors.Is(msgs[0].addrsErr, errRtSockLen) {
		t.Errorf("missing sockaddrs: %v", msgs)
	}

	// A route message too short for its header.
	b = routeMsg(dw, rtmAdd, "RTM_ADD", 4, rtfUp, 0, 0, 0).bytes()[:40]
	binary.LittleEndian.PutUint16(b[0:2], 40)
	if c, err := rtChanges(dw, b); c != 0 || !errors.Is(err, errRtShort) {
		t.Errorf("short route message: %v, %v", c, err)
	}
	for _, b := range [][]byte{{1, 0, 5}, {3, 0, 5, 0xc}, {0, 0, 5, 0xc, 0, 0}} {
		if c, err := rtChanges(dw, b); c != 0 || err == nil {
			t.Errorf("rtChanges(%x) = %v, %v; want an error", b, c, err)
		}
	}
	if c, err := rtChanges(dw, nil); c != 0 || err != nil {
		t.Errorf("rtChanges(nil) = %v, %v", c, err)
	}
}

func TestRoundup(t *testing.T) {
	for _, tt := range []struct {
		d       *rtDialect
		l, want int
	}{
		{dw, 0, 4}, {dw, 1, 4}, {dw, 4, 4}, {dw, 5, 8}, {dw, 16, 16}, {dw, 20, 20}, {dw, 28, 28},
		{fb, 0, 8}, {fb, 1, 8}, {fb, 8, 8}, {fb, 16, 16}, {fb, 20, 24}, {fb, 28, 32},
	} {
		if got := tt.d.roundup(tt.l); got != tt.want {
			t.Errorf("%s roundup(%d) = %d, want %d", tt.d.name, tt.l, got, tt.want)
		}
	}
}

func TestChangeString(t *testing.T) {
	for c, want := range map[change]string{
		0: "none", changeRoute: "route", changeAddrAdded | changeLink: "addr-added|link",
		changeAddrRemoved | 0x40: "addr-removed|0x40",
	} {
		if c.String() != want {
			t.Errorf("%#x: %q, want %q", uint8(c), c.String(), want)
		}
	}
}

// TestRtRandom mutates the fixtures' messages: no panic, and every
// decoded message lies within what was read.
func TestRtRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fx := rtFixtures()
	for range 20000 {
		f := fx[r.IntN(len(fx))]
		var b []byte
		for _, m := range f.msgs {
			b = append(b, m.bytes()...)
		}
		b = b[:r.IntN(len(b)+1)]
		for range r.IntN(4) {
			if len(b) > 0 {
				b[r.IntN(len(b))] = byte(r.Uint32())
			}
		}
		checkRt(t, f.d, b)
	}
}

// checkRt decodes b and checks what any input must satisfy.
func checkRt(t *testing.T, d *rtDialect, b []byte) {
	c, err := rtChanges(d, b)
	if c&^(changeAddrAdded|changeAddrRemoved|changeLink|changeRoute) != 0 {
		t.Fatalf("unknown change bits %v", c)
	}
	msgs, err2 := parseRtMsgs(d, b)
	if (err == nil) != (err2 == nil) {
		t.Fatalf("rtChanges and parseRtMsgs disagree: %v, %v", err, err2)
	}
	n := 0
	for i := range msgs {
		n += int(binary.LittleEndian.Uint16(b[n : n+2]))
		if msgs[i].version != d.version && d.reduce(&msgs[i]) != 0 {
			t.Fatalf("a message of version %d counts", msgs[i].version)
		}
	}
	if n > len(b) || (err == nil && n != len(b)) {
		t.Fatalf("messages cover %d of %d bytes (error %v)", n, len(b), err)
	}
}

func FuzzRtChanges(f *testing.F) {
	for _, fx := range rtFixtures() {
		var b []byte
		for _, m := range fx.msgs {
			b = append(b, m.bytes()...)
		}
		dialect := byte(0)
		if fx.d == fb {
			dialect = 1
		}
		f.Add(dialect, b)
	}
	f.Fuzz(func(t *testing.T, dialect byte, b []byte) {
		d := dw
		if dialect&1 == 1 {
			d = fb
		}
		checkRt(t, d, b)
	})
}

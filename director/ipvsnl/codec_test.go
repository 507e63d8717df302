package ipvsnl

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/mdlayher/netlink"
)

// The expected bytes are built here by hand, from the layout in
// include/uapi/linux/netlink.h (struct nlattr: u16 nla_len counting the
// 4-byte header, u16 nla_type, payload padded to 4 bytes; NLA_F_NESTED =
// 0x8000) and the attribute types and encodings of ip_vs.h / ip_vs_ctl.c,
// not with the netlink package under test.

func nla(typ uint16, payload ...byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nest(typ uint16, attrs ...[]byte) []byte { return nla(0x8000|typ, bytes.Join(attrs, nil)...) }

func ne16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func ne64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Method-less copies, so that %+v prints fields rather than String().
type (
	plainService Service
	plainDest    Dest
	plainDaemon  Daemon
)

// addr16 is a union nf_inet_addr.
func addr16(a string) []byte {
	b := make([]byte, 16)
	ip := netip.MustParseAddr(a)
	if ip.Is4() {
		v := ip.As4()
		copy(b, v[:])
	} else {
		v := ip.As16()
		copy(b, v[:])
	}
	return b
}

func encode(t *testing.T, fn func(*netlink.AttributeEncoder) error) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	if err := fn(ae); err != nil {
		t.Fatal(err)
	}
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got % x\nwant % x", what, got, want)
	}
}

func TestEncodeDestGUETunnel(t *testing.T) {
	d := Dest{Addr: netip.MustParseAddr("192.0.2.21"), Port: 80, FwdMethod: FwdTunnel, Weight: 3,
		Upper: 100, Lower: 10, TunType: TunGUE, TunPort: 6080, TunFlags: TunFlagRemCsum}
	got := encode(t, func(ae *netlink.AttributeEncoder) error { return destAttrs(ae, d, true) })
	want := nest(2, // IPVS_CMD_ATTR_DEST
		nla(11, ne16(syscall.AF_INET)...), // ADDR_FAMILY, taken from the address
		nla(1, addr16("192.0.2.21")...),   // ADDR: IPv4 in the first 4 of 16 bytes
		nla(2, 0x00, 0x50),                // PORT 80, big-endian
		nla(3, ne32(2)...),                // FWD_METHOD tunnel
		nla(4, ne32(3)...),                // WEIGHT
		nla(5, ne32(100)...),              // U_THRESH
		nla(6, ne32(10)...),               // L_THRESH
		nla(13, 1),                        // TUN_TYPE GUE, u8
		nla(14, 0x17, 0xc0),               // TUN_PORT 6080 = 0x17c0, big-endian
		nla(15, ne16(2)...),               // TUN_FLAGS remcsum, u16 host order
	)
	wantBytes(t, "GUE destination", got, want)
	// The tunnel port attribute on its own: 6 bytes long, type 14, 17 c0, 2 pad bytes.
	port := join(ne16(6), ne16(14), []byte{0x17, 0xc0, 0, 0})
	if !bytes.Contains(got, port) {
		t.Errorf("no TUN_PORT attribute % x in % x", port, got)
	}
}

func TestEncodeDestMixedFamilyAndDelete(t *testing.T) {
	d := Dest{Addr: netip.MustParseAddr("2001:db8::21"), Port: 80, FwdMethod: FwdTunnel, TunType: TunGRE}
	got := encode(t, func(ae *netlink.AttributeEncoder) error { return destAttrs(ae, d, false) })
	want := nest(2, nla(11, ne16(syscall.AF_INET6)...), nla(1, addr16("2001:db8::21")...), nla(2, 0, 80))
	wantBytes(t, "IPv6 destination to delete", got, want)

	bad := Dest{Family: AFInet, Addr: netip.MustParseAddr("2001:db8::21")}
	if err := destAttrs(netlink.NewAttributeEncoder(), bad, true); err == nil {
		t.Error("an IPv6 address with Family AF_INET was encoded")
	}
}

func TestEncodeServiceNetmask(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Service
		mask []byte
	}{
		// IPv4: the mask's bytes in network order, as the kernel's nla_get_be32 reads them.
		{"IPv4 /24", Service{Addr: netip.MustParseAddr("192.0.2.10"), Netmask: 0xFFFFFF00}, []byte{0xff, 0xff, 0xff, 0x00}},
		{"IPv4 default", Service{Addr: netip.MustParseAddr("192.0.2.10")}, []byte{0xff, 0xff, 0xff, 0xff}},
		// IPv6: a prefix length the kernel compares as a plain u32 (1..128).
		{"IPv6 /64", Service{Addr: netip.MustParseAddr("2001:db8::10"), Netmask: 64}, ne32(64)},
		{"IPv6 default", Service{Addr: netip.MustParseAddr("2001:db8::10")}, ne32(128)},
	} {
		c.s.Protocol, c.s.Port, c.s.Sched = syscall.IPPROTO_TCP, 443, "wlc"
		c.s.Flags, c.s.Timeout = FlagPersistent|FlagHashed, 300
		got := encode(t, func(ae *netlink.AttributeEncoder) error { return serviceAttrs(ae, c.s, true) })
		fam := uint16(syscall.AF_INET)
		if c.s.Addr.Is6() {
			fam = syscall.AF_INET6
		}
		want := nest(1, // IPVS_CMD_ATTR_SERVICE
			nla(1, ne16(fam)...), // AF
			nla(2, ne16(6)...),   // PROTOCOL tcp
			nla(3, addr16(c.s.Addr.String())...),
			nla(4, 0x01, 0xbb),                         // PORT 443, big-endian
			nla(6, 'w', 'l', 'c', 0),                   // SCHED_NAME, NUL-terminated
			nla(7, join(ne32(1), ne32(0xFFFFFFFF))...), // FLAGS {persistent, mask all}: HASHED dropped
			nla(8, ne32(300)...),                       // TIMEOUT
			nla(9, c.mask...),                          // NETMASK
		)
		wantBytes(t, c.name, got, want)
	}
	bad := Service{Addr: netip.MustParseAddr("2001:db8::10"), Netmask: 129}
	if err := serviceAttrs(netlink.NewAttributeEncoder(), bad, true); err == nil {
		t.Error("IPv6 netmask /129 was encoded")
	}
}

func TestEncodeFWMarkServiceIdentity(t *testing.T) {
	s := Service{Family: AFInet6, FWMark: 7, Sched: "lc"}
	got := encode(t, func(ae *netlink.AttributeEncoder) error { return serviceAttrs(ae, s, false) })
	wantBytes(t, "fwmark service", got, nest(1, nla(1, ne16(syscall.AF_INET6)...), nla(5, ne32(7)...)))
	err := serviceAttrs(netlink.NewAttributeEncoder(), Service{FWMark: 7}, false)
	if err == nil || !strings.Contains(err.Error(), "fwmark") {
		t.Errorf("fwmark service without a family: %v", err)
	}
	if got := s.String(); got != "fwmark 7 inet6" {
		t.Errorf("String() = %q", got)
	}
}

// stats32 and stats64 are laid out as ip_vs_genl_fill_stats{,64} write them,
// with a PAD attribute (11) before a u64 as nla_put_u64_64bit inserts on
// architectures that need 8-byte alignment.
func stats32(conns uint32, inBytes uint64) []byte {
	return join(nla(1, ne32(conns)...), nla(2, ne32(5)...), nla(3, ne32(0)...),
		nla(11), nla(4, ne64(inBytes)...), nla(5, ne64(0)...),
		nla(6, ne32(1)...), nla(7, ne32(2)...), nla(8, ne32(0)...), nla(9, ne32(3)...), nla(10, ne32(0)...))
}

func stats64(conns, inBytes uint64) []byte {
	var b []byte
	for i, v := range []uint64{conns, 5, 0, inBytes, 0, 1, 2, 0, 3, 0} {
		b = append(b, nla(11)...)
		b = append(b, nla(uint16(i+1), ne64(v)...)...)
	}
	return b
}

func TestDecodeServiceWithStats64(t *testing.T) {
	const bigConns = 1<<32 + 7 // does not fit the 32-bit counter
	msg := nest(1,
		nla(1, ne16(syscall.AF_INET)...),
		nla(2, ne16(17)...),
		nla(3, addr16("192.0.2.10")...),
		nla(4, 0x00, 0x35),
		nla(6, 'm', 'h', 0),
		nla(7, join(ne32(FlagHashed|FlagSched1|FlagSched2), ne32(0xFFFFFFFF))...),
		nla(8, ne32(0)...),
		nla(9, 0xff, 0xff, 0xff, 0x00),
		nest(10, stats32(7, 1000)), // IPVS_SVC_ATTR_STATS: truncated conns
		nest(12, stats64(bigConns, 1<<40)),
	)
	s, err := decodeService(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := Service{Family: AFInet, Protocol: 17, Addr: netip.MustParseAddr("192.0.2.10"), Port: 53, Sched: "mh",
		Flags: FlagHashed | FlagSched1 | FlagSched2, Netmask: 0xFFFFFF00,
		Stats: Stats{Conns: bigConns, InPkts: 5, InBytes: 1 << 40, CPS: 1, InPPS: 2, InBPS: 3}}
	if s != want {
		t.Errorf("decoded\n %+v\nwant\n %+v", plainService(s), plainService(want))
	}
	if got := s.String(); got != "udp 192.0.2.10:53" {
		t.Errorf("String() = %q", got)
	}

	// A kernel before STATS64 (Linux < 4.1): the 32-bit counters are used.
	old := nest(1, nla(1, ne16(syscall.AF_INET6)...), nla(5, ne32(9)...), nla(9, ne32(64)...), nest(10, stats32(7, 1000)))
	s, err = decodeService(old)
	if err != nil {
		t.Fatal(err)
	}
	if s.FWMark != 9 || s.Family != AFInet6 || s.Netmask != 64 || s.Stats.Conns != 7 || s.Stats.InBytes != 1000 || s.Addr.IsValid() {
		t.Errorf("old-kernel fwmark service decoded as %+v", plainService(s))
	}
}

func TestDecodeMixedFamilyGREDest(t *testing.T) {
	// As ip_vs_genl_fill_dest writes it: ADDR_FAMILY comes last, after ADDR.
	msg := nest(2,
		nla(1, addr16("2001:db8::21")...),
		nla(2, 0x00, 0x50),
		nla(3, ne32(0x2|0x100)...), // tunnel, with a non-method bit the mask drops
		nla(4, ne32(1)...),
		nla(13, 2),
		nla(14, 0, 0),
		nla(15, ne16(TunFlagCsum)...),
		nla(5, ne32(0)...), nla(6, ne32(0)...),
		nla(7, ne32(4)...), nla(8, ne32(5)...), nla(9, ne32(6)...),
		nla(11, ne16(syscall.AF_INET6)...),
		nest(10, stats32(3, 10)),
		nest(12, stats64(3, 10)), // IPVS_DEST_ATTR_STATS64
	)
	d, err := decodeDest(msg, AFInet) // the service is IPv4
	if err != nil {
		t.Fatal(err)
	}
	want := Dest{Family: AFInet6, Addr: netip.MustParseAddr("2001:db8::21"), Port: 80, FwdMethod: FwdTunnel, Weight: 1,
		TunType: TunGRE, TunFlags: TunFlagCsum, ActiveConns: 4, InactConns: 5, PersistConns: 6,
		Stats: Stats{Conns: 3, InPkts: 5, InBytes: 10, CPS: 1, InPPS: 2, InBPS: 3}}
	if d != want {
		t.Errorf("decoded\n %+v\nwant\n %+v", plainDest(d), plainDest(want))
	}
	if _, err := decodeDest(nest(2, nla(2, 0, 80)), AFInet); err == nil {
		t.Error("a destination without an address decoded")
	}
	if _, err := decodeDest(nest(2, nla(1, addr16("192.0.2.1")...), nla(2, 0, 80, 0)), AFInet); err == nil {
		t.Error("a 3-byte port decoded")
	}
}

func TestServiceRoundTrip(t *testing.T) {
	s := Service{Family: AFInet, Protocol: syscall.IPPROTO_SCTP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 9,
		Sched: "sh", PEName: "sip", Flags: FlagPersistent | FlagSched2, Timeout: 60, Netmask: 0xFFFF0000}
	got, err := decodeService(encode(t, func(ae *netlink.AttributeEncoder) error { return serviceAttrs(ae, s, true) }))
	if err != nil {
		t.Fatal(err)
	}
	if got != s {
		t.Errorf("round trip\n %+v\nwant\n %+v", plainService(got), plainService(s))
	}
}

func TestDaemonEncodeDecode(t *testing.T) {
	d := Daemon{State: DaemonMaster, Iface: "eth0", SyncID: 42, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
	got := encode(t, func(ae *netlink.AttributeEncoder) error { return daemonAttrs(ae, d) })
	want := nest(3, // IPVS_CMD_ATTR_DAEMON
		nla(1, ne32(1)...),            // STATE master
		nla(2, 'e', 't', 'h', '0', 0), // MCAST_IFN
		nla(3, ne32(42)...),           // SYNC_ID
		nla(5, 224, 0, 0, 81),         // MCAST_GROUP, in_addr: network order
		nla(7, ne16(8848)...),         // MCAST_PORT: host order (nla_get_u16)
		nla(8, 1),                     // MCAST_TTL
	)
	wantBytes(t, "master daemon", got, want)

	backup := encode(t, func(ae *netlink.AttributeEncoder) error {
		return daemonAttrs(ae, Daemon{State: DaemonBackup, Iface: "lo", Group: netip.MustParseAddr("ff02::81")})
	})
	want = nest(3, nla(1, ne32(2)...), nla(2, 'l', 'o', 0), nla(3, ne32(0)...), nla(6, addr16("ff02::81")...))
	wantBytes(t, "backup daemon, IPv6 group", backup, want)

	// As ip_vs_genl_fill_daemon writes it.
	reply := nest(3, nla(1, ne32(2)...), nla(2, 'd', 'u', 'm', 'm', 'y', '0', 0), nla(3, ne32(42)...),
		nla(4, ne16(1472)...), nla(7, ne16(8848)...), nla(8, 1), nla(5, 224, 0, 0, 81))
	back, err := decodeDaemon(reply)
	if err != nil {
		t.Fatal(err)
	}
	wantD := Daemon{State: DaemonBackup, Iface: "dummy0", SyncID: 42, MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
	if back != wantD {
		t.Errorf("decoded %+v, want %+v", plainDaemon(back), plainDaemon(wantD))
	}
	for _, bad := range []Daemon{{Iface: ""}, {Iface: "a-name-too-long0"}, {Iface: "eth0", Group: netip.MustParseAddr("192.0.2.1")}} {
		if err := daemonAttrs(netlink.NewAttributeEncoder(), bad); err == nil {
			t.Errorf("%+v was encoded", plainDaemon(bad))
		}
	}
}

func TestTimeouts(t *testing.T) {
	got := encode(t, func(ae *netlink.AttributeEncoder) error { timeoutAttrs(ae, 900, 0, 300); return nil })
	wantBytes(t, "timeouts, fin unchanged", got, join(nla(4, ne32(900)...), nla(6, ne32(300)...)))
	tcp, fin, udp, err := decodeTimeouts(join(nla(4, ne32(900)...), nla(5, ne32(120)...), nla(6, ne32(300)...)))
	if err != nil || tcp != 900 || fin != 120 || udp != 300 {
		t.Errorf("decoded %d %d %d %v", tcp, fin, udp, err)
	}
}

// BenchmarkDecodeDest: drift repair decodes every destination of the
// table each round; the decoder must not allocate.
func BenchmarkDecodeDest(b *testing.B) {
	msg := nest(2,
		nla(1, addr16("192.0.2.21")...), nla(2, 0x00, 0x50), nla(3, ne32(3)...), nla(4, ne32(1)...),
		nla(5, ne32(0)...), nla(6, ne32(0)...), nla(7, ne32(4)...), nla(8, ne32(5)...), nla(9, ne32(6)...),
		nla(11, ne16(syscall.AF_INET)...), nest(10, stats32(3, 10)), nest(12, stats64(3, 10)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeDest(msg, AFInet); err != nil {
			b.Fatal(err)
		}
	}
}

package table

// The kernel's connection table, as /proc shows it and as `ipvsadm -L -c -n`
// prints it.
//
// Kernel (net/netfilter/ipvs/ip_vs_conn.c; read from one tree before 6.1 and
// one after it, whose format strings are identical, so 6.1's are these):
//
//	ip_vs_conn_seq_show, /proc/net/ip_vs_conn:
//	  "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
//	  IPv4: "%-3s %08X %04X %08X %04X" " %s %04X %-11s %7u%s\n"
//	  IPv6: "%-3s %pI6 %04X %pI6 %04X " "%s %04X %-11s %7u%s\n"
//	ip_vs_conn_sync_seq_show, /proc/net/ip_vs_conn_sync:
//	  "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n"
//	  IPv4: "%-3s %08X %04X %08X %04X " "%s %04X %-11s %-6s %7u\n"
//	  IPv6: "%-3s %pI6 %04X %pI6 %04X " "%s %04X %-11s %-6s %7u\n"
//
// Addresses and ports are ntohl/ntohs'd, so the hex reads in network order.
// %pI6 is the uncompressed form (2001:0db8:0000:...). The destination's %s
// is "%08X" or "%pI6" by its own family (cp->daf), which may differ from
// the client's and the virtual address's (cp->af). Expires is
// jiffies_delta_to_msecs(cp->timer.expires - jiffies) / 1000: whole
// seconds, never negative. The origin is ip_vs_origin_name(): "SYNC" or
// "LOCAL". %s after Expires is "" or " <pe name> <pe data>" (the sip engine's
// Call-ID). Protocol names come from ip_vs_proto_name ("TCP", "UDP", "SCTP",
// "IP" for fwmark templates, "IP_%u" otherwise); states from the protocol's
// table, or "NONE"/"ASSURED" for persistence templates (ip_vs_state_name).
//
// ipvsadm 1.31 (ipvsadm.c; the strings checked against Debian 12's binary):
//
//	list_conn: skips the first line of /proc/net/ip_vs_conn, then prints
//	  "IPVS connection entries\n"
//	  "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination"
//	print_conn: sscanf(buf, "%s %s %hX %s %hX %s %hX %s %d %s %s", ...),
//	  sprintf(expire_str, "%02d:%02d", expires/60, expires%60),
//	  "%-3s %-6s %-11s %-18s %-18s %s\n", protocol, expire_str, state, c, v, d
//	addrport_to_anyname with -n: "%s%s%s:%u", "[" and "]" around IPv6 only,
//	  the address from glibc's inet_ntop.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Conn is one entry of the kernel's connection table.
type Conn struct {
	Protocol              string // "TCP", "UDP", "SCTP", "IP", as the kernel names it
	Client, Virtual, Dest netip.AddrPort
	State                 string // "ESTABLISHED", "FIN_WAIT", "UDP", "NONE", "ASSURED", ...
	Expires               time.Duration
	// Synced: learnt from the sync daemon. Only ip_vs_conn_sync has the
	// origin column; read from ip_vs_conn it is always false.
	Synced bool
	// PEName and PEData are the persistence engine's ("sip" and the
	// Call-ID). Only ip_vs_conn prints them.
	PEName, PEData string
}

// Template reports whether c looks like a persistence template. The kernel
// prints no flag for templates, but creates every one of them with client
// port 0 (ip_vs_sched_persist). So are connections still waiting for their
// client port (IP_VS_CONN_F_NO_CPORT, e.g. ip_vs_ftp's passive data
// connections), so this is a hint, good for counting, not a fact.
func (c Conn) Template() bool { return c.Client.Port() == 0 }

// The headers, with runs of spaces folded, that tell the two files apart.
const (
	connHeader     = "Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires PEName PEData"
	connSyncHeader = "Pro FromIP FPrt ToIP TPrt DestIP DPrt State Origin Expires"
)

// ParseConns reads either /proc/net/ip_vs_conn or /proc/net/ip_vs_conn_sync,
// told apart by the header line.
func ParseConns(r io.Reader) ([]Conn, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read IPVS connection table: %w", err)
		}
		return nil, errors.New("IPVS connection table: empty, want the header line of ip_vs_conn or ip_vs_conn_sync")
	}
	var synced bool
	switch h := strings.Join(strings.Fields(sc.Text()), " "); h {
	case connHeader:
	case connSyncHeader:
		synced = true
	default:
		return nil, fmt.Errorf("line 1 %q: not the header of ip_vs_conn or ip_vs_conn_sync", sc.Text())
	}
	var conns []Conn
	for n := 2; sc.Scan(); n++ {
		c, err := parseConn(sc.Text(), synced)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n, sc.Text(), err)
		}
		conns = append(conns, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read IPVS connection table: %w", err)
	}
	return conns, nil
}

func parseConn(line string, synced bool) (Conn, error) {
	f := strings.Fields(line)
	// ip_vs_conn: 9 fields, more when a persistence engine adds its two;
	// ip_vs_conn_sync: always 10.
	if synced && len(f) != 10 || !synced && len(f) < 9 {
		want := "9 (or 11 with persistence engine data)"
		if synced {
			want = "10"
		}
		return Conn{}, fmt.Errorf("%d fields, want %s", len(f), want)
	}
	c := Conn{Protocol: f[0], State: f[7]}
	var err error
	if c.Client, err = parseConnAddrPort("client", f[1], f[2]); err != nil {
		return Conn{}, err
	}
	if c.Virtual, err = parseConnAddrPort("virtual", f[3], f[4]); err != nil {
		return Conn{}, err
	}
	if c.Virtual.Addr().Is4() != c.Client.Addr().Is4() {
		return Conn{}, fmt.Errorf("virtual address %q: not of the client's family", f[3])
	}
	if c.Dest, err = parseConnAddrPort("destination", f[5], f[6]); err != nil {
		return Conn{}, err
	}
	exp := f[8]
	if synced {
		switch f[8] {
		case "SYNC":
			c.Synced = true
		case "LOCAL":
		default:
			return Conn{}, fmt.Errorf("origin %q: want LOCAL or SYNC", f[8])
		}
		exp = f[9]
	} else if len(f) > 9 {
		c.PEName, c.PEData = f[9], strings.Join(f[10:], " ")
	}
	// %7u of an unsigned int.
	secs, err := strconv.ParseUint(exp, 10, 32)
	if err != nil {
		return Conn{}, fmt.Errorf("expires %q: want seconds", exp)
	}
	c.Expires = time.Duration(secs) * time.Second
	return c, nil
}

func parseConnAddrPort(field, addr, port string) (netip.AddrPort, error) {
	var a netip.Addr
	if strings.Contains(addr, ":") {
		var err error
		a, err = netip.ParseAddr(addr)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("%s address %q: not an IPv6 address", field, addr)
		}
	} else {
		v, err := strconv.ParseUint(addr, 16, 32)
		if len(addr) != 8 || err != nil {
			return netip.AddrPort{}, fmt.Errorf("%s address %q: want 8 hex digits or an IPv6 address", field, addr)
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(v))
		a = netip.AddrFrom4(b)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if len(port) != 4 || err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s port %q: want 4 hex digits", field, port)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// FormatConns prints conns as `ipvsadm -L -c -n` does, byte for byte, with
// one deliberate difference: a destination of another family than its
// client is printed as what it is, where ipvsadm parses it as the client's
// family and prints garbage.
func FormatConns(w io.Writer, conns []Conn) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("IPVS connection entries\n")
	fmt.Fprintf(bw, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	for _, c := range conns {
		// The kernel never prints a negative expiry; ipvsadm's mm:ss has
		// no room for one.
		secs := max(int64(c.Expires/time.Second), 0)
		fmt.Fprintf(bw, "%-3s %-6s %-11s %-18s %-18s %s\n",
			c.Protocol, fmt.Sprintf("%02d:%02d", secs/60, secs%60), c.State,
			ipvsadmAddrPort(c.Client), ipvsadmAddrPort(c.Virtual), ipvsadmAddrPort(c.Dest))
	}
	return bw.Flush()
}

// ipvsadmAddrPort is addrport_to_anyname's numeric form. Go's netip prints
// what glibc's inet_ntop prints but for one case: glibc keeps the
// deprecated IPv4-compatible form ::a.b.c.d (the first 96 bits zero, the
// next 16 not), where Go prints ::xxxx:xxxx.
func ipvsadmAddrPort(ap netip.AddrPort) string {
	a := ap.Addr()
	if a.Is4() {
		return fmt.Sprintf("%s:%d", a, ap.Port())
	}
	s := a.String()
	if b := a.As16(); a.Is6() && [12]byte(b[:12]) == [12]byte{} && (b[12] != 0 || b[13] != 0) {
		s = "::" + netip.AddrFrom4([4]byte(b[12:])).String()
	}
	return fmt.Sprintf("[%s]:%d", s, ap.Port())
}

// ReadConnsFrom reads the first of paths that exists (the kernel has
// two files of the table; see director.ReadConns).
func ReadConnsFrom(paths ...string) ([]Conn, error) {
	err := errors.New("no path given")
	for _, p := range paths {
		var f *os.File
		if f, err = os.Open(p); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("read IPVS connections: %w", err)
		}
		defer f.Close()
		conns, err := ParseConns(f)
		if err != nil {
			return nil, fmt.Errorf("read IPVS connections from %s: %w", p, err)
		}
		return conns, nil
	}
	// Neither file: the ip_vs module is not loaded.
	return nil, fmt.Errorf("read IPVS connections: %w", err)
}

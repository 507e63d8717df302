package table

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// connFile is /proc/net/ip_vs_conn as ip_vs_conn_seq_show writes it:
// IPv4 lines by "%-3s %08X %04X %08X %04X" " %s %04X %-11s %7u%s\n",
// IPv6 lines by "%-3s %pI6 %04X %pI6 %04X " "%s %04X %-11s %7u%s\n".
// Line 4 is a persistence template (client port 0, state ASSURED), line 5
// a fwmark-1 template (protocol IP, virtual address the mark), line 7 has
// sip persistence engine data, the last an IPv6 service with an IPv4 real
// server (cp->daf differs from cp->af, so the destination is "%08X").
const connFile = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED     899
UDP C0A8000A CF08 0A000064 0035 0A01000C 0035 UDP             299
TCP C0A8000A 0000 0A000064 0050 0A01000B 1F90 ASSURED         359
IP  C0A8000A 0000 00000001 0000 0A01000C 0000 NONE          10800
SCTP C0A80014 9C40 0A000064 270F 0A01000D 270F ESTABLISHED    3599
UDP C0A8001E 13C4 0A000064 13C4 0A01000B 13C4 UDP             120 sip a84b4c76e66710@pc33
TCP C0A8000A C824 0A000064 0050 0A01000B 1F90 FIN_WAIT         65
TCP C0A8000A C825 0A000064 0050 0A01000B 1F90 TIME_WAIT         0
TCP 2001:0db8:0000:0000:0000:0000:0000:0010 C822 2001:0db8:0000:0000:0000:0000:0000:0100 01BB 2001:0db8:0001:0000:0000:0000:0000:0011 01BB ESTABLISHED     900
TCP 2001:0db8:0000:0000:0000:0000:0000:0010 0000 2001:0db8:0000:0000:0000:0000:0000:0100 01BB 2001:0db8:0001:0000:0000:0000:0000:0011 01BB NONE            180
UDP 0000:0000:0000:0000:0000:0000:c000:0201 04D2 0000:0000:0000:0000:0000:ffff:c000:0264 0035 0000:0000:0000:0000:0000:0000:0000:0001 0035 UDP               5
TCP 2001:0db8:0000:0000:0000:0000:0000:0010 C823 2001:0db8:0000:0000:0000:0000:0000:0100 0050 0A01000B 0050 SYN_RECV         42
`

// connSyncFile is /proc/net/ip_vs_conn_sync as ip_vs_conn_sync_seq_show
// writes it: "%-3s %08X %04X %08X %04X " "%s %04X %-11s %-6s %7u\n" and its
// %pI6 twin.
const connSyncFile = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED LOCAL      899
TCP C0A8000B 9C41 0A000064 0050 0A01000C 1F90 ESTABLISHED SYNC       179
TCP C0A8000B 0000 0A000064 0050 0A01000C 1F90 ASSURED     SYNC       359
UDP 2001:0db8:0000:0000:0000:0000:0000:0020 14E9 2001:0db8:0000:0000:0000:0000:0000:0100 0035 2001:0db8:0001:0000:0000:0000:0000:0012 0035 UDP         SYNC       299
`

// The ipvsadm expectations follow list_conn's
// "pro expire %-11s %-18s %-18s %s\n" and print_conn's
// "%-3s %-6s %-11s %-18s %-18s %s\n" with "%02d:%02d" and "%s%s%s:%u";
// they were checked against those format strings run by C with glibc's
// inet_ntop. An address wider than its column pushes the next one right.
const ipvsadmHeader = "IPVS connection entries\n" +
	"pro expire state       source             virtual            destination\n"

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParseConns(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Conn
		out  string // FormatConns of want
	}{{
		name: "ip_vs_conn",
		in:   connFile,
		want: []Conn{
			{"TCP", ap("192.168.0.10:51234"), ap("10.0.0.100:80"), ap("10.1.0.11:8080"), "ESTABLISHED", 899 * time.Second, false, "", ""},
			{"UDP", ap("192.168.0.10:53000"), ap("10.0.0.100:53"), ap("10.1.0.12:53"), "UDP", 299 * time.Second, false, "", ""},
			{"TCP", ap("192.168.0.10:0"), ap("10.0.0.100:80"), ap("10.1.0.11:8080"), "ASSURED", 359 * time.Second, false, "", ""},
			{"IP", ap("192.168.0.10:0"), ap("0.0.0.1:0"), ap("10.1.0.12:0"), "NONE", 3 * time.Hour, false, "", ""},
			{"SCTP", ap("192.168.0.20:40000"), ap("10.0.0.100:9999"), ap("10.1.0.13:9999"), "ESTABLISHED", 3599 * time.Second, false, "", ""},
			{"UDP", ap("192.168.0.30:5060"), ap("10.0.0.100:5060"), ap("10.1.0.11:5060"), "UDP", 2 * time.Minute, false, "sip", "a84b4c76e66710@pc33"},
			{"TCP", ap("192.168.0.10:51236"), ap("10.0.0.100:80"), ap("10.1.0.11:8080"), "FIN_WAIT", 65 * time.Second, false, "", ""},
			{"TCP", ap("192.168.0.10:51237"), ap("10.0.0.100:80"), ap("10.1.0.11:8080"), "TIME_WAIT", 0, false, "", ""},
			{"TCP", ap("[2001:db8::10]:51234"), ap("[2001:db8::100]:443"), ap("[2001:db8:1::11]:443"), "ESTABLISHED", 15 * time.Minute, false, "", ""},
			{"TCP", ap("[2001:db8::10]:0"), ap("[2001:db8::100]:443"), ap("[2001:db8:1::11]:443"), "NONE", 3 * time.Minute, false, "", ""},
			{"UDP", ap("[::c000:201]:1234"), ap("[::ffff:192.0.2.100]:53"), ap("[::1]:53"), "UDP", 5 * time.Second, false, "", ""},
			{"TCP", ap("[2001:db8::10]:51235"), ap("[2001:db8::100]:80"), ap("10.1.0.11:80"), "SYN_RECV", 42 * time.Second, false, "", ""},
		},
		// The IPv4-compatible ::192.0.2.1 is glibc's spelling; the last
		// line is ours: ipvsadm parses 0A01000B as IPv6, fails, and prints
		// whatever its stack held.
		out: ipvsadmHeader + `TCP 14:59  ESTABLISHED 192.168.0.10:51234 10.0.0.100:80      10.1.0.11:8080
UDP 04:59  UDP         192.168.0.10:53000 10.0.0.100:53      10.1.0.12:53
TCP 05:59  ASSURED     192.168.0.10:0     10.0.0.100:80      10.1.0.11:8080
IP  180:00 NONE        192.168.0.10:0     0.0.0.1:0          10.1.0.12:0
SCTP 59:59  ESTABLISHED 192.168.0.20:40000 10.0.0.100:9999    10.1.0.13:9999
UDP 02:00  UDP         192.168.0.30:5060  10.0.0.100:5060    10.1.0.11:5060
TCP 01:05  FIN_WAIT    192.168.0.10:51236 10.0.0.100:80      10.1.0.11:8080
TCP 00:00  TIME_WAIT   192.168.0.10:51237 10.0.0.100:80      10.1.0.11:8080
TCP 15:00  ESTABLISHED [2001:db8::10]:51234 [2001:db8::100]:443 [2001:db8:1::11]:443
TCP 03:00  NONE        [2001:db8::10]:0   [2001:db8::100]:443 [2001:db8:1::11]:443
UDP 00:05  UDP         [::192.0.2.1]:1234 [::ffff:192.0.2.100]:53 [::1]:53
TCP 00:42  SYN_RECV    [2001:db8::10]:51235 [2001:db8::100]:80 10.1.0.11:80
`,
	}, {
		name: "ip_vs_conn_sync",
		in:   connSyncFile,
		want: []Conn{
			{"TCP", ap("192.168.0.10:51234"), ap("10.0.0.100:80"), ap("10.1.0.11:8080"), "ESTABLISHED", 899 * time.Second, false, "", ""},
			{"TCP", ap("192.168.0.11:40001"), ap("10.0.0.100:80"), ap("10.1.0.12:8080"), "ESTABLISHED", 179 * time.Second, true, "", ""},
			{"TCP", ap("192.168.0.11:0"), ap("10.0.0.100:80"), ap("10.1.0.12:8080"), "ASSURED", 359 * time.Second, true, "", ""},
			{"UDP", ap("[2001:db8::20]:5353"), ap("[2001:db8::100]:53"), ap("[2001:db8:1::12]:53"), "UDP", 299 * time.Second, true, "", ""},
		},
		// What ipvsadm prints for the same entries read from ip_vs_conn.
		out: ipvsadmHeader + `TCP 14:59  ESTABLISHED 192.168.0.10:51234 10.0.0.100:80      10.1.0.11:8080
TCP 02:59  ESTABLISHED 192.168.0.11:40001 10.0.0.100:80      10.1.0.12:8080
TCP 05:59  ASSURED     192.168.0.11:0     10.0.0.100:80      10.1.0.12:8080
UDP 04:59  UDP         [2001:db8::20]:5353 [2001:db8::100]:53 [2001:db8:1::12]:53
`,
	}, {
		name: "empty ip_vs_conn",
		in:   "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n",
		out:  ipvsadmHeader,
	}, {
		name: "empty ip_vs_conn_sync",
		in:   "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n",
		out:  ipvsadmHeader,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConns(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseConns: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseConns:\n got %+v\nwant %+v", got, tt.want)
			}
			var b bytes.Buffer
			if err := FormatConns(&b, got); err != nil {
				t.Fatalf("FormatConns: %v", err)
			}
			if b.String() != tt.out {
				t.Errorf("FormatConns:\n got %q\nwant %q", b.String(), tt.out)
			}
		})
	}
}

func TestConnTemplate(t *testing.T) {
	conns, err := ParseConns(strings.NewReader(connFile))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for i, c := range conns {
		if c.Template() {
			got = append(got, i)
		}
	}
	if want := []int{2, 3, 9}; !reflect.DeepEqual(got, want) {
		t.Errorf("templates at %v, want %v", got, want)
	}
}

func TestParseConnsErrors(t *testing.T) {
	const h = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
	const hs = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n"
	const v6 = "2001:0db8:0000:0000:0000:0000:0000:0010"
	tests := []struct{ name, in, want string }{
		{"empty", "", "IPVS connection table: empty, want the header line of ip_vs_conn or ip_vs_conn_sync"},
		{"unknown header", "IP Virtual Server version 1.2.1 (size=4096)\n",
			`line 1 "IP Virtual Server version 1.2.1 (size=4096)": not the header of ip_vs_conn or ip_vs_conn_sync`},
		{"short line", h + "TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED\n",
			`line 2 "TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED": 8 fields, want 9 (or 11 with persistence engine data)`},
		{"sync line without origin", hs + "TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED     899\n",
			`line 2 "TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED     899": 9 fields, want 10`},
		{"bad origin", hs + "TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED Local      899\n",
			`line 2 "TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED Local      899": origin "Local": want LOCAL or SYNC`},
		{"short client address", h + "TCP C0A800A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED     899\n",
			`line 2 "TCP C0A800A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED     899": client address "C0A800A": want 8 hex digits or an IPv6 address`},
		{"bad client port", h + "TCP C0A8000A C8G2 0A000064 0050 0A01000B 1F90 ESTABLISHED     899\n",
			`line 2 "TCP C0A8000A C8G2 0A000064 0050 0A01000B 1F90 ESTABLISHED     899": client port "C8G2": want 4 hex digits`},
		{"decimal port", h + "TCP C0A8000A C822 0A000064 80 0A01000B 1F90 ESTABLISHED     899\n",
			`line 2 "TCP C0A8000A C822 0A000064 80 0A01000B 1F90 ESTABLISHED     899": virtual port "80": want 4 hex digits`},
		{"bad destination", h + "TCP C0A8000A C822 0A000064 0050 10.1.0.11 1F90 ESTABLISHED     899\n",
			`line 2 "TCP C0A8000A C822 0A000064 0050 10.1.0.11 1F90 ESTABLISHED     899": destination address "10.1.0.11": want 8 hex digits or an IPv6 address`},
		{"mixed client and virtual", h + "TCP " + v6 + " C822 0A000064 0050 0A01000B 1F90 ESTABLISHED     899\n",
			`line 2 "TCP ` + v6 + ` C822 0A000064 0050 0A01000B 1F90 ESTABLISHED     899": virtual address "0A000064": not of the client's family`},
		{"IPv6 with zone", h + "TCP fe80::1%eth0 C822 " + v6 + " 0050 0A01000B 1F90 ESTABLISHED     899\n",
			`line 2 "TCP fe80::1%eth0 C822 ` + v6 + ` 0050 0A01000B 1F90 ESTABLISHED     899": client address "fe80::1%eth0": not an IPv6 address`},
		{"negative expires", h + "TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED      -1\n",
			`line 2 "TCP C0A8000A C822 0A000064 0050 0A01000B 1F90 ESTABLISHED      -1": expires "-1": want seconds`},
		{"blank line", h + "\n", `line 2 "": 0 fields, want 9 (or 11 with persistence engine data)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConns(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseConns = %+v, want error %q", got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

func TestReadConnsFrom(t *testing.T) {
	dir := t.TempDir()
	sync, conn := filepath.Join(dir, "ip_vs_conn_sync"), filepath.Join(dir, "ip_vs_conn")
	if err := os.WriteFile(conn, []byte(connFile), 0o644); err != nil {
		t.Fatal(err)
	}
	// The sync file is missing: fall back to ip_vs_conn.
	got, err := ReadConnsFrom(sync, conn)
	if err != nil || len(got) != 12 || got[0].Synced {
		t.Fatalf("fallback: %d conns, %v", len(got), err)
	}
	if err := os.WriteFile(sync, []byte(connSyncFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err = ReadConnsFrom(sync, conn); err != nil || len(got) != 4 || !got[1].Synced {
		t.Fatalf("sync file first: %d conns, %v", len(got), err)
	}
	if err := os.WriteFile(sync, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = ReadConnsFrom(sync, conn); err == nil || !strings.Contains(err.Error(), sync+`: line 1 "garbage"`) {
		t.Errorf("bad sync file: error %v, want one naming %s and line 1", err, sync)
	}
	missing := filepath.Join(dir, "none")
	if _, err = ReadConnsFrom(missing, missing+"2"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing+"2") {
		t.Errorf("no file: error %v, want fs.ErrNotExist naming %s", err, missing+"2")
	}
}

package ipvsadm

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// The lines ipvsadm 1.31 prints for an SCTP service, a SIP persistence
// engine and a local-node real server (the lab compares them with the
// real ipvsadm against the kernel: TestSCTPAndSIPInTheKernel,
// TestLocalNodeAnswersThroughTheVIP).
var featureLines = []string{
	"-A --sctp-service 10.0.0.1:5000 -s rr",
	"-a --sctp-service 10.0.0.1:5000 -r 10.3.0.10 -g -w 2",
	"-A -u 10.0.0.1:5060 -s wlc -p 120 --pe sip",
	"-a -u 10.0.0.1:5060 -r 10.3.0.11 -g",
	"-A -t 10.0.0.1:80 -s rr",
	"-a -t 10.0.0.1:80 -r 127.0.0.1 -g",
	"-a -t 10.0.0.1:80 -r 10.3.0.10",
}

const wantFeatureList = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 rr
  -> 10.3.0.10:80                 Route   1      0          0         
  -> 127.0.0.1:80                 Local   1      0          0         
UDP  10.0.0.1:5060 wlc persistent 120 pe sip
  -> 10.3.0.11:5060               Route   1      0          0         
SCTP 10.0.0.1:5000 rr
  -> 10.3.0.10:5000               Route   2      0          0         
`

const wantFeatureSave = `-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.3.0.10:80 -g -w 1
-a -t 10.0.0.1:80 -r 127.0.0.1:80 -g -w 1
-A -u 10.0.0.1:5060 -s wlc -p 120 --pe sip
-a -u 10.0.0.1:5060 -r 10.3.0.11:5060 -g -w 1
-A --sctp-service 10.0.0.1:5000 -s rr
-a --sctp-service 10.0.0.1:5000 -r 10.3.0.10:5000 -g -w 2
`

// TestSCTPSIPAndLocalNode: --sctp-service, --pe and a loopback real
// server parse into the model (SCTP key, engine, forwarding local), list
// as ipvsadm lists them (SCTP, "pe sip", Local), save as ipvsadm saves them
// (--sctp-service, --pe, -g for Local), and the save restores to the same
// model.
func TestSCTPSIPAndLocalNode(t *testing.T) {
	cfg := mustApply(t, fsm.NewConfig(), featureLines...)
	sctp := cfg.Services["sctp:10.0.0.1:5000"]
	if sctp == nil || sctp.Key.Protocol != fsm.SCTP {
		t.Fatalf("no SCTP service in %s", asJSON(cfg))
	}
	if p := cfg.Services["udp:10.0.0.1:5060"].Persistence; p == nil || p.Engine != "sip" || p.Timeout != 120 {
		t.Errorf("sip persistence: %+v", p)
	}
	web := cfg.Services["tcp:10.0.0.1:80"]
	if r := web.Servers["127.0.0.1:80"]; r == nil || r.Forward != fsm.LocalNode {
		t.Errorf("127.0.0.1 -g: %+v, want forwarding local", r)
	}
	if r := web.Servers["10.3.0.10:80"]; r == nil || r.Forward != fsm.DirectRoute {
		t.Errorf("10.3.0.10: %+v, want direct routing", r)
	}
	var list bytes.Buffer
	if err := FormatList(&list, header, cfg, nil, ListOptions{Numeric: true}, fakeResolver{}); err != nil {
		t.Fatal(err)
	}
	diffText(t, list.String(), wantFeatureList)
	var saved bytes.Buffer
	if err := FormatSave(&saved, cfg, true, nil); err != nil {
		t.Fatal(err)
	}
	diffText(t, saved.String(), wantFeatureSave)
	ops, err := ParseRestore(strings.NewReader(saved.String()))
	if err != nil {
		t.Fatal(err)
	}
	restored, err := fsm.ApplyOps(fsm.NewConfig(), ops)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := asJSON(restored), asJSON(cfg); g != w {
		t.Errorf("restored model differs\n got %s\nwant %s", g, w)
	}
}

// TestKernelFeatureRefusals: what the kernel could not honour is refused
// before the log, naming the field and the value.
func TestKernelFeatureRefusals(t *testing.T) {
	base := mustApply(t, fsm.NewConfig(), "-A -t 10.0.0.1:80", "-A --sctp-service 10.0.0.1:5000")
	for _, tc := range []struct{ line, want string }{
		{"-A --sctp-service 10.0.0.1:5001 -o", "service sctp:10.0.0.1:5001: one-packet scheduling (-o) is only for UDP and fwmark services"},
		{"-A -t 10.0.0.1:81 -p --pe sip", `service tcp:10.0.0.1:81 persistence engine "sip": only for UDP and fwmark services (SIP over UDP)`},
		{"-A --sctp-service 10.0.0.1:5002 -p --pe sip", `service sctp:10.0.0.1:5002 persistence engine "sip": only for UDP and fwmark services (SIP over UDP)`},
		{"-A -u 10.0.0.1:5060 -p --pe SIP", `service udp:10.0.0.1:5060 persistence engine "SIP": want lower-case letters, digits and '_', at most 15 (the kernel module is ip_vs_pe_NAME)`},
		{"-A -t 10.0.0.1:82 -s Weighted", `service tcp:10.0.0.1:82 scheduler "Weighted": want lower-case letters, digits and '_' (the kernel module is ip_vs_NAME)`},
		{"-A -t 10.0.0.1:82 -s no-such-sched", `service tcp:10.0.0.1:82 scheduler "no-such-sched": want lower-case letters, digits and '_' (the kernel module is ip_vs_NAME)`},
		{"-A -t 10.0.0.1:82 -s abcdefghijklmnop", `service tcp:10.0.0.1:82 scheduler "abcdefghijklmnop": longer than the kernel's 15 characters`},
		{"-A -t 10.0.0.1:82 -s ftp", `service tcp:10.0.0.1:82 scheduler "ftp": ip_vs_ftp is not a scheduler (the FTP helper or a persistence engine)`},
		{"-A -t 10.0.0.1:82 -s pe_sip", `service tcp:10.0.0.1:82 scheduler "pe_sip": ip_vs_pe_sip is not a scheduler (the FTP helper or a persistence engine)`},
	} {
		cmd, err := Parse(strings.Fields(tc.line))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.line, err)
		}
		if _, err := fsm.ApplyOps(base, cmd.Ops); err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.line, err, tc.want)
		}
	}
	// A scheduler no list of ours names is the kernel's to have: the
	// model takes it (the leader asks its kernel: director.Modules).
	for _, s := range []string{"twos", "abcdefghijklmno", "my_sched2"} {
		if _, err := fsm.ApplyOps(base, mustParse(t, "-A -t 10.0.0.1:90 -s "+s).Ops); err != nil {
			t.Errorf("scheduler %s: %v", s, err)
		}
	}
	// Local forwarding only at a loopback address: elsewhere -S would
	// print -g and restore it as direct routing.
	svc := base.Services["tcp:10.0.0.1:80"]
	r := &fsm.RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: 80, Forward: fsm.LocalNode, Weight: 1, State: fsm.Active}
	if err := fsm.ValidateServer(svc, r); err == nil || err.Error() != "real server 10.3.0.10:80 of service tcp:10.0.0.1:80 forwarding local: only for a loopback address (127.0.0.1, ::1), the director itself" {
		t.Errorf("local at 10.3.0.10: %v", err)
	}
	// -m and -i to a loopback address keep their method: only -g (what
	// ipvsadm -S prints for Local) means the local node.
	cfg := mustApply(t, base, "-a -t 10.0.0.1:80 -r 127.0.0.2:8080 -m", "-a -t 10.0.0.1:80 -r [::1]:80 -i")
	if f := cfg.Services["tcp:10.0.0.1:80"].Servers["127.0.0.2:8080"].Forward; f != fsm.Masquerade {
		t.Errorf("127.0.0.2 -m became %s", f)
	}
}

func mustParse(t *testing.T, line string) Command {
	t.Helper()
	c, err := Parse(strings.Fields(line))
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	return c
}

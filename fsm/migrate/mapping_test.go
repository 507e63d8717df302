package migrate

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

func ka(t *testing.T, src string) *Result {
	t.Helper()
	res, err := FromKeepalived("k.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func hasItem(res *Result, keyword, reasonPart string) bool {
	return slices.ContainsFunc(res.Unmapped, func(i Item) bool {
		return i.Keyword == keyword && strings.Contains(i.Reason, reasonPart)
	})
}

// TestKeepalivedInhibit: no inhibit_on_failure means keepalived removes a
// failed server (on_failure remove); inhibit keeps it at weight 0
// (quiescent, ""); a mixed service follows the majority and lists the rest.
func TestKeepalivedInhibit(t *testing.T) {
	for _, tc := range []struct {
		name, vs, rs1, rs2 string
		want               string
		listed             int
	}{
		{"none", "", "", "", fsm.OnFailureRemove, 0},
		{"virtual server", "inhibit_on_failure", "", "", "", 0},
		{"every real server", "", "inhibit_on_failure", "inhibit_on_failure yes", "", 0},
		{"overridden off", "inhibit_on_failure", "inhibit_on_failure off", "inhibit_on_failure false", fsm.OnFailureRemove, 0},
		{"tie follows the virtual server", "inhibit_on_failure", "inhibit_on_failure no", "", "", 1},
		{"tie without", "", "inhibit_on_failure", "", fsm.OnFailureRemove, 1},
	} {
		res := ka(t, "virtual_server 10.0.0.1 80 {\nprotocol TCP\n"+tc.vs+"\nreal_server 10.0.1.1 80 {\n"+tc.rs1+"\n}\nreal_server 10.0.1.2 80 {\n"+tc.rs2+"\n}\n}\n")
		svc := res.Config.Services["tcp:10.0.0.1:80"]
		if svc == nil || svc.OnFailure != tc.want || len(res.Unmapped) != tc.listed {
			t.Errorf("%s: on_failure %q, items %v; want %q and %d items", tc.name, svc.OnFailure, res.Unmapped, tc.want, tc.listed)
		}
	}
}

func TestKeepalivedServiceDetails(t *testing.T) {
	res := ka(t, `
virtual_server 10.0.0.1 0 {
    protocol TCP
    lvs_sched rr
    sh-port
    lvs_method TUN type gre csum
    real_server 10.0.1.1 8080 {
        weight 0
    }
    real_server 2001:db8::1 80 {
        lvs_method NAT
    }
    real_server 10.0.1.3 80 {
        uthreshold 100
        lthreshold 200
    }
}
virtual_server fwmark 3 {
    ip_family inet6
    persistence_granularity 64
    real_server 2001:db8::5 443 {
    }
    sorry_server 2001:db8::9 443
    lvs_method DR
}
`)
	svc := res.Config.Services["tcp:10.0.0.1:0"]
	if svc == nil || svc.Persistence == nil || svc.Persistence.Timeout != kaPersistence || len(svc.Flags) != 0 {
		t.Fatalf("port 0 service: %+v", svc)
	}
	r := svc.Servers["10.0.1.1:0"]
	if r == nil || r.Forward != fsm.Tunnel || r.TunnelType != fsm.TunnelGRE || r.TunnelCsum != fsm.TunnelCsumOn || r.Weight != 0 {
		t.Errorf("tunnelled server: %+v (servers %v)", r, svc.SortedServerKeys())
	}
	if len(svc.Servers) != 1 || !hasItem(res, "sh-port", "only for the sh scheduler") {
		t.Errorf("items %v", res.Unmapped)
	}
	for _, key := range []string{"real_server"} {
		n := 0
		for _, it := range res.Unmapped {
			if it.Keyword == key && strings.HasPrefix(it.Reason, "real server not imported") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("want the wrong-family and the threshold server listed: %v", res.Unmapped)
		}
	}
	fw := res.Config.Services["fwmark6:3"]
	// lvs_method after the servers still applies to them, as in keepalived
	if fw == nil || fw.Persistence == nil || fw.Persistence.Netmask != "64" || fw.Servers["[2001:db8::5]:0"] == nil || fw.Sorry == nil || fw.Sorry.Port != 0 || fw.Sorry.Forward != fsm.DirectRoute {
		t.Errorf("fwmark6 service: %+v", fw)
	}
}

func TestKeepalivedChecks(t *testing.T) {
	res := ka(t, `
virtual_server 10.0.0.1 53 {
    protocol UDP
    delay_loop 30
    retry 4
    real_server 10.0.1.1 53 {
        DNS_CHECK {
            connect_ip 10.0.9.9
            connect_port 5353
        }
    }
    real_server 10.0.1.2 53 {
        MISC_CHECK {
            misc_path "/bin/check 'a b' c"
            retry 0
        }
    }
    real_server 10.0.1.3 53 {
        HTTP_GET {
            url {
                path nopath
            }
        }
    }
}`)
	svc := res.Config.Services["udp:10.0.0.1:53"]
	dns := svc.Servers["10.0.1.1:53"].Check
	want := fsm.HealthCheck{Type: "dns", IntervalMS: 30000, TimeoutMS: 5000, Rise: 1, Fall: 5, Address: netip.MustParseAddr("10.0.9.9"), Port: 5353, QType: "SOA", Query: "."}
	if dns == nil || !equalCheck(*dns, want) {
		t.Errorf("dns check %+v\nwant %+v", dns, want)
	}
	misc := svc.Servers["10.0.1.2:53"].Check
	if misc == nil || strings.Join(misc.Command, "|") != "/bin/check|a b|c" || misc.TimeoutMS != 30000 || misc.Fall != 1 {
		t.Errorf("misc check %+v", misc)
	}
	if svc.Servers["10.0.1.3:53"].Check != nil || !hasItem(res, "HTTP_GET", "must start with /") {
		t.Errorf("a check the model refuses must be listed, the server kept unchecked: %v", res.Unmapped)
	}
}

func equalCheck(a, b fsm.HealthCheck) bool {
	return a.Type == b.Type && a.IntervalMS == b.IntervalMS && a.TimeoutMS == b.TimeoutMS && a.Rise == b.Rise && a.Fall == b.Fall &&
		a.Address == b.Address && a.Port == b.Port && a.QType == b.QType && a.Query == b.Query
}

func TestExpandRange(t *testing.T) {
	for _, tc := range []struct {
		in    string
		n     int
		first string
		last  string
	}{
		{"192.0.2.1-3", 3, "192.0.2.1", "192.0.2.3"},
		{"192.0.2.250-192.0.3.1", 8, "192.0.2.250", "192.0.3.1"},
		{"192.0.2.8/29", 8, "192.0.2.8", "192.0.2.15"},
		{"2001:db8::a-c", 3, "2001:db8::a", "2001:db8::c"},
		{"2001:db8::1", 1, "2001:db8::1", "2001:db8::1"},
	} {
		got, err := expandRange(tc.in)
		if err != nil || len(got) != tc.n || got[0].String() != tc.first || got[len(got)-1].String() != tc.last {
			t.Errorf("expandRange(%q) = %v, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"192.0.2.5-1", "10.0.0.0/8", "192.0.2.1-300", "x-y", "192.0.2.1-2001:db8::1"} {
		if _, err := expandRange(bad); err == nil {
			t.Errorf("expandRange(%q): want an error", bad)
		}
	}
}

func TestLdirectordDetails(t *testing.T) {
	res, err := FromLdirectord("l.cf", []byte(`
checkinterval=20
virtual=[2001:db8::1]:80
	real=[2001:db8::10]:80 gate
	fallback6=[2001:db8::99]:80 masq
	checktype=connect
virtual=192.0.2.1:domain
	real=10.0.0.1 gate
	checktype=connect
	checktimeout=2
virtual=192.0.2.2:53
	real=10.0.0.2:53 gate
	service=dns
	request="192.0.2.80"
virtual6=7
	real6=[2001:db8::7] gate
	checktype=on
	scheduler=no-such
`))
	if err != nil {
		t.Fatal(err)
	}
	c := res.Config
	v6 := c.Services["tcp:[2001:db8::1]:80"]
	if v6 == nil || v6.Check == nil || v6.Check.Type != "tcp" || v6.Check.IntervalMS != 20000 || v6.Check.TimeoutMS != 5000 || v6.Sorry == nil || v6.Sorry.Forward != fsm.Masquerade {
		t.Errorf("virtual=[v6]: %+v", v6)
	}
	dns := c.Services["udp:192.0.2.1:53"]
	if dns == nil || dns.Check == nil || dns.Check.Type != "icmp" || dns.Check.TimeoutMS != 2000 {
		t.Errorf("udp connect check is a ping: %+v", dns)
	}
	ptr := c.Services["udp:192.0.2.2:53"]
	if ptr == nil || ptr.Check == nil || ptr.Check.QType != "PTR" || ptr.Check.Query != "80.2.0.192.in-addr.arpa." {
		t.Errorf("dns PTR check: %+v", ptr.Check)
	}
	fw := c.Services["fwmark6:7"]
	if fw == nil || fw.Check != nil || fw.Scheduler != ldScheduler || !hasItem(res, "scheduler", "want lower-case letters") {
		t.Errorf("fwmark6: %+v %v", fw, res.Unmapped)
	}
}

func TestReverseName(t *testing.T) {
	if got := reverseName(netip.MustParseAddr("2001:db8::1")); !strings.HasPrefix(got, "1.0.0.0.") || !strings.HasSuffix(got, "8.b.d.0.1.0.0.2.ip6.arpa.") {
		t.Errorf("reverseName = %s", got)
	}
}

package main

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// sysctlDir makes a /proc/sys/net of the test's own: "" leaves a switch's
// file out (a kernel without that family).
func sysctlDir(t *testing.T, v4, v6 string) string {
	t.Helper()
	dir := t.TempDir()
	for file, v := range map[string]string{"ipv4/ip_forward": v4, "ipv6/conf/all/forwarding": v6} {
		if v == "" {
			continue
		}
		p := filepath.Join(dir, file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// withService adds a TCP service on vip with one real server at rs.
func withService(cfg *fsm.Config, vip, rs string, fwd fsm.Forward) *fsm.Config {
	a := netip.MustParseAddr(vip)
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: a, Port: 80}
	r := &fsm.RealServer{Address: netip.MustParseAddr(rs), Port: 80, Forward: fwd, Weight: 1}
	cfg.Services[key.String()] = &fsm.Service{Key: key, Scheduler: "wlc", Servers: map[string]*fsm.RealServer{r.Key(): r}}
	return cfg
}

func TestMasqueradingCountsByFamily(t *testing.T) {
	cfg := fsm.NewConfig()
	withService(cfg, "10.0.0.2", "10.3.0.2", fsm.Masquerade)
	withService(cfg, "10.0.0.1", "10.3.0.1", fsm.Masquerade)
	withService(cfg, "10.0.0.3", "10.3.0.3", fsm.DirectRoute)
	withService(cfg, "2001:db8::1", "2001:db8:1::1", fsm.Tunnel)
	use := masquerading(cfg)
	if use[0] != (masqUse{2, "tcp:10.0.0.1:80"}) || use[1].services != 0 {
		t.Fatalf("masquerading = %+v, want 2 IPv4 (example tcp:10.0.0.1:80) and no IPv6", use)
	}
	// A sorry server that masquerades counts too: it is in the kernel
	// table while nothing else is usable.
	sorry := withService(fsm.NewConfig(), "2001:db8::1", "2001:db8:1::1", fsm.DirectRoute)
	sorry.Services["tcp:[2001:db8::1]:80"].Sorry = &fsm.RealServer{Address: netip.MustParseAddr("2001:db8:2::1"), Port: 80, Forward: fsm.Masquerade}
	if use := masquerading(sorry); use[1] != (masqUse{1, "tcp:[2001:db8::1]:80"}) || use[0].services != 0 {
		t.Fatalf("sorry server: %+v, want one IPv6", use)
	}
	if use := masquerading(nil); use != [2]masqUse{} {
		t.Fatalf("nil config: %+v", use)
	}
}

func TestForwardingOff(t *testing.T) {
	v4 := [2]masqUse{{3, "tcp:10.0.0.1:80"}, {}}
	both := [2]masqUse{{1, "tcp:10.0.0.1:80"}, {2, "tcp:[2001:db8::1]:80"}}
	for _, c := range []struct {
		name   string
		use    [2]masqUse
		v4, v6 string
		want   []string // "sysctl=value error", the error a substring
	}{
		{"no masquerading: nothing read", [2]masqUse{}, "", "", nil},
		{"ipv4 on", v4, "1", "0", nil},
		{"ipv4 off", v4, "0", "1", []string{"net.ipv4.ip_forward=0 "}},
		{"ipv6 off, only ipv4 used", v4, "1", "0", nil},
		{"both off", both, "0", "0", []string{"net.ipv4.ip_forward=0 ", "net.ipv6.conf.all.forwarding=0 "}},
		{"no ipv6 in the kernel", both, "1", "", []string{"net.ipv6.conf.all.forwarding= open "}},
		{"garbage", v4, "yes", "", []string{"net.ipv4.ip_forward=yes want 0 or 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := forwardingOff(c.use, sysctlDir(t, c.v4, c.v6))
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %q", got, c.want)
			}
			for i, f := range got {
				if s := f.Sysctl + "=" + f.Value + " " + f.Error; !strings.HasPrefix(s, c.want[i]) {
					t.Errorf("got %q, want %q", s, c.want[i])
				}
				if f.Services == 0 || f.Example == "" {
					t.Errorf("%+v: want the services and an example", f)
				}
			}
		})
	}
}

// The warning is one line, logged at start-up when masquerading services
// exist with forwarding off, and again when the first masquerading
// service is added later (after it had cleared), never once per change.
func TestForwardWatchLogsOnChangeOnly(t *testing.T) {
	var buf bytes.Buffer
	w := &forwardWatch{log: slog.New(slog.NewTextHandler(&buf, nil)), node: "d1", dir: sysctlDir(t, "0", "1")}
	lines := func() []string {
		s := strings.TrimSpace(buf.String())
		buf.Reset()
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	none := fsm.NewConfig()
	masq := withService(fsm.NewConfig(), "10.0.0.1", "10.3.0.1", fsm.Masquerade)
	more := withService(withService(fsm.NewConfig(), "10.0.0.1", "10.3.0.1", fsm.Masquerade), "10.0.0.2", "10.3.0.2", fsm.Masquerade)

	w.step(masquerading(none))
	if l := lines(); l != nil {
		t.Fatalf("no masquerading service: logged %q", l)
	}
	w.step(masquerading(masq))
	l := lines()
	if len(l) != 1 || !strings.Contains(l[0], "level=WARN") || !strings.Contains(l[0], `sysctls="net.ipv4.ip_forward=0"`) ||
		!strings.Contains(l[0], "masq_services=1") || !strings.Contains(l[0], "example=tcp:10.0.0.1:80") || !strings.Contains(l[0], "sysctl -w net.ipv4.ip_forward=1") {
		t.Fatalf("first masquerading service: %q, want one warning naming the sysctl, the service and the fix", l)
	}
	w.step(masquerading(more))
	w.step(masquerading(masq))
	if l := lines(); l != nil {
		t.Fatalf("more services, forwarding still off: logged again %q", l)
	}
	w.step(masquerading(none))
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "cleared") {
		t.Fatalf("masquerading services gone: %q, want one line saying it cleared", l)
	}
	w.step(masquerading(more))
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "masq_services=2") {
		t.Fatalf("masquerading added again: %q, want the warning again", l)
	}
	// Forwarding turned on by the operator: seen on the next change.
	w.dir = sysctlDir(t, "1", "1")
	w.step(masquerading(more))
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "cleared") {
		t.Fatalf("forwarding on: %q, want one line saying it cleared", l)
	}
}

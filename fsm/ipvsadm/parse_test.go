package ipvsadm

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// TestMain pins port-name lookups so that tests and fuzzing never depend
// on the machine's services database.
func TestMain(m *testing.M) {
	LookupPort = fakeLookupPort
	os.Exit(m.Run())
}

func fakeLookupPort(proto, name string) (int, error) {
	ports := map[string]int{"tcp/http": 80, "tcp/https": 443, "udp/domain": 53, "tcp/domain": 53, "tcp/huge": 70000}
	if p, ok := ports[proto+"/"+name]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("unknown port %s/%s", proto, name)
}

var (
	vip4   = netip.MustParseAddr("10.0.0.1")
	vip6   = netip.MustParseAddr("2001:db8::1")
	rip4   = netip.MustParseAddr("10.3.0.10")
	rip6   = netip.MustParseAddr("2001:db8::10")
	tcp80  = fsm.ServiceKey{Protocol: fsm.TCP, Address: vip4, Port: 80}
	udp53  = fsm.ServiceKey{Protocol: fsm.UDP, Address: vip4, Port: 53}
	tcp6   = fsm.ServiceKey{Protocol: fsm.TCP, Address: vip6, Port: 80}
	fwm1   = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: 1}
	fwm1v6 = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: 1, IPv6: true}
)

func svcOp(kind fsm.OpKind, s fsm.Service) Command {
	if s.Scheduler == "" {
		s.Scheduler = "wlc"
	}
	return Command{Action: ActionOps, Ops: []fsm.Op{{Kind: kind, ServiceKey: s.Key, Service: &s}}}
}

func srvOp(kind fsm.OpKind, k fsm.ServiceKey, r fsm.RealServer) Command {
	if kind != fsm.OpDeleteServer {
		if r.Forward == "" {
			r.Forward = fsm.DirectRoute
		}
		if r.Weight == -1 {
			r.Weight = 0
		} else if r.Weight == 0 {
			r.Weight = 1
		}
	}
	return Command{Action: ActionOps, Ops: []fsm.Op{{Kind: kind, ServiceKey: k, Server: &r}}}
}

func list(o ListOptions) Command { return Command{Action: ActionList, List: o} }

func asJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestParse(t *testing.T) {
	persist := func(t uint32, mask string) *fsm.Persistence { return &fsm.Persistence{Timeout: t, Netmask: mask} }
	tests := []struct {
		args string
		want Command
	}{
		{"", list(ListOptions{})},
		// -A and its options, short and long.
		{"-A -t 10.0.0.1:80", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80})},
		{"--add-service --tcp-service 10.0.0.1:80 --scheduler rr", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Scheduler: "rr"})},
		{"--add-service --tcp-service=10.0.0.1:80 --scheduler=rr", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Scheduler: "rr"})},
		{"-At 10.0.0.1:80 -srr", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Scheduler: "rr"})},
		{"-At10.0.0.1:80", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80})},
		{"-t 10.0.0.1:80 -A", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80})},
		{"-A -t 10.0.0.1:http", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80})},
		{"-A -u 10.0.0.1:53 -s rr -o", svcOp(fsm.OpAddService, fsm.Service{Key: udp53, Scheduler: "rr", OnePacket: true})},
		{"-A --udp-service 10.0.0.1:domain --ops", svcOp(fsm.OpAddService, fsm.Service{Key: udp53, OnePacket: true})},
		{"-A -f 1 -s rr", svcOp(fsm.OpAddService, fsm.Service{Key: fwm1, Scheduler: "rr"})},
		{"-A -f 1 -6", svcOp(fsm.OpAddService, fsm.Service{Key: fwm1v6})},
		{"-A -6 --fwmark-service=1", svcOp(fsm.OpAddService, fsm.Service{Key: fwm1v6})},
		{"-A --fwmark-service 1 --ipv6", svcOp(fsm.OpAddService, fsm.Service{Key: fwm1v6})},
		{"-A -t [2001:db8::1]:80 -s sh -b sh-fallback,sh-port", svcOp(fsm.OpAddService, fsm.Service{Key: tcp6, Scheduler: "sh", Flags: []string{"sh-fallback", "sh-port"}})},
		{"-A -t [2001:db8::1]:80 --sched-flags ,flag-1,,flag-3,", svcOp(fsm.OpAddService, fsm.Service{Key: tcp6, Flags: []string{"flag-1", "flag-3"}})},
		{"-A -t [::ffff:10.0.0.1]:80", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80})},
		{"-A -t 10.0.0.1:80 -p", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Persistence: persist(300, "")})},
		{"-A -t 10.0.0.1:80 -p 600", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Persistence: persist(600, "")})},
		{"-A -t 10.0.0.1:80 -p600", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Persistence: persist(600, "")})},
		{"-A -t 10.0.0.1:80 --persistent=600", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Persistence: persist(600, "")})},
		{"-A -t 10.0.0.1:80 --persistent 600", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Persistence: persist(600, "")})},
		{"-A -t 10.0.0.1:80 -p -s rr", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Scheduler: "rr", Persistence: persist(300, "")})},
		{"-A -t 10.0.0.1:80 --persistent --scheduler rr", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Scheduler: "rr", Persistence: persist(300, "")})},
		{"-A -t 10.0.0.1 -p", svcOp(fsm.OpAddService, fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: vip4}, Persistence: persist(300, "")})},
		{"-A -t 2001:db8::1 -p", svcOp(fsm.OpAddService, fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: vip6}, Persistence: persist(300, "")})},
		{"-A -t 10.0.0.1:80 -p 60 -M 255.255.255.0", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Persistence: persist(60, "255.255.255.0")})},
		{"-A -t 10.0.0.1:80 -M 255.255.255.0 -p", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Persistence: persist(300, "255.255.255.0")})},
		{"-A -t 10.0.0.1:80 -p --netmask 255.255.255.255", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Persistence: persist(300, "")})},
		{"-A -t [2001:db8::1]:80 -p -M 064", svcOp(fsm.OpAddService, fsm.Service{Key: tcp6, Persistence: persist(300, "64")})},
		{"-A -t [2001:db8::1]:80 -p -M 128", svcOp(fsm.OpAddService, fsm.Service{Key: tcp6, Persistence: persist(300, "")})},
		{"-A -f 1 -6 -p -M 48", svcOp(fsm.OpAddService, fsm.Service{Key: fwm1v6, Persistence: persist(300, "48")})},
		{"-A -t 10.0.0.1:80 -s no-such-sched", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80, Scheduler: "no-such-sched"})},
		{"-A -t 10.0.0.1:80 --sort", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80})},
		{"-A -t 10.0.0.1:80 -- ", svcOp(fsm.OpAddService, fsm.Service{Key: tcp80})},
		// -E carries a full service with defaults.
		{"-E -t 10.0.0.1:80", svcOp(fsm.OpEditService, fsm.Service{Key: tcp80})},
		{"--edit-service -t 10.0.0.1:80 -s rr -p 30 -o", svcOp(fsm.OpEditService, fsm.Service{Key: tcp80, Scheduler: "rr", Persistence: persist(30, ""), OnePacket: true})},
		// -D, -C.
		{"-D -t 10.0.0.1:80", ops(fsm.Op{Kind: fsm.OpDeleteService, ServiceKey: tcp80})},
		{"--delete-service --fwmark-service 1 -6", ops(fsm.Op{Kind: fsm.OpDeleteService, ServiceKey: fwm1v6})},
		{"-C", ops(fsm.Op{Kind: fsm.OpClear})},
		{"--clear", ops(fsm.Op{Kind: fsm.OpClear})},
		// -a, -e, -d.
		{"-a -t 10.0.0.1:80 -r 10.3.0.10:8080 -m -w 3", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Port: 8080, Forward: fsm.Masquerade, Weight: 3})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10:https", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Port: 443})},
		{"-a -u 10.0.0.1:53 -r 10.3.0.10:domain -g", srvOp(fsm.OpAddServer, udp53, fsm.RealServer{Address: rip4, Port: 53})},
		{"--add-server --tcp-service 10.0.0.1:80 --real-server 10.3.0.10:80 --masquerading --weight 0", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Port: 80, Forward: fsm.Masquerade, Weight: -1})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 --gatewaying", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel})},
		{"-a -t 10.0.0.1:80 -r [2001:db8::10]:80 --ipip --tun-type ipip", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip6, Port: 80, Forward: fsm.Tunnel})},
		{"-a -t 10.0.0.1:80 -r 2001:db8::10 -i", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip6, Forward: fsm.Tunnel})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type gue --tun-port 6080 --tun-csum", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel, TunnelType: fsm.TunnelGUE, TunnelPort: 6080, TunnelCsum: fsm.TunnelCsumOn})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 --tun-port=65535 --tun-type=gue --tun-remcsum -i", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel, TunnelType: fsm.TunnelGUE, TunnelPort: 65535, TunnelCsum: fsm.TunnelRemCsum})},
		{"-e -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type gue --tun-port 6080 --tun-nocsum", srvOp(fsm.OpEditServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel, TunnelType: fsm.TunnelGUE, TunnelPort: 6080})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type gre", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel, TunnelType: fsm.TunnelGRE})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type gre --tun-remcsum", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel, TunnelType: fsm.TunnelGRE, TunnelCsum: fsm.TunnelRemCsum})},
		// Semantic checks are fsm's: gre with a port, gue without one parse.
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type gre --tun-port 9", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel, TunnelType: fsm.TunnelGRE, TunnelPort: 9})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type gue", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel, TunnelType: fsm.TunnelGUE})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-port 9", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Tunnel, TunnelPort: 9})},
		{"-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m", srvOp(fsm.OpAddServer, tcp6, fsm.RealServer{Address: rip6, Port: 8080, Forward: fsm.Masquerade})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -x 100 -y 10", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Upper: 100, Lower: 10})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 --u-threshold=100 --l-threshold=10 -w7", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Upper: 100, Lower: 10, Weight: 7})},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -w 99999", srvOp(fsm.OpAddServer, tcp80, fsm.RealServer{Address: rip4, Weight: 99999})},
		{"-a -f 1 -r 10.3.0.10:8080", srvOp(fsm.OpAddServer, fwm1, fsm.RealServer{Address: rip4, Port: 8080})},
		{"-e -t 10.0.0.1:80 -r 10.3.0.10", srvOp(fsm.OpEditServer, tcp80, fsm.RealServer{Address: rip4})},
		{"--edit-server -t 10.0.0.1:80 -r 10.3.0.10 -m -w 5", srvOp(fsm.OpEditServer, tcp80, fsm.RealServer{Address: rip4, Forward: fsm.Masquerade, Weight: 5})},
		{"-d -t 10.0.0.1:80 -r 10.3.0.10", srvOp(fsm.OpDeleteServer, tcp80, fsm.RealServer{Address: rip4})},
		{"--delete-server -t 10.0.0.1:80 -r 10.3.0.10:8080", srvOp(fsm.OpDeleteServer, tcp80, fsm.RealServer{Address: rip4, Port: 8080})},
		// Listing.
		{"-L", list(ListOptions{})},
		{"-l", list(ListOptions{})},
		{"-Ln", list(ListOptions{Numeric: true})},
		{"--list --numeric", list(ListOptions{Numeric: true})},
		{"-L -n --stats --exact", list(ListOptions{Numeric: true, Stats: true, Exact: true})},
		{"-L -X --rate", list(ListOptions{Exact: true, Rate: true})},
		{"-L --thresholds --persistent-conn --sort --nosort", list(ListOptions{Thresholds: true, Persistent: true})},
		{"-L -n --tun-info", list(ListOptions{Numeric: true, TunInfo: true})},
		{"-L --tun-info -t 10.0.0.1:80", list(ListOptions{TunInfo: true, Service: &tcp80})},
		{"-L -n -t 10.0.0.1:80", list(ListOptions{Numeric: true, Service: &tcp80})},
		{"-L -f 1 -6", list(ListOptions{Service: &fwm1v6})},
		{"-L -c", list(ListOptions{Connections: true})},
		{"-Lnc --persistent-conn", list(ListOptions{Numeric: true, Connections: true, Persistent: true})},
		{"--list --connection", list(ListOptions{Connections: true})},
		// Save, restore, zero, help, version.
		{"-S", Command{Action: ActionSave}},
		{"-Sn", Command{Action: ActionSave, List: ListOptions{Numeric: true}}},
		{"--save --numeric", Command{Action: ActionSave, List: ListOptions{Numeric: true}}},
		{"-R", Command{Action: ActionRestore}},
		{"--restore", Command{Action: ActionRestore}},
		{"-Z", Command{Action: ActionZero}},
		{"--zero -u 10.0.0.1:53", Command{Action: ActionZero, Zero: &udp53}},
		{"-h", Command{Action: ActionHelp}},
		{"--help", Command{Action: ActionHelp}},
		{"-v", Command{Action: ActionVersion}},
		{"--version", Command{Action: ActionVersion}},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			got, err := Parse(strings.Fields(tt.args))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.args, err)
			}
			if g, w := asJSON(got), asJSON(tt.want); g != w {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tt.args, g, w)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // the whole error text
	}{
		{[]string{"-A", "-t", "10.0.0.1:80", "--foo"}, `unknown option "--foo"`},
		{[]string{"-Aq"}, `unknown option "-q"`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-é"}, `unknown option "-é"`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-w", "abc"}, `-w "abc": weight must be a number`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "--weight=1.5"}, `--weight "1.5": weight must be a number`},
		{[]string{"-A", "-t", "10.0.0.1"}, `-t "10.0.0.1": want address:port (the port may be omitted only with -p)`},
		{[]string{"-a", "-t", "10.0.0.1:80"}, `-a needs -r`},
		{[]string{"-d", "-f", "1"}, `-d needs -r`},
		{[]string{"-A", "-s", "rr"}, `-A needs -t, -u or -f`},
		{[]string{"--edit-server", "-r", "10.3.0.10"}, `--edit-server needs -t, -u or -f`},
		{[]string{"-A", "-t", "www:80"}, `-t "www:80": address "www": want a numeric IPv4 or IPv6 address`},
		{[]string{"-A", "-u", ":53"}, `-u ":53": address "": want a numeric IPv4 or IPv6 address`},
		{[]string{"-A", "-t", "[fe80::1%eth0]:80"}, `-t "[fe80::1%eth0]:80": address "fe80::1%eth0": want a numeric IPv4 or IPv6 address`},
		{[]string{"-A", "-t", "[2001:db8::1]"}, `-t "[2001:db8::1]": want [address]:port`},
		{[]string{"-A", "-t", "[2001:db8::1:80"}, `-t "[2001:db8::1:80": missing ']' (want [address]:port)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "www"}, `-r "www": address "www": want a numeric IPv4 or IPv6 address`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "80"}, `-r "80": address "80": want a numeric IPv4 or IPv6 address`},
		{[]string{"-A", "-t", "10.0.0.1:nosuch"}, `-t "10.0.0.1:nosuch": port "nosuch": not a number nor a known tcp service: unknown port tcp/nosuch`},
		{[]string{"-A", "-t", "10.0.0.1:"}, `-t "10.0.0.1:": port "": want a number or a tcp service name`},
		{[]string{"-A", "-t", "10.0.0.1:70000"}, `-t "10.0.0.1:70000": port "70000": out of range 0-65535`},
		{[]string{"-A", "-t", "10.0.0.1:huge"}, `-t "10.0.0.1:huge": port "huge": resolves to 70000, out of range 0-65535`},
		{[]string{"-a", "-u", "10.0.0.1:53", "-r", "10.3.0.10:http"}, `-r "10.3.0.10:http": port "http": not a number nor a known udp service: unknown port udp/http`},
		{[]string{"-A", "-f", "abc"}, `-f "abc": want a firewall mark, a number from 1 to 4294967295`},
		{[]string{"-A", "-f", "0"}, `-f "0": want a firewall mark, a number from 1 to 4294967295`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-6"}, `-6: only valid with -f (a fwmark service)`},
		{[]string{"-L", "--ipv6"}, `--ipv6: only valid with -f (a fwmark service)`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-p", "0"}, `-p "0": timeout must be a number of seconds from 1 to 2678400`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-p", "abc"}, `-p "abc": timeout must be a number of seconds from 1 to 2678400`},
		{[]string{"-A", "-t", "10.0.0.1:80", "--persistent=2678401"}, `--persistent "2678401": timeout must be a number of seconds from 1 to 2678400`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-M", "255.255.255.0"}, `-M "255.255.255.0": needs -p (the netmask is the granularity of persistence)`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-p", "-M", "24"}, `-M "24": want a dotted IPv4 netmask`},
		{[]string{"-A", "-t", "[2001:db8::1]:80", "-p", "-M", "ffff::"}, `-M "ffff::": want an IPv6 prefix length`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-b", ","}, `-b ",": want a comma-separated list of scheduler flags`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-s", ""}, `-s "": want a scheduler name`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-x", "abc"}, `-x "abc": upper threshold must be a number from 0 to 4294967295`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-y", "-1"}, `-y "-1": lower threshold must be a number from 0 to 4294967295`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-w", "1", "-w", "2"}, `-w "2": conflicts with -w "1" given before (give it once)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-g", "-m"}, `-m: conflicts with -g given before (give it once)`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-u", "10.0.0.1:53"}, `-u "10.0.0.1:53": conflicts with -t "10.0.0.1:80" given before (give it once)`},
		{[]string{"-A", "-t", "10.0.0.1:80", "-w", "3"}, `-w "3": not valid with -A`},
		{[]string{"-L", "-s", "rr"}, `-s "rr": not valid with -L`},
		{[]string{"-D", "-t", "10.0.0.1:80", "-p"}, `-p: not valid with -D`},
		{[]string{"-S", "--stats"}, `--stats: not valid with -S`},
		{[]string{"-A", "-t", "10.0.0.1:80", "--nosort"}, `--nosort: not valid with -A`},
		{[]string{"-C", "-t", "10.0.0.1:80"}, `-t "10.0.0.1:80": not valid with -C`},
		{[]string{"-A", "-D"}, `-D: more than one command (already -A)`},
		{[]string{"-Ln", "-S"}, `-S: more than one command (already -L)`},
		{[]string{"-n"}, `no command given (want one of -A -E -D -C -a -e -d -L -S -R -Z -h)`},
		{[]string{"foo"}, `unexpected argument "foo"`},
		{[]string{"-A", "-t", "10.0.0.1:80", "extra"}, `unexpected argument "extra"`},
		{[]string{"-A", "-t", "10.0.0.1:80", "--", "extra"}, `unexpected argument "extra"`},
		{[]string{"-"}, `unexpected argument "-"`},
		{[]string{"-A", "-t"}, `-t: missing value`},
		{[]string{"-a", "-t", "10.0.0.1:80", "--real-server"}, `--real-server: missing value`},
		{[]string{"-L", "--numeric=yes"}, `--numeric: takes no value (got "yes")`},
		{[]string{"--start-daemon", "master"}, `not supported yet: --start-daemon`},
		{[]string{"--set", "1", "2"}, `--set: want three values: tcp tcpfin udp (seconds, 0 = unchanged)`},
		{[]string{"--set", "1", "x", "3"}, `--set tcpfin: "x" is not a number of seconds`},
		{[]string{"--set", "0", "0\f0\f0", ""}, `--set "0 0\f0\f0 ": want 3 numbers of seconds (tcp tcpfin udp), got 4`},
		{[]string{"--set", "1", "2", "3", "-n"}, `-n: not valid with --set`},
		{[]string{"-A", "-t", "10.0.0.1:80", "--pe", "sip"}, `--pe "sip": needs -p (a persistence engine keys persistence)`},
		{[]string{"-A", "-u", "10.0.0.1:5060", "-p", "--pe="}, `--pe "": want a persistence engine name (sip)`},
		{[]string{"-A", "--sctp-service", "10.0.0.1:80", "-u", "10.0.0.1:80"}, `-u "10.0.0.1:80": conflicts with --sctp-service "10.0.0.1:80" given before (give it once)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "--pe", "sip"}, `--pe "sip": not valid with -a`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "--tun-type", "ipip"}, `--tun-type "ipip": only valid with -i (tunnelling)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "--tun-port", "6080"}, `--tun-port "6080": only valid with -i (tunnelling)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-m", "--tun-type", "gue", "--tun-port", "6080"}, `--tun-type "gue": only valid with -i (tunnelling)`},
		{[]string{"-e", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-g", "--tun-csum"}, `--tun-csum: only valid with -i (tunnelling)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "foo"}, `--tun-type "foo": want ipip, gue or gre`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "GUE"}, `--tun-type "GUE": want ipip, gue or gre`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "gue", "--tun-port", "abc"}, `--tun-port "abc": want a tunnel port number from 1 to 65535`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "gue", "--tun-port", "0"}, `--tun-port "0": want a tunnel port number from 1 to 65535`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "gue", "--tun-port=65536"}, `--tun-port "65536": want a tunnel port number from 1 to 65535`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "gue", "--tun-port"}, `--tun-port: missing value`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "gue", "--tun-type", "gre"}, `--tun-type "gre": conflicts with --tun-type "gue" given before (give it once)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "gre", "--tun-csum", "--tun-nocsum"}, `--tun-nocsum: conflicts with --tun-csum given before (give it once)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-nocsum"}, `--tun-nocsum: not valid with tunnel type ipip (want --tun-type gue or gre)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-type", "ipip", "--tun-csum"}, `--tun-csum: not valid with tunnel type ipip (want --tun-type gue or gre)`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-csum=yes"}, `--tun-csum: takes no value (got "yes")`},
		{[]string{"-d", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "--tun-type", "gue"}, `--tun-type "gue": not valid with -d`},
		{[]string{"-A", "-t", "10.0.0.1:80", "--tun-remcsum"}, `--tun-remcsum: not valid with -A`},
		{[]string{"-S", "--tun-info"}, `--tun-info: not valid with -S`},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "-i", "--tun-info"}, `--tun-info: not valid with -a`},
		{[]string{"-L", "-c", "-t", "10.0.0.1:80"}, `-c: cannot be combined with -t "10.0.0.1:80"`},
		{[]string{"-L", "-c", "--stats"}, `-c: cannot be combined with --stats, --rate or --thresholds`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := Parse(tt.args)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want error %q", tt.args, asJSON(got), tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.args, err, tt.want)
			}
		})
	}
}

// TestParseOpsApply checks that what Parse emits is what fsm expects:
// defaults, port inheritance and ipvsadm's -E/-e replacement semantics.
func TestParseOpsApply(t *testing.T) {
	cfg := mustApply(t, fsm.NewConfig(),
		"-A -t 10.0.0.1:80 -s rr -p 60",
		"-a -t 10.0.0.1:80 -r 10.3.0.10 -m -w 3 -x 50",
		"-E -t 10.0.0.1:80",
		"-e -t 10.0.0.1:80 -r 10.3.0.10",
	)
	s := cfg.Services["tcp:10.0.0.1:80"]
	if s == nil || s.Scheduler != "wlc" || s.Persistence != nil {
		t.Fatalf("after -E: service = %s, want scheduler wlc and no persistence", asJSON(s))
	}
	r := s.Servers["10.3.0.10:80"]
	if r == nil || r.Forward != fsm.DirectRoute || r.Weight != 1 || r.Upper != 0 || r.State != fsm.Active {
		t.Fatalf("after -e: server = %s, want droute, weight 1, no threshold, active", asJSON(r))
	}
	cfg = mustApply(t, cfg, "-d -t 10.0.0.1:80 -r 10.3.0.10:80", "-D -t 10.0.0.1:80")
	if len(cfg.Services) != 0 {
		t.Fatalf("after -d and -D: %s, want no services", asJSON(cfg.Services))
	}
}

func mustApply(t testing.TB, cfg *fsm.Config, lines ...string) *fsm.Config {
	t.Helper()
	for _, l := range lines {
		cmd, err := Parse(strings.Fields(l))
		if err != nil {
			t.Fatalf("Parse(%q): %v", l, err)
		}
		if cfg, err = fsm.ApplyOps(cfg, cmd.Ops); err != nil {
			t.Fatalf("apply %q: %v", l, err)
		}
	}
	return cfg
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{ActionOps: "ops", ActionList: "list", ActionSave: "save", ActionRestore: "restore", ActionZero: "zero", ActionHelp: "help", ActionVersion: "version", Action(42): "Action(42)"} {
		if a.String() != want {
			t.Errorf("Action(%d).String() = %q, want %q", int(a), a.String(), want)
		}
	}
}

func TestUsage(t *testing.T) {
	u := Usage("ipvsman")
	if !strings.Contains(u, "  ipvsman -A|E virtual-service") || strings.Contains(u, "$0") {
		t.Errorf("Usage does not name the program on every synopsis line:\n%s", u)
	}
}

func TestSetAndListTimeouts(t *testing.T) {
	cmd, err := Parse([]string{"--set", "900", "0", "60"})
	if err != nil {
		t.Fatal(err)
	}
	base := fsm.NewConfig()
	base.Timeouts = &fsm.Timeouts{TCP: 1, TCPFin: 100}
	cfg, err := fsm.ApplyOps(base, cmd.Ops)
	if err != nil {
		t.Fatal(err)
	}
	if *cfg.Timeouts != (fsm.Timeouts{TCP: 900, TCPFin: 100, UDP: 60}) {
		t.Fatalf("timeouts = %+v (0 must keep tcpfin)", *cfg.Timeouts)
	}
	l, err := Parse([]string{"-L", "--timeout"})
	if err != nil || !l.List.Timeouts {
		t.Fatalf("-L --timeout: %+v %v", l, err)
	}
	var b strings.Builder
	if err := FormatList(&b, Header{}, cfg, nil, l.List, nil); err != nil {
		t.Fatal(err)
	}
	if b.String() != "Timeout (tcp tcpfin udp): 900 100 60\n" {
		t.Fatalf("got %q", b.String())
	}
	b.Reset()
	FormatList(&b, Header{}, fsm.NewConfig(), nil, l.List, nil)
	if b.String() != "Timeout (tcp tcpfin udp): 900 120 300\n" {
		t.Fatalf("kernel defaults: got %q", b.String())
	}
}

// TestTunnelChecksInFsm: what parses but makes no sense for the encapsulation
// is refused by fsm when the op applies, so every input path gets the check.
func TestTunnelChecksInFsm(t *testing.T) {
	base := mustApply(t, fsm.NewConfig(), "-A -t 10.0.0.1:80")
	for _, tt := range []struct{ line, want string }{
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type gue", "tunnel type gue: needs a tunnel port"},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type gre --tun-port 9", "tunnel type gre: takes no tunnel port (9)"},
		{"-a -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-port 9", "ipip tunnels have no port or checksum option"},
	} {
		cmd, err := Parse(strings.Fields(tt.line))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.line, err)
		}
		if _, err := fsm.ApplyOps(base, cmd.Ops); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("apply %q: %v, want an error containing %q", tt.line, err, tt.want)
		}
	}
}

package topo

import (
	"fmt"
	"strconv"
	"strings"
)

// Addresses of the fixed layout.
const (
	ClientAddr  = "10.0.0.100"
	ClientAddr6 = "fd00::100"
	VIP         = "10.0.0.10" // on lo of every DR real server; the directors' service address
	VIP6        = "fd00::10"
	Gateway     = "10.1.0.1" // default route of the NAT real servers; held by the active director
	FrontNet    = "10.0.0.0/24"
	FrontNet6   = "fd00::/64"
	NATNet      = "10.1.0.0/24"

	// Client is the namespace name of the client.
	Client = "client"
	// Directors, RealServers and NATServers count each role in the
	// standard lab; indices are 1-based. Options.Directors adds d4 and d5
	// (up to MaxDirectors) for tests of five-node clusters.
	Directors    = 3
	RealServers  = 3
	NATServers   = 3
	MaxDirectors = 5

	// Ports that StartRealServers serves on.
	HTTPPort = 80
	EchoPort = 7
	DNSPort  = 53

	// DefaultPrefix prefixes every namespace and link name.
	DefaultPrefix = "lab-"
)

// Director, RealServer and NATServer return the namespace names (without
// prefix) of the i-th node: "d1", "rs1", "nat1". i runs from 1 to 3, and
// for directors to MaxDirectors (d4 and d5 exist only in a topology built
// with Options.Directors 4 or 5).
func Director(i int) string   { return "d" + index(i, MaxDirectors) }
func RealServer(i int) string { return "rs" + index(i, RealServers) }
func NATServer(i int) string  { return "nat" + index(i, NATServers) }

// Addresses of the i-th node, with the same ranges: d4 and d5 are
// 10.0.0.14-15, 10.1.0.14-15, fd00::14-15.
func DirectorAddr(i int) string    { return "10.0.0.1" + index(i, MaxDirectors) }
func DirectorAddr6(i int) string   { return "fd00::1" + index(i, MaxDirectors) }
func DirectorNATAddr(i int) string { return "10.1.0.1" + index(i, MaxDirectors) }
func RealServerAddr(i int) string  { return "10.0.0.2" + index(i, RealServers) }
func RealServerAddr6(i int) string { return "fd00::2" + index(i, RealServers) }
func NATServerAddr(i int) string   { return "10.1.0.2" + index(i, NATServers) }

func index(i, last int) string {
	if i < 1 || i > last {
		panic(fmt.Sprintf("topo: node index %d out of range 1..%d", i, last))
	}
	return strconv.Itoa(i)
}

// Namespaces lists every namespace name (without prefix) of the standard
// lab, three directors, in build order.
func Namespaces() []string { return namespaces(Directors) }

// namespaces is the build order with the given number of directors: the
// standard lab's, then d4 and d5.
func namespaces(directors int) []string {
	out := []string{Client}
	for i := 1; i <= 3; i++ {
		out = append(out, Director(i), RealServer(i), NATServer(i))
	}
	for i := 4; i <= directors; i++ {
		out = append(out, Director(i))
	}
	return out
}

// node is one namespace's configuration.
type node struct {
	name    string
	eth0    []string // addresses (CIDR) on eth0
	lo      []string // addresses on lo, after the sysctls
	sysctls []string
	gateway string
}

// layout is the fixed topology with the given number of directors (3 to
// MaxDirectors); see the package comment.
func layout(ipv6 bool, directors int) []node {
	v6 := func(cidr string) []string {
		if ipv6 {
			return []string{cidr}
		}
		return nil
	}
	// rp_filter off everywhere: the lab must not depend on what the host's
	// init namespace (whose IPv4 settings new namespaces inherit) has, and
	// tunnel-mode real servers receive packets on tunl0 whose reverse route
	// is eth0, which strict filtering drops.
	base := []string{
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
		"net.ipv4.conf.eth0.rp_filter=0", "net.ipv4.conf.lo.rp_filter=0",
	}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	director := func(i int) node {
		return node{
			name: Director(i),
			eth0: append([]string{DirectorAddr(i) + "/24", DirectorNATAddr(i) + "/24"}, v6(DirectorAddr6(i)+"/64")...),
			// Forwarding is what masquerading needs; one interface serves
			// both segments, so ICMP redirects ("go to 10.1.0.x directly")
			// would only mislead the real servers.
			sysctls: with("net.ipv4.ip_forward=1",
				"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0"),
		}
	}
	nodes := []node{{name: Client, eth0: append([]string{ClientAddr + "/24"}, v6(ClientAddr6+"/64")...), sysctls: base}}
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, director(i))
		nodes = append(nodes, node{
			name: RealServer(i),
			eth0: append([]string{RealServerAddr(i) + "/24"}, v6(RealServerAddr6(i)+"/64")...),
			lo:   append([]string{VIP + "/32"}, v6(VIP6+"/128")...),
			// Direct routing: the real server holds the VIP but must
			// neither answer ARP for it (arp_ignore) nor use it as the
			// source of its own ARP requests (arp_announce), or it would
			// steal the VIP from the director. Set before the VIP exists.
			sysctls: with("net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.eth0.arp_ignore=1",
				"net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.eth0.arp_announce=2"),
		})
		nodes = append(nodes, node{
			name:    NATServer(i),
			eth0:    []string{NATServerAddr(i) + "/24"},
			sysctls: base,
			gateway: Gateway,
		})
	}
	for i := 4; i <= directors; i++ {
		nodes = append(nodes, director(i))
	}
	return nodes
}

// nodad skips duplicate address detection on IPv6 addresses: the layout has
// no duplicates, and DAD would leave them unusable ("tentative") for a
// second or two.
func nodad(cidr string) string {
	if strings.Contains(cidr, ":") {
		return " nodad"
	}
	return ""
}

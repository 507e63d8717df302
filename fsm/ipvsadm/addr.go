package ipvsadm

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// LookupPort resolves a port name such as "http" for proto "tcp" or "udp",
// as ipvsadm does with getservbyname. It is a variable so that callers and
// tests can pin it; the default reads the system's services database and
// never touches DNS.
var LookupPort = net.LookupPort

// hostPort is an address argument split but not yet interpreted: the port
// of -r can only be resolved once the service (and so its protocol) is known.
type hostPort struct {
	addr    netip.Addr
	port    string
	hasPort bool
}

// splitAddr parses ipvsadm's host[:port] syntax: "10.0.0.1:80",
// "[2001:db8::1]:80", or a bare address. A bare IPv6 address has no port,
// as in ipvsadm, which tries the whole argument as IPv6 first.
func splitAddr(s string) (hostPort, error) {
	var host, port string
	hasPort := false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return hostPort{}, fmt.Errorf("missing ']' (want [address]:port)")
		}
		host = s[1:end]
		rest := s[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return hostPort{}, fmt.Errorf("want [address]:port")
		}
		port, hasPort = rest[1:], true
	default:
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			host = s
		} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port, hasPort = s[:i], s[i+1:], true
		} else {
			host = s
		}
	}
	a, err := parseNumericAddr(host)
	if err != nil {
		return hostPort{}, err
	}
	return hostPort{addr: a, port: port, hasPort: hasPort}, nil
}

// parseNumericAddr refuses host names: a command committed to the cluster
// must mean the same on every node, whatever their resolvers say.
func parseNumericAddr(host string) (netip.Addr, error) {
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q: want a numeric IPv4 or IPv6 address", host)
	}
	return a, nil
}

// resolvePort turns a port argument into a number: digits, or a service
// name looked up for the service's protocol (fwmark services are TCP to
// ipvsadm, which sets IPPROTO_TCP for -f).
func resolvePort(p string, proto fsm.Protocol) (uint16, error) {
	if p != "" && strings.Trim(p, "0123456789") == "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("port %q: out of range 0-65535", p)
		}
		return uint16(n), nil
	}
	pname := "tcp"
	if proto == fsm.UDP || proto == fsm.SCTP {
		pname = string(proto)
	}
	if p == "" || LookupPort == nil {
		return 0, fmt.Errorf("port %q: want a number or a %s service name", p, pname)
	}
	n, err := LookupPort(pname, p)
	if err != nil {
		return 0, fmt.Errorf("port %q: not a number nor a known %s service: %w", p, pname, err)
	}
	if n < 0 || n > 65535 {
		return 0, fmt.Errorf("port %q: resolves to %d, out of range 0-65535", p, n)
	}
	return uint16(n), nil
}

// parseServiceArg interprets -t/-u host[:port]; a missing port is 0, which
// fsm accepts only for persistent services (ipvsadm's rule).
func parseServiceArg(t token, proto fsm.Protocol) (fsm.ServiceKey, bool, error) {
	hp, err := splitAddr(t.value)
	if err != nil {
		return fsm.ServiceKey{}, false, fmt.Errorf("%s: %w", t.label(), err)
	}
	// Unmapped here, not only in fsm.NormalizeService, because ops other
	// than -A/-E look the service up by this key as given.
	k := fsm.ServiceKey{Protocol: proto, Address: hp.addr.Unmap()}
	if hp.hasPort {
		if k.Port, err = resolvePort(hp.port, proto); err != nil {
			return fsm.ServiceKey{}, false, fmt.Errorf("%s: %w", t.label(), err)
		}
	}
	return k, hp.hasPort, nil
}

func parseMark(t token) (uint32, error) {
	n, err := strconv.ParseUint(t.value, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s: want a firewall mark, a number from 1 to 4294967295", t.label())
	}
	return uint32(n), nil
}

// parseNetmask canonicalizes -M for the service's family and maps the host
// mask to "", the model's spelling of "no granularity".
func parseNetmask(t token, fam6 bool) (string, error) {
	if fam6 {
		n, err := strconv.Atoi(t.value)
		if err != nil {
			return "", fmt.Errorf("%s: want an IPv6 prefix length", t.label())
		}
		if n == 128 {
			return "", nil
		}
		return strconv.Itoa(n), nil
	}
	a, err := netip.ParseAddr(t.value)
	if err != nil || !a.Is4() {
		return "", fmt.Errorf("%s: want a dotted IPv4 netmask", t.label())
	}
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "", nil
	}
	return a.String(), nil
}

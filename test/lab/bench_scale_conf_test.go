//go:build lab && labbench

package lab

// The configuration bench-scale writes: the same services and real servers
// for ipvsman (an fsm.Config sent as one apply) and for keepalived (its
// configuration file), with the same checked subset.

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

const (
	scRoute     = "10.201.0.0/16" // the real servers' addresses: a route on each director's eth0 makes them unicast
	scFirstPort = 20000           // the responder's first HTTP port
	scInterval  = 6000            // ms, the checks' interval (keepalived's delay_loop 6)
	scTimeout   = 5000            // ms, keepalived's default connect_timeout, on both sides
)

// scShape is the generated configuration: services 10.200.x.y:80 (wlc),
// servers real servers in all, spread as evenly as they go (2,277 services
// and 37,205 servers: 16 or 17 each), every one at its own address in
// 10.201.0.0/16, direct routing; checks of them carry an HTTP check, spread
// evenly over all of them, each aimed at its own port of the responder.
type scShape struct {
	services, servers, checks int
}

func scServiceAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 200, byte(i / 250), byte(i%250 + 1)})
}

func scServerAddr(k int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 201, byte(k / 250), byte(k%250 + 1)})
}

// scServer is one generated real server; port is its check's port on the
// responder, 0 when it has no check.
type scServer struct {
	addr   netip.Addr
	weight int
	port   int
}

// each calls f for every service with its real servers.
func (s scShape) each(f func(i int, key fsm.ServiceKey, servers []scServer)) {
	per, extra := s.servers/s.services, s.servers%s.services
	k, checked := 0, 0
	for i := range s.services {
		n := per
		if i < extra {
			n++
		}
		var rs []scServer
		for j := range n {
			srv := scServer{addr: scServerAddr(k), weight: 1 + (i+j)%5}
			// Server k is checked when the even spread of checks over
			// servers steps past it.
			if (k+1)*s.checks/s.servers > k*s.checks/s.servers {
				srv.port = scFirstPort + checked
				checked++
			}
			rs = append(rs, srv)
			k++
		}
		f(i, fsm.ServiceKey{Protocol: fsm.TCP, Address: scServiceAddr(i), Port: 80}, rs)
	}
}

func (s scShape) config() *fsm.Config {
	cfg := fsm.NewConfig()
	s.each(func(_ int, key fsm.ServiceKey, servers []scServer) {
		svc := &fsm.Service{Key: key, Scheduler: "wlc", Servers: map[string]*fsm.RealServer{}}
		for _, srv := range servers {
			rs := &fsm.RealServer{Address: srv.addr, Port: 80, Forward: fsm.DirectRoute, Weight: srv.weight, State: fsm.Active}
			if srv.port != 0 {
				rs.Check = &fsm.HealthCheck{Type: "http", IntervalMS: scInterval, TimeoutMS: scTimeout,
					Address: netip.MustParseAddr(topo.RealServerAddr(1)), Port: uint16(srv.port), Path: "/", Status: []int{200}}
			}
			svc.Servers[rs.Key()] = rs
		}
		cfg.Services[key.String()] = svc
	})
	return cfg
}

// keepalived is the same configuration for keepalived's checker, with the
// weights of cfg (which the weight changes have touched).
func (s scShape) keepalived(cfg *fsm.Config) string {
	var b strings.Builder
	b.WriteString("global_defs {\n    router_id bench-scale\n}\n")
	s.each(func(_ int, key fsm.ServiceKey, servers []scServer) {
		svc := cfg.Services[key.String()]
		fmt.Fprintf(&b, "virtual_server %s %d {\n    delay_loop %d\n    lb_algo wlc\n    lb_kind DR\n    protocol TCP\n",
			key.Address, key.Port, scInterval/1000)
		for _, srv := range servers {
			rs := svc.Servers[netip.AddrPortFrom(srv.addr, 80).String()]
			fmt.Fprintf(&b, "    real_server %s 80 {\n        weight %d\n", srv.addr, rs.Weight)
			if srv.port != 0 {
				fmt.Fprintf(&b, "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n"+
					"            connect_ip %s\n            connect_port %d\n            connect_timeout %d\n        }\n",
					topo.RealServerAddr(1), srv.port, scTimeout/1000)
			}
			b.WriteString("    }\n")
		}
		b.WriteString("}\n")
	})
	return b.String()
}

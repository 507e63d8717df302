package migrate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// TestIpvsadmRoundTrip: for many generated configs (TCP, UDP, IPv6,
// fwmark of both families, persistence with netmasks, scheduler flags,
// one-packet, thresholds, every forwarding method and tunnel type), the
// `ipvsadm -S` text FormatSave writes imports back to an equal config,
// with nothing unmapped.
func TestIpvsadmRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 2026)) // fixed: a failure reproduces
	seen := map[string]int{}
	for i := range 300 {
		cfg := randomConfig(rng)
		for _, s := range cfg.Services {
			seen[string(s.Key.Protocol)+"/"+s.Key.Family()]++
			for _, r := range s.Servers {
				seen[string(r.Forward)+string(r.TunnelType)]++
				if r.Upper > 0 {
					seen["thresholds"]++
				}
			}
		}
		var save bytes.Buffer
		if err := ipvsadm.FormatSave(&save, cfg, true, nil); err != nil {
			t.Fatal(err)
		}
		res, err := FromIpvsadm("save", save.Bytes())
		if err != nil {
			t.Fatalf("config %d: %v\n%s", i, err, save.String())
		}
		if len(res.Unmapped) != 0 {
			t.Fatalf("config %d: unmapped %v\n%s", i, res.Unmapped, save.String())
		}
		var again bytes.Buffer
		if err := ipvsadm.FormatSave(&again, res.Config, true, nil); err != nil {
			t.Fatal(err)
		}
		if again.String() != save.String() {
			t.Fatalf("config %d: -S differs\n got %s\nwant %s", i, again.String(), save.String())
		}
		if g, w := jsonOf(t, res.Config), jsonOf(t, cfg); g != w {
			t.Fatalf("config %d: model differs\n got %s\nwant %s", i, g, w)
		}
	}
	// The generator must reach every kind it claims to.
	for _, k := range []string{"tcp/inet", "tcp/inet6", "udp/inet6", "fwmark/inet", "fwmark/inet6", "droute", "masq", "tunnel", "tunnelgue", "tunnelgre", "thresholds"} {
		if seen[k] < 5 {
			t.Errorf("generated only %d of %s: %v", seen[k], k, seen)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// randomConfig builds a config through fsm.ApplyOps, so it holds only what
// the model accepts; ops the model refuses are skipped.
func randomConfig(rng *rand.Rand) *fsm.Config {
	cfg := fsm.NewConfig()
	for range 1 + rng.IntN(6) {
		svc := randomService(rng)
		next, err := fsm.ApplyOps(cfg, []fsm.Op{{Kind: fsm.OpAddService, Service: svc}})
		if err != nil {
			continue
		}
		cfg = next
		for range rng.IntN(5) {
			op := fsm.Op{Kind: fsm.OpAddServer, ServiceKey: svc.Key, Server: randomServer(rng, svc.Key)}
			if next, err := fsm.ApplyOps(cfg, []fsm.Op{op}); err == nil {
				cfg = next
			}
		}
	}
	return cfg
}

func randomService(rng *rand.Rand) *fsm.Service {
	six := rng.IntN(2) == 0
	var k fsm.ServiceKey
	switch rng.IntN(3) {
	case 0:
		k = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: uint32(1 + rng.IntN(1000)), IPv6: six}
	case 1:
		k = fsm.ServiceKey{Protocol: fsm.UDP, Address: randomAddr(rng, six, 192), Port: uint16(1 + rng.IntN(65535))}
	default:
		k = fsm.ServiceKey{Protocol: fsm.TCP, Address: randomAddr(rng, six, 192), Port: uint16(rng.IntN(3) * 443)}
	}
	s := &fsm.Service{Key: k, Scheduler: fsm.Schedulers[rng.IntN(len(fsm.Schedulers))]}
	if rng.IntN(2) == 0 || k.Port == 0 && k.Protocol != fsm.FWMark {
		s.Persistence = &fsm.Persistence{Timeout: uint32(1 + rng.IntN(fsm.MaxPersistence))}
		if rng.IntN(2) == 0 {
			if k.Family() == "inet6" {
				s.Persistence.Netmask = fmt.Sprint(1 + rng.IntN(128))
			} else {
				s.Persistence.Netmask = netip.AddrFrom4([4]byte{255, 255, byte(0xff << rng.IntN(8)), 0}).String()
			}
		}
	}
	if s.Scheduler == "sh" || s.Scheduler == "mh" {
		s.Flags = []string{s.Scheduler + "-port"}
		if rng.IntN(2) == 0 {
			s.Flags = append(s.Flags, s.Scheduler+"-fallback")
		}
	}
	s.OnePacket = k.Protocol != fsm.TCP && rng.IntN(2) == 0
	return s
}

func randomServer(rng *rand.Rand, k fsm.ServiceKey) *fsm.RealServer {
	six := k.Family() == "inet6"
	r := &fsm.RealServer{Weight: rng.IntN(fsm.MaxWeight + 1)}
	switch rng.IntN(3) {
	case 0:
		r.Forward = fsm.DirectRoute
	case 1:
		r.Forward = fsm.Masquerade
		r.Port = uint16(rng.IntN(65536))
	default:
		r.Forward = fsm.Tunnel
		six = rng.IntN(2) == 0 // tunnels may cross families
		switch rng.IntN(3) {
		case 1:
			r.TunnelType, r.TunnelPort = fsm.TunnelGUE, uint16(1+rng.IntN(65535))
			r.TunnelCsum = []fsm.TunnelCsum{"", fsm.TunnelCsumOn, fsm.TunnelRemCsum}[rng.IntN(3)]
		case 2:
			r.TunnelType = fsm.TunnelGRE
			r.TunnelCsum = []fsm.TunnelCsum{"", fsm.TunnelCsumOn}[rng.IntN(2)]
		}
	}
	r.Address = randomAddr(rng, six, 10)
	if rng.IntN(2) == 0 {
		r.Upper = uint32(rng.IntN(10000))
		r.Lower = uint32(rng.IntN(int(r.Upper) + 1))
	}
	return r
}

func randomAddr(rng *rand.Rand, six bool, first byte) netip.Addr {
	if six {
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		b[14], b[15] = byte(rng.IntN(256)), byte(1+rng.IntN(254))
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{first, 0, byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
}

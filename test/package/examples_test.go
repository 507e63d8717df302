// Package packagetest checks what `make package` ships: this file, that
// every topology example parses as the cluster would take it; package_test.sh
// builds the .deb and installs it into fresh roots.
package packagetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/topology"
)

const examplesDir = "../../examples"

// TestExamplesParse: every topology file in examples/ (not examples/import/,
// whose files are inputs of other tools) parses and validates. The package
// ships them as documentation; one that fails would teach the wrong syntax.
func TestExamplesParse(t *testing.T) {
	entries, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !isTopology(name) {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(examplesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := topology.Parse(name, data)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if len(cfg.Services) == 0 {
				t.Errorf("%s: no services: an example should show some", name)
			}
		})
	}
	if n < 2 {
		t.Fatalf("examples/: %d topology files, want web-farm.yaml and classic-lvs.topo at least", n)
	}
}

func isTopology(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".topo":
		return true
	}
	return false
}

// TestWebFarmShowsEverything: web-farm.yaml is the example the README
// points to for every feature; it must keep showing each one.
func TestWebFarmShowsEverything(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(examplesDir, "web-farm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := topology.Parse("web-farm.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{}
	var sorry, ipv6, fwmark, udp bool
	forwards := map[fsm.Forward]bool{}
	states := map[fsm.ServerState]bool{}
	for _, svc := range cfg.Services {
		if svc.Check != nil {
			checks[svc.Check.Type] = true
		}
		sorry = sorry || svc.Sorry != nil
		fwmark = fwmark || svc.Key.Protocol == fsm.FWMark
		udp = udp || svc.Key.Protocol == fsm.UDP
		ipv6 = ipv6 || (svc.Key.Address.Is6())
		for _, r := range svc.Servers {
			forwards[r.Forward] = true
			states[r.State] = true
		}
	}
	for _, typ := range []string{"http", "https", "dns", "tcp"} {
		if !checks[typ] {
			t.Errorf("no service with a %s check", typ)
		}
	}
	for what, ok := range map[string]bool{"a sorry server": sorry, "an IPv6 service": ipv6, "a fwmark service": fwmark, "a UDP service": udp,
		"VIPs": len(cfg.VIPs) > 0, "sync settings": cfg.Sync != nil, "timeouts": cfg.Timeouts != nil} {
		if !ok {
			t.Errorf("web-farm.yaml shows no %s", what)
		}
	}
	if len(forwards) < 2 {
		t.Errorf("forwarding methods %v: want masquerading and direct routing", forwards)
	}
	if len(states) < 3 {
		t.Errorf("server states %v: want active, suspended and draining", states)
	}
}

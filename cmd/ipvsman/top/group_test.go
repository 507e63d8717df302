package top

import (
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// A grouped service's row shows, once selected, the virtual services it
// is also served on; the screen still fits and the rows stay the model's.
func TestGroupShownOnTheServiceRow(t *testing.T) {
	f := threeByFour(t)
	cfg, err := fsm.ApplyOps(f.cfg, []fsm.Op{{Kind: fsm.OpGroupAdd, ServiceKey: f.cfg.Services[web].Key,
		Group: []fsm.ServiceKey{{Protocol: fsm.TCP, Address: addr("10.0.0.2"), Port: 80}, {Protocol: fsm.FWMark, Mark: 7}}}})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	m := newTest(t, f)
	press(m, "k") // from the first real server up to its service
	v := m.View()
	fits(t, v, 80, 24)
	if !strings.Contains(v, "tcp:10.0.0.1:80: 4 real servers") || !strings.Contains(v, "also on fwmark:7, tcp:10.0.0.2:80") {
		t.Errorf("the service row selected:\n%s", v)
	}
}

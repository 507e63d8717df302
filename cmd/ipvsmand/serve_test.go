package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func TestVIPLinks(t *testing.T) {
	st := fsm.NewState()
	st.Config.VIPs["10.0.0.10/32"] = fsm.VIP{Prefix: netip.MustParsePrefix("10.0.0.10/32"), Interface: "eth0", Interfaces: map[string]string{"d2": "bond0"}}
	st.Config.VIPs["10.0.0.11/32"] = fsm.VIP{Prefix: netip.MustParsePrefix("10.0.0.11/32"), Interface: "eth0"}
	if got := strings.Join(vipLinks(st, "d1", []string{"eth2"}), " "); got != "eth0 eth2" {
		t.Errorf("d1: %q, want eth0 eth2", got)
	}
	if got := strings.Join(vipLinks(st, "d2", nil), " "); got != "bond0 eth0" {
		t.Errorf("d2: %q, want bond0 eth0", got)
	}
}

func TestTrackFlagsAreChecked(t *testing.T) {
	good := trackOptions{interval: 200 * time.Millisecond, fall: 3, rise: 2, addrs: []string{"10.0.0.1", "fd00::1"}}
	if err := checkTrack(good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		change func(*trackOptions)
		want   string
	}{
		{func(o *trackOptions) { o.addrs = []string{"gateway"} }, `--track-address "gateway"`},
		{func(o *trackOptions) { o.addrs = []string{"0.0.0.0"} }, `--track-address "0.0.0.0"`},
		{func(o *trackOptions) { o.interval = time.Millisecond }, "--track-interval 1ms"},
		{func(o *trackOptions) { o.fall = 0 }, "--track-fall 0"},
		{func(o *trackOptions) { o.rise = 101 }, "--track-rise 101"},
	} {
		o := good
		tc.change(&o)
		if err := checkTrack(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %s", err, tc.want)
		}
	}
}

func TestKernelReady(t *testing.T) {
	if ok, why := kernelReady(0); !ok || why != "" {
		t.Errorf("no failure: %v %q", ok, why)
	}
	if ok, why := kernelReady(2); ok || why != "kernel table: 2 operations failing" {
		t.Errorf("two failures: %v %q", ok, why)
	}
}

//go:build lab

package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
)

// TestNetlinkBatch: a batch of several windows' worth of requests, with two
// that the kernel refuses in the middle (a destination of a service that
// does not exist, and one added twice), gets each refusal at its own
// position with the kernel's errno, every other request done, and the
// table read back through ipvsnl and ipvsadm as the requests say.
func TestNetlinkBatch(t *testing.T) {
	c := nlSetup(t)
	s := ipvsnl.Service{Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("192.0.2.20"), Port: 80, Sched: "wrr"}
	missing := ipvsnl.Service{Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("192.0.2.21"), Port: 80, Sched: "wrr"}
	dest := func(i int) ipvsnl.Dest {
		return ipvsnl.Dest{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i%100)}), Port: uint16(8000 + i), FwdMethod: ipvsnl.FwdMasq, Weight: 1}
	}
	const n = 150
	var b ipvsnl.Batch
	b.NewService(s)
	want := map[int]syscall.Errno{}
	for i := range n {
		b.NewDest(s, dest(i))
		switch b.Len() - 1 {
		case 70:
			b.NewDest(missing, dest(0))
			want[b.Len()-1] = syscall.ESRCH
		case 140:
			b.NewDest(s, dest(3))
			want[b.Len()-1] = syscall.EEXIST
		}
	}
	for i := range 10 {
		d := dest(i)
		d.Weight = 7
		b.UpdateDest(s, d)
	}
	for i := n - 5; i < n; i++ {
		b.DelDest(s, dest(i))
	}
	t.Cleanup(func() { _ = c.DelService(s) })
	errs := c.Run(&b)
	if len(errs) != b.Len() {
		t.Fatalf("%d results for %d requests", len(errs), b.Len())
	}
	for i, err := range errs {
		w, refused := want[i]
		switch {
		case refused && !errors.Is(err, w):
			t.Errorf("request %d: %v, want %v", i, err, w)
		case !refused && err != nil:
			t.Errorf("request %d: %v", i, err)
		}
	}
	got := nlDests(t, c, s)
	if len(got) != n-5 {
		t.Errorf("%d destinations read back, want %d", len(got), n-5)
	}
	for i := range n {
		d, ok := got[dest(i).String()]
		switch {
		case i >= n-5 && ok:
			t.Errorf("%s deleted in the batch but still there", dest(i))
		case i < n-5 && !ok:
			t.Errorf("%s added in the batch but missing", dest(i))
		case i < 10 && d.Weight != 7, i >= 10 && i < n-5 && d.Weight != 1:
			t.Errorf("%s weight %d after the batch", dest(i), d.Weight)
		}
	}
	out := nlCmd(t, "ipvsadm", "-L", "-n", "-t", netip.AddrPortFrom(s.Addr, s.Port).String())
	if lines := strings.Count(out, "  -> ") - 1; lines != n-5 { // less the header line
		t.Errorf("ipvsadm lists %d destinations, want %d:\n%s", lines, n-5, out)
	}
	if all, err := c.Services(); err != nil || strings.Contains(fmt.Sprint(all), missing.String()) {
		t.Errorf("services after the batch: %v (err %v): the missing service must not exist", all, err)
	}
}

// TestNetlinkBatchRefusals: the kernel answers a batched request only when
// it refuses it, and acknowledges the last of each window. A batch of
// several windows where every request is refused (each destination added a
// second time) gets every refusal at its own position, none lost to the
// socket's buffer and none reported as unknown; and a batch whose very
// last request is the refused one reports it so, with every earlier
// request done.
func TestNetlinkBatchRefusals(t *testing.T) {
	c := nlSetup(t)
	s := ipvsnl.Service{Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("192.0.2.22"), Port: 80, Sched: "wlc"}
	dest := func(i int) ipvsnl.Dest {
		return ipvsnl.Dest{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i%100)}), Port: uint16(9000 + i), FwdMethod: ipvsnl.FwdMasq, Weight: 1}
	}
	const n = 700
	t.Cleanup(func() { _ = c.DelService(s) })
	var first ipvsnl.Batch
	first.NewService(s)
	for i := range n {
		first.NewDest(s, dest(i))
	}
	for i, err := range c.Run(&first) {
		if err != nil {
			t.Fatalf("first batch, request %d: %v", i, err)
		}
	}
	var again ipvsnl.Batch
	for i := range n {
		again.NewDest(s, dest(i))
	}
	refused := 0
	for i, err := range c.Run(&again) {
		if errors.Is(err, syscall.EEXIST) && strings.Contains(err.Error(), dest(i).String()) {
			refused++
		} else {
			t.Errorf("second batch, request %d: %v, want %v naming %s", i, err, syscall.EEXIST, dest(i))
		}
	}
	if refused != n {
		t.Fatalf("%d of %d duplicate adds refused", refused, n)
	}

	var tail ipvsnl.Batch
	for i := range 9 {
		d := dest(i)
		d.Weight = 5
		tail.UpdateDest(s, d)
	}
	tail.NewDest(s, dest(0))
	errs := c.Run(&tail)
	for i, err := range errs[:9] {
		if err != nil {
			t.Errorf("third batch, request %d: %v", i, err)
		}
	}
	if !errors.Is(errs[9], syscall.EEXIST) {
		t.Errorf("third batch, last request: %v, want %v", errs[9], syscall.EEXIST)
	}
	got := nlDests(t, c, s)
	for i := range n {
		w := uint32(1)
		if i < 9 {
			w = 5
		}
		if d, ok := got[dest(i).String()]; !ok || d.Weight != w {
			t.Errorf("%s: present %v, weight %d, want weight %d", dest(i), ok, d.Weight, w)
		}
	}
	if len(got) != n {
		t.Errorf("%d destinations read back, want %d", len(got), n)
	}
}

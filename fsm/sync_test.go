package fsm

import (
	"net/netip"
	"strings"
	"testing"
)

func TestSyncDefaults(t *testing.T) {
	got := SyncOf(NewConfig())
	want := Sync{ID: 1, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
	if got != want {
		t.Fatalf("SyncOf(no settings) = %+v, want %+v", got, want)
	}
	c := NewConfig()
	c.Sync = &Sync{ID: 7, Group: netip.MustParseAddr("ff02::81"), Port: 9000, TTL: 3, MaxLen: 1400}
	if got := SyncOf(c); got != *c.Sync {
		t.Fatalf("SyncOf(set) = %+v, want them as set", got)
	}
	if d := SyncOf(c).Describe(); d != "id 7 group ff02::81 port 9000 ttl 3 max_len 1400" {
		t.Errorf("Describe = %q", d)
	}
}

func TestSetSync(t *testing.T) {
	c := NewConfig()
	n, err := ApplyOps(c, []Op{{Kind: OpSetSync, Sync: &Sync{ID: 9}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sync != nil || n.Sync == nil || n.Sync.ID != 9 {
		t.Fatalf("before %+v, after %+v: want the copy changed, not the original", c.Sync, n.Sync)
	}
	if d := DiffConfig(c, n); len(d) != 1 || d[0] != "~ connection sync id 1 group 224.0.0.81 port 8848 ttl 1 max_len mtu => id 9 group 224.0.0.81 port 8848 ttl 1 max_len mtu" {
		t.Errorf("diff = %q", d)
	}
	off, err := ApplyOps(n, []Op{{Kind: OpSetSync, Sync: &Sync{Off: true}}})
	if err != nil || SyncOf(off).Describe() != "off" {
		t.Fatalf("off: %+v, %v", off.Sync, err)
	}
	if c := n.Clone(); c.Sync == n.Sync || *c.Sync != *n.Sync {
		t.Error("Clone shares or loses the sync settings")
	}
	for _, tc := range []struct {
		s    *Sync
		want string
	}{
		{nil, "set-sync: sync: missing"},
		{&Sync{Group: netip.MustParseAddr("10.0.0.1")}, "sync group 10.0.0.1: not a multicast group"},
		{&Sync{MaxLen: 100}, "sync max_len 100: want 0 (the interface's MTU) or 256 or more"},
	} {
		_, err := ApplyOps(n, []Op{{Kind: OpSetSync, Sync: tc.s}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("set-sync %+v: err %v, want %q", tc.s, err, tc.want)
		}
	}
	bad := NewConfig()
	bad.Sync = &Sync{Group: netip.MustParseAddr("10.0.0.1")}
	if err := ValidateConfig(bad); err == nil {
		t.Error("ValidateConfig took a unicast sync group")
	}
}

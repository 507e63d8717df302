package migrate

import (
	"testing"
)

// keepalived's quorum and hysteresis map onto the service's; a hysteresis
// at or above the quorum (keepalived's default quorum 1 included) cannot,
// and is listed with the reason; quorum_up and quorum_down are hooks.
func TestKeepalivedQuorum(t *testing.T) {
	for _, tc := range []struct {
		name, lines string
		q, h        int
		listed      string // a keyword listed as not imported
	}{
		{"quorum and hysteresis", "quorum 3\nhysteresis 1\n", 3, 1, ""},
		{"quorum alone", "quorum 2\n", 2, 0, ""},
		{"hysteresis alone: keepalived's quorum 1", "hysteresis 1\n", 0, 0, "hysteresis"},
		{"hysteresis at the quorum", "hysteresis 2\nquorum 2\n", 2, 0, "hysteresis"},
		{"hooks", "quorum 2\nquorum_up /bin/up\nquorum_down /bin/down\n", 2, 0, "quorum_down"},
	} {
		res := ka(t, "virtual_server 10.0.0.1 80 {\nprotocol TCP\n"+tc.lines+"real_server 10.0.1.1 80 {\n}\n}\n")
		svc := res.Config.Services["tcp:10.0.0.1:80"]
		if svc == nil || svc.Quorum != tc.q || svc.Hysteresis != tc.h {
			t.Errorf("%s: %+v, want quorum %d hysteresis %d", tc.name, svc, tc.q, tc.h)
			continue
		}
		if tc.listed != "" && !hasItem(res, tc.listed, "") {
			t.Errorf("%s: %s not listed: %v", tc.name, tc.listed, res.Unmapped)
		}
		if tc.listed == "" && len(res.Unmapped) != 0 {
			t.Errorf("%s: listed %v", tc.name, res.Unmapped)
		}
	}
	if res := ka(t, "virtual_server 10.0.0.1 80 {\nprotocol TCP\nquorum 2\nquorum_up /bin/up\nreal_server 10.0.1.1 80 {\n}\n}\n"); !hasItem(res, "quorum_up", "--notify-quorum-up") {
		t.Errorf("quorum_up: %v", res.Unmapped)
	}
}

// ldirectord's checkcount retries a ping check's ping: the icmp check's
// fall is failurecount x checkcount. Other checks ignore it, as
// ldirectord does, and the import says so.
func TestLdirectordCheckcount(t *testing.T) {
	for _, tc := range []struct {
		name, global, section string
		fall                  int
		listed                bool
	}{
		{"ping, global", "checkcount=3\n", "\tchecktype=ping\n", 3, false},
		{"ping, with failurecount", "checkcount=3\nfailurecount=2\n", "\tchecktype=ping\n", 6, false},
		{"ping, the section's overrides", "checkcount=3\n", "\tchecktype=ping\n\tcheckcount=4\n", 4, false},
		{"ping, capped", "checkcount=60\nfailurecount=2\n", "\tchecktype=ping\n", 100, true},
		{"connect ignores it", "checkcount=3\n", "\tchecktype=connect\n", 1, true},
	} {
		res, err := FromLdirectord("l.cf", []byte(tc.global+"virtual=10.0.0.1:80\n\treal=10.0.1.1:80 gate\n\tprotocol=tcp\n"+tc.section))
		if err != nil {
			t.Fatal(err)
		}
		svc := res.Config.Services["tcp:10.0.0.1:80"]
		if svc == nil || svc.Check == nil || svc.Check.Fall != tc.fall {
			t.Errorf("%s: %+v, want a check with fall %d", tc.name, svc, tc.fall)
			continue
		}
		if got := hasItem(res, "checkcount", ""); got != tc.listed {
			t.Errorf("%s: checkcount listed %v, want %v: %v", tc.name, got, tc.listed, res.Unmapped)
		}
	}
}

// A count that is not one says it wants a number, not seconds.
func TestLdirectordCountsAreNotSeconds(t *testing.T) {
	for _, key := range []string{"checkcount", "failurecount"} {
		res, err := FromLdirectord("l.cf", []byte(key+"=0\nvirtual=10.0.0.1:80\n\treal=10.0.1.1:80 gate\n\tprotocol=tcp\n\tchecktype=ping\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !hasItem(res, key, "want a whole number, 1 or more") {
			t.Errorf("%s=0: listed %v, want %q", key, res.Unmapped, "want a whole number, 1 or more")
		}
	}
}

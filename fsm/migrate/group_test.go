package migrate

import (
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// A virtual_server_group of three addresses with two real servers is ONE
// service, keyed by the first, with a group of two: one check per real
// server, as keepalived runs them. The report says so in a note, not as
// something left out.
func TestKeepalivedGroupIsOneService(t *testing.T) {
	res := ka(t, `virtual_server_group WEB {
    10.0.0.1 80
    10.0.0.2 80
    10.0.0.3 80
}
virtual_server group WEB {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.3.0.1 80 {
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
        }
    }
    real_server 10.3.0.2 80 {
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
        }
    }
}
`)
	if len(res.Config.Services) != 1 {
		t.Fatalf("services %v, want one", res.Config.SortedServiceKeys())
	}
	svc := res.Config.Services["tcp:10.0.0.1:80"]
	if svc == nil || len(svc.Servers) != 2 || svc.Check == nil || svc.Check.Type != "http" {
		t.Fatalf("service %+v", svc)
	}
	if got := describe(svc.Group); got != "tcp:10.0.0.2:80 tcp:10.0.0.3:80" {
		t.Fatalf("group %s", got)
	}
	if len(res.Unmapped) != 0 {
		t.Errorf("not imported: %v", res.Unmapped)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0].String(), "k.conf:6: virtual_server group WEB: one service tcp:10.0.0.1:80 served on 2 more virtual services (its group: tcp:10.0.0.2:80, tcp:10.0.0.3:80), one check per real server") {
		t.Errorf("notes %v", res.Notes)
	}
}

// Members that a shared destination list cannot serve as keepalived would
// are services of their own, each listed: a masquerading server without a
// port follows each member's port. A member that is a service of its own
// elsewhere leaves the group, listed.
func TestKeepalivedGroupMembersThatCannotJoin(t *testing.T) {
	res := ka(t, `virtual_server_group MAIL {
    10.0.0.1 25
    10.0.0.1 587
    10.0.0.2 25
    10.0.0.9 25
}
virtual_server group MAIL {
    lb_kind NAT
    protocol TCP
    real_server 10.3.0.5 {
    }
}
virtual_server 10.0.0.9 25 {
    protocol TCP
    real_server 10.3.0.6 25 {
    }
}
`)
	if got := res.Config.SortedServiceKeys(); strings.Join(got, " ") != "tcp:10.0.0.1:25 tcp:10.0.0.1:587 tcp:10.0.0.9:25" {
		t.Fatalf("services %v", got)
	}
	if got := describe(res.Config.Services["tcp:10.0.0.1:25"].Group); got != "tcp:10.0.0.2:25" {
		t.Errorf("group %s", got)
	}
	if s := res.Config.Services["tcp:10.0.0.1:587"]; s.Servers["10.3.0.5:587"] == nil {
		t.Errorf("the 587 service's server %v: want port 587, as keepalived programs it", s.Servers)
	}
	if !hasItem(res, "virtual_server", "group member tcp:10.0.0.1:587: a service of its own") {
		t.Errorf("the 587 member is not listed: %v", res.Unmapped)
	}
	if !hasItem(res, "virtual_server", "group member tcp:10.0.0.9:25 not imported: also a service of its own (k.conf:13)") {
		t.Errorf("the clashing member is not listed: %v", res.Unmapped)
	}
}

func describe(keys []fsm.ServiceKey) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.String()
	}
	return strings.Join(s, " ")
}

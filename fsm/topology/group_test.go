package topology

import (
	"strings"
	"testing"
)

const groupLines = `Web:t:10.0.0.1:80 ["web1-2:10.3.0.10+"] pool ["spare:10.3.0.20"] group ["t:10.0.0.2:80", "t:10.0.0.3:443","f:7"] (-s wrr -p)
DNS:u:[2001:db8::53]:53 ["ns:[2001:db8::10]"] group["u:[2001:db8::54]:53"]
`

const groupYAML = `services:
  - name: Web
    protocol: tcp
    address: 10.0.0.1
    port: 80
    group: [tcp:10.0.0.3:443, fwmark:7, tcp:10.0.0.2:80]
    scheduler: wrr
    persistence: {}
    servers:
      - {name: web1, address: 10.3.0.10}
      - {name: web2, address: 10.3.0.11}
    pool:
      - {name: spare, address: 10.3.0.20}
  - name: DNS
    protocol: udp
    address: 2001:db8::53
    port: 53
    group: ['udp:[2001:db8::54]:53']
    servers:
      - {name: ns, address: 2001:db8::10}
`

// Both forms say a group, give the same configuration, and an export
// reads back to it.
func TestBothFormsSayGroup(t *testing.T) {
	lines, err := ParseLines(strings.NewReader(groupLines))
	if err != nil {
		t.Fatal(err)
	}
	web := lines.Services["tcp:10.0.0.1:80"]
	if len(lines.Services) != 2 || len(web.Group) != 3 || web.Group[0].String() != "fwmark:7" || len(web.Pool) != 1 {
		t.Fatalf("services %v, Web group %v", lines.SortedServiceKeys(), web.Group)
	}
	y := mustYAML(t, groupYAML)
	if a, b := jsonOf(t, lines), jsonOf(t, y); a != b {
		t.Errorf("the forms differ:\n%s\n---\n%s", a, b)
	}
	out, err := MarshalYAML(y)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "group: ['fwmark:7', 'tcp:10.0.0.2:80', 'tcp:10.0.0.3:443']") {
		t.Errorf("export:\n%s", out)
	}
	if again := mustYAML(t, string(out)); jsonOf(t, again) != jsonOf(t, y) {
		t.Errorf("the export reads back differently:\n%s", out)
	}
}

// Every problem names the line, the member and why.
func TestGroupErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ form, in, want string }{
		{"lines", `A:t:10.0.0.1:80 group ["t:10.0.0.1:80"]`, `line 1: service "A:t:10.0.0.1:80": service tcp:10.0.0.1:80 group member tcp:10.0.0.1:80: the service's own key`},
		{"lines", `A:t:10.0.0.1:80 group ["t:[2001:db8::1]:80"]`, "address family inet6 differs from the service's inet"},
		{"lines", `A:t:10.0.0.1:80 group ["x:10.0.0.2:80"]`, `line 1: service "A:t:10.0.0.1:80": group member "x:10.0.0.2:80"`},
		{"lines", `A:t:10.0.0.1:80 group []`, "group list: empty"},
		{"lines", "A:t:10.0.0.1:80 group [\"f:7\"]\nB:t:10.0.0.2:80 group [\"f:7\"]", "line 2: service tcp:10.0.0.2:80 group member fwmark:7: also in the group on line 1"},
		{"lines", "A:t:10.0.0.1:80 group [\"t:10.0.0.2:80\"]\n\nB:t:10.0.0.2:80", "line 1: group member tcp:10.0.0.2:80: also a service (line 3)"},
		{"yaml", "services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, group: [tcp:10.0.0.2]}\n", "line 2"},
		{"yaml", "services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, group: [fwmark:7]}\n  - {protocol: tcp, address: 10.0.0.2, port: 80, group: [fwmark:7]}\n",
			"line 3: services[1]: service tcp:10.0.0.2:80 group member fwmark:7: also in the group of services[0] on line 2"},
		{"yaml", "services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, group: [tcp:10.0.0.2:80]}\n  - {protocol: tcp, address: 10.0.0.2, port: 80}\n",
			"line 2: services[0]: service tcp:10.0.0.1:80 group member tcp:10.0.0.2:80: also a service (services[1] on line 3)"},
	} {
		var err error
		if c.form == "lines" {
			_, err = ParseLines(strings.NewReader(c.in))
		} else {
			_, err = ParseYAML(strings.NewReader(c.in))
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n%s\nerror %v, want %q", c.form, c.in, err, c.want)
		}
	}
}

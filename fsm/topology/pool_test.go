package topology

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

const poolLines = `Web:t:10.0.0.1:80 ["web1-2:10.3.0.10+:8080"] pool ["spare1-2:10.3.0.20+:8080", "old:10.3.0.30::5"] (-m -w 2)
Dark:t:10.0.0.2:80 pool["standby:10.3.1.1"]
`

const poolYAML = `services:
  - name: Web
    protocol: tcp
    address: 10.0.0.1
    port: 80
    forward: masq
    weight: 2
    servers:
      - {name: web1, address: 10.3.0.10, port: 8080}
      - {name: web2, address: 10.3.0.11, port: 8080}
    pool:
      - {name: spare1, address: 10.3.0.20, port: 8080}
      - {name: spare2, address: 10.3.0.21, port: 8080}
      - {name: old, address: 10.3.0.30, weight: 5}
  - name: Dark
    protocol: tcp
    address: 10.0.0.2
    port: 80
    pool:
      - {name: standby, address: 10.3.1.1}
`

// Both forms say "defined for this service, not assigned": the line form
// with a second list after the word pool, YAML with a pool key; they give
// the same configuration.
func TestBothFormsSayPool(t *testing.T) {
	lines, err := ParseLines(strings.NewReader(poolLines))
	if err != nil {
		t.Fatal(err)
	}
	web := lines.Services["tcp:10.0.0.1:80"]
	if len(web.Servers) != 2 || len(web.Pool) != 3 {
		t.Fatalf("Web: %d servers, pool %v", len(web.Servers), web.Pool)
	}
	if p := web.Pool["10.3.0.21:8080"]; p == nil || p.Name != "spare2" || p.Forward != fsm.Masquerade || p.Weight != 2 || p.State != fsm.Active {
		t.Errorf("spare2: %+v", p)
	}
	if p := web.Pool["10.3.0.30:80"]; p == nil || p.Weight != 5 {
		t.Errorf("old, weight from its spec: %+v", p)
	}
	if d := lines.Services["tcp:10.0.0.2:80"]; len(d.Servers) != 0 || d.Pool["10.3.1.1:80"] == nil {
		t.Errorf("Dark, a pool and no assigned server: %+v", d)
	}
	if a, b := jsonOf(t, lines), jsonOf(t, mustYAML(t, poolYAML)); a != b {
		t.Errorf("the forms differ:\n%s\n---\n%s", a, b)
	}
	// Old files never hold the marker: they load without a pool.
	for _, svc := range load(t, "testdata/classic.topo").Services {
		if svc.Pool != nil {
			t.Errorf("classic.topo: %s has a pool", svc.Key)
		}
	}
}

func TestPoolErrors(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"line: in both lists", `W:t:10.0.0.1:80 ["a:10.3.0.1"] pool ["b:10.3.0.1"]`,
			`line 1: real server "b:10.3.0.1": 10.3.0.1:80 listed twice (also in "a:10.3.0.1")`},
		{"line: a bad pool spec", `W:t:10.0.0.1:80 ["a:10.3.0.1"] pool ["b:10.3.0.x"]`, `line 1: real server "b:10.3.0.x": `},
		{"line: an unclosed pool", `W:t:10.0.0.1:80 pool ["b:10.3.0.1"`, `line 1: service "W:t:10.0.0.1:80": pool list: `},
		{"line: the word without a list", `W:t:10.0.0.1:80 ["a:10.3.0.1"] pool (-m)`, `line 1: service "W:t:10.0.0.1:80": unexpected "pool (-m)"`},
		{"line: pool after the options", `W:t:10.0.0.1:80 ["a:10.3.0.1"] (-m) pool ["b:10.3.0.2"]`, `unexpected "pool [\"b:10.3.0.2\"]"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseLines(strings.NewReader(c.text))
			if err == nil || !strings.Contains(err.Error(), c.want) || cfg != nil {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	_, err := ParseYAML(strings.NewReader(`services:
  - {protocol: tcp, address: 10.0.0.1, port: 80,
     servers: [{address: 10.3.0.1}],
     pool: [{address: 10.3.0.2}, {address: 10.3.0.1}, {address: 10.3.0.3, weight: 70000}]}
`))
	for _, want := range []string{"line 4: services[0].pool[1]: 10.3.0.1:80: listed twice (also services[0].servers[0] on line 3)",
		"line 4: services[0].pool[2]: real server 10.3.0.3:80 of service tcp:10.0.0.1:80 weight 70000: out of range 0-65535"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("YAML error %v, want %q", err, want)
		}
	}
}

// An export writes the pool, and applying the export gives back the very
// configuration: from a line-form file, and from a model whose pool
// servers differ from the service's defaults (their own forwarding,
// state and check).
func TestPoolExportRoundTrip(t *testing.T) {
	cfg, err := ParseLines(strings.NewReader(poolLines))
	if err != nil {
		t.Fatal(err)
	}
	web := cfg.Services["tcp:10.0.0.1:80"]
	spare := web.Pool["10.3.0.20:8080"]
	spare.State, spare.Check = fsm.Suspended, &fsm.HealthCheck{Type: "tcp", Port: 9000}
	web.Pool["10.3.0.40:80"] = &fsm.RealServer{Address: netip.MustParseAddr("10.3.0.40"), Port: 80, Forward: fsm.DirectRoute, Weight: 1, State: fsm.Active}
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"    pool:\n", "      - {name: spare2, address: 10.3.0.21, port: 8080, forward: masq, weight: 2}\n",
		"        state: suspended\n        check: {type: tcp, port: 9000}\n", "      - {address: 10.3.0.40}\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("export lacks %q:\n%s", want, out)
		}
	}
	back, err := ParseYAML(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the export does not parse: %v\n%s", err, out)
	}
	if a, b := jsonOf(t, cfg), jsonOf(t, back); a != b {
		t.Errorf("export -> apply changed the configuration:\n%s\n---\n%s", a, b)
	}
	again, err := MarshalYAML(back)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("a second export differs (%v):\n%s\n---\n%s", err, out, again)
	}
}

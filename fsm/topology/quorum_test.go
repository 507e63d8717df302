package topology

import (
	"strings"
	"testing"
)

const quorumYAML = `services:
  - name: Web
    protocol: tcp
    address: 10.0.0.1
    port: 80
    quorum: 3
    hysteresis: 1
    sorry_server: {address: 10.3.0.99}
    servers:
      - {address: 10.3.0.10, weight: 2}
      - {address: 10.3.0.11}
`

// quorum and hysteresis are service keys of the YAML form; export writes
// them back, and bad values are refused naming the field and the value.
func TestYAMLQuorum(t *testing.T) {
	cfg, err := Parse("lb.yaml", []byte(quorumYAML))
	if err != nil {
		t.Fatal(err)
	}
	svc := cfg.Services["tcp:10.0.0.1:80"]
	if svc.Quorum != 3 || svc.Hysteresis != 1 {
		t.Fatalf("quorum %d hysteresis %d, want 3 and 1", svc.Quorum, svc.Hysteresis)
	}
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "quorum: 3") || !strings.Contains(string(out), "hysteresis: 1") {
		t.Fatalf("export lacks the quorum:\n%s", out)
	}
	again, err := Parse("again.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	if s := again.Services["tcp:10.0.0.1:80"]; s.Quorum != 3 || s.Hysteresis != 1 {
		t.Fatalf("round trip: quorum %d hysteresis %d", s.Quorum, s.Hysteresis)
	}
	for bad, want := range map[string]string{
		"hysteresis: 1": "hysteresis 3: must be below the quorum 3",
		"quorum: 3":     "quorum -2: out of range",
	} {
		repl := map[string]string{"hysteresis: 1": "hysteresis: 3", "quorum: 3": "quorum: -2"}[bad]
		_, err := Parse("bad.yaml", []byte(strings.Replace(quorumYAML, bad, repl, 1)))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "line ") {
			t.Errorf("%s: %v, want an error naming the line and %q", repl, err, want)
		}
	}
}

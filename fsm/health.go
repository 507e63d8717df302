package fsm

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// HealthCheck says how the leader checks a service's real servers. A real
// server may carry its own, which replaces the service's.
type HealthCheck struct {
	Type string `json:"type"` // one of CheckTypes
	// Timing in milliseconds; zero takes the default (CheckDefaults).
	IntervalMS uint32 `json:"interval_ms,omitempty"`
	TimeoutMS  uint32 `json:"timeout_ms,omitempty"`
	// Rise consecutive successes make a down server up; Fall consecutive
	// failures make an up server down.
	Rise int `json:"rise,omitempty"`
	Fall int `json:"fall,omitempty"`
	// Target overrides: check this address and/or port instead of the real
	// server's (a health endpoint on another port, say).
	Address netip.Addr `json:"address,omitzero"`
	Port    uint16     `json:"port,omitempty"`

	// http, https
	Method   string `json:"method,omitempty"`   // default GET
	Path     string `json:"path,omitempty"`     // default /
	Host     string `json:"host,omitempty"`     // Host header
	SNI      string `json:"sni,omitempty"`      // TLS server name (https)
	Status   []int  `json:"status,omitempty"`   // accepted codes; default 200-399
	Body     string `json:"body,omitempty"`     // regular expression the body must match
	Insecure bool   `json:"insecure,omitempty"` // https: skip certificate verification
	// dns
	Query  string `json:"query,omitempty"`  // name to ask
	QType  string `json:"qtype,omitempty"`  // default A
	Proto  string `json:"proto,omitempty"`  // udp (default) or tcp; also for udp checks: ignored
	RCode  string `json:"rcode,omitempty"`  // expected, default NOERROR
	Answer string `json:"answer,omitempty"` // a value the answer section must contain
	// udp
	Send   string `json:"send,omitempty"`   // payload sent
	Expect string `json:"expect,omitempty"` // regular expression the reply must match
	// exec: argv; the target is in $IPVSMAN_CHECK_ADDR / $IPVSMAN_CHECK_PORT
	Command []string `json:"command,omitempty"`
	// Alpha (keepalived's alpha): a real server without a verdict counts
	// as down, not up, until its first check passes, so that a server
	// added before its service is ready gets no traffic. Needs
	// AlphaProtocol on every member.
	Alpha bool `json:"alpha,omitempty"`
}

// Alpha reports whether a real server without a verdict counts as down:
// its own check, else its service's, has Alpha.
func Alpha(svc *Service, rs *RealServer) bool {
	if rs.Check != nil {
		return rs.Check.Alpha
	}
	return svc.Check != nil && svc.Check.Alpha
}

// Needs is the command protocol every member must speak to apply a state
// with this configuration alike: AlphaProtocol once any check has Alpha.
func (c *Config) Needs() (int, string) {
	for _, svc := range c.Services {
		if svc.Check != nil && svc.Check.Alpha {
			return AlphaProtocol, "service " + svc.Key.String() + " check alpha"
		}
		for _, rs := range svc.Servers {
			if rs.Check != nil && rs.Check.Alpha {
				return AlphaProtocol, "real server " + rs.Key() + " of service " + svc.Key.String() + " check alpha"
			}
		}
	}
	return BaseCommandProtocol, ""
}

// CheckTypes are the checkers ipvsman has.
var CheckTypes = []string{"tcp", "http", "https", "dns", "udp", "icmp", "exec"}

// Defaults for a check's zero fields.
const (
	DefaultCheckIntervalMS = 2000
	DefaultCheckTimeoutMS  = 1000
	DefaultCheckRise       = 2
	DefaultCheckFall       = 3
)

// WithDefaults returns c with its zero timing fields filled in.
func (c HealthCheck) WithDefaults() HealthCheck {
	if c.IntervalMS == 0 {
		c.IntervalMS = DefaultCheckIntervalMS
	}
	if c.TimeoutMS == 0 {
		c.TimeoutMS = min(DefaultCheckTimeoutMS, c.IntervalMS)
	}
	if c.Rise == 0 {
		c.Rise = DefaultCheckRise
	}
	if c.Fall == 0 {
		c.Fall = DefaultCheckFall
	}
	return c
}

var (
	dnsTypes  = []string{"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"}
	dnsRCodes = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}
	methods   = []string{"GET", "HEAD", "POST", "OPTIONS"}
)

// ValidateHealthCheck checks c; what names where it sits ("service
// tcp:10.0.0.1:80 check").
func ValidateHealthCheck(what string, c *HealthCheck) error {
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%s %s %v: %s", what, field, v, why)
	}
	if !slices.Contains(CheckTypes, c.Type) {
		return bad("type", fmt.Sprintf("%q", c.Type), "want one of "+strings.Join(CheckTypes, ", "))
	}
	d := c.WithDefaults()
	if d.IntervalMS < 100 || d.IntervalMS > 3_600_000 {
		return bad("interval_ms", c.IntervalMS, "out of range 100-3600000")
	}
	if d.TimeoutMS < 10 || d.TimeoutMS > d.IntervalMS {
		return bad("timeout_ms", c.TimeoutMS, fmt.Sprintf("out of range 10-%d (the interval)", d.IntervalMS))
	}
	if d.Rise < 1 || d.Rise > 100 {
		return bad("rise", c.Rise, "out of range 1-100")
	}
	if d.Fall < 1 || d.Fall > 100 {
		return bad("fall", c.Fall, "out of range 1-100")
	}
	if c.Address.IsValid() && (c.Address.Zone() != "" || c.Address.IsUnspecified() || c.Address.IsMulticast()) {
		return bad("address", c.Address, "not a unicast address")
	}
	for _, s := range c.Status {
		if s < 100 || s > 599 {
			return bad("status", s, "not an HTTP status code (100-599)")
		}
	}
	for field, re := range map[string]string{"body": c.Body, "expect": c.Expect} {
		if _, err := regexp.Compile(re); err != nil {
			return bad(field, fmt.Sprintf("%q", re), err.Error())
		}
	}
	switch c.Type {
	case "http", "https":
		if c.Method != "" && !slices.Contains(methods, c.Method) {
			return bad("method", fmt.Sprintf("%q", c.Method), "want one of "+strings.Join(methods, ", "))
		}
		if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
			return bad("path", fmt.Sprintf("%q", c.Path), "must start with /")
		}
	case "dns":
		if c.Query == "" {
			return bad("query", `""`, "required for a dns check")
		}
		if c.QType != "" && !slices.Contains(dnsTypes, c.QType) {
			return bad("qtype", fmt.Sprintf("%q", c.QType), "want one of "+strings.Join(dnsTypes, ", "))
		}
		if c.RCode != "" && !slices.Contains(dnsRCodes, c.RCode) {
			return bad("rcode", fmt.Sprintf("%q", c.RCode), "want one of "+strings.Join(dnsRCodes, ", "))
		}
		if c.Proto != "" && c.Proto != "udp" && c.Proto != "tcp" {
			return bad("proto", fmt.Sprintf("%q", c.Proto), "want udp or tcp")
		}
	case "udp":
		if c.Send == "" {
			return bad("send", `""`, "required for a udp check")
		}
	case "exec":
		if len(c.Command) == 0 || c.Command[0] == "" {
			return bad("command", "[]", "required for an exec check")
		}
	}
	return nil
}

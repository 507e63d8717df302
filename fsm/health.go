package fsm

import (
	"fmt"
	"maps"
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
	// udp (required), tcp and tls (optional): the payload sent; tcp, tls
	// and udp: a regular expression the answer (a tcp or tls server's
	// banner, or what it answers Send with) must match
	Send   string `json:"send,omitempty"`
	Expect string `json:"expect,omitempty"`
	// http, https: the MD5 of the whole body, 32 hex digits (keepalived's
	// digest)
	Digest string `json:"digest,omitempty"`
	// tls, https: a PEM file of the CAs the certificate must chain to (the
	// system's roots if empty), read on the node that runs the check; and a
	// margin: the check fails once the certificate expires within it
	CAFile        string `json:"ca_file,omitempty"`
	ExpiryMarginS uint32 `json:"expiry_margin_s,omitempty"`
	// smtp: the name sent with EHLO (HELO) (default the node's host name)
	Helo string `json:"helo,omitempty"`
	// RetryDelayMS (keepalived's delay_before_retry): a failure of a
	// server that is up is retried after this, not after the interval,
	// until Fall failures in a row take it down; 0: the interval.
	RetryDelayMS uint32 `json:"retry_delay_ms,omitempty"`
	// The check's own socket (keepalived's bindto, bind_port and fwmark):
	// its source address and port, and its SO_MARK for policy routing.
	Source     netip.Addr `json:"source,omitzero"`
	SourcePort uint16     `json:"source_port,omitempty"`
	FWMark     uint32     `json:"fwmark,omitempty"`
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
// with this configuration alike: the highest any check needs
// (ChecksProtocol for what it added, AlphaProtocol for Alpha), or
// PoolProtocol once any service has a pool (pool.go), or KernelProtocol
// for an SCTP service, a local node, a persistence engine or a newer
// scheduler (kernel.go), or GroupProtocol once any service has a group
// (group.go), or QuorumProtocol once any service has a quorum (quorum.go),
// or ECMPProtocol once any VIP is in the ecmp mode (ecmp.go).
func (c *Config) Needs() (int, string) {
	need, what := c.needsChecks()
	if p, w := c.needsPool(); p > need {
		need, what = p, w
	}
	if p, w := c.needsKernel(); p > need {
		need, what = p, w
	}
	if p, w := c.needsGroup(); p > need {
		need, what = p, w
	}
	if p, w := c.needsQuorum(); p > need {
		need, what = p, w
	}
	if p, w := c.needsECMP(); p > need {
		need, what = p, w
	}
	return need, what
}

// ChecksProtocol is the protocol that knows the checks tls and smtp, a tcp
// check's send and expect, an http check's digest, ca_file and
// expiry_margin, retry_delay, and a check's source and fwmark. An older
// build would drop these fields from its copy of the model (and so from
// the snapshots it writes) and, leading, run another check than the one
// configured, so a configuration using them is refused until every member
// speaks it.
const ChecksProtocol = PoolProtocol + 1

// needsChecks is the highest protocol a check needs, and which check.
func (c *Config) needsChecks() (int, string) {
	need, what := BaseCommandProtocol, ""
	note := func(hc *HealthCheck, where string) {
		if hc == nil {
			return
		}
		if p, feature := hc.needs(); p > need {
			need, what = p, where+" check "+feature
		}
	}
	for _, sk := range c.SortedServiceKeys() {
		svc := c.Services[sk]
		note(svc.Check, "service "+svc.Key.String())
		for _, rk := range slices.Sorted(maps.Keys(svc.Servers)) {
			note(svc.Servers[rk].Check, "real server "+rk+" of service "+svc.Key.String())
		}
		// A pool server keeps its check while unassigned: an older
		// member must not drop it from its copy either.
		for _, rk := range slices.Sorted(maps.Keys(svc.Pool)) {
			note(svc.Pool[rk].Check, "pool server "+rk+" of service "+svc.Key.String())
		}
	}
	return need, what
}

// needs is the protocol a check needs and the feature that needs it.
func (c *HealthCheck) needs() (int, string) {
	switch {
	case c.Type == "tls" || c.Type == "smtp":
		return ChecksProtocol, "type " + c.Type
	case c.Type == "tcp" && (c.Send != "" || c.Expect != ""):
		return ChecksProtocol, "send/expect"
	case c.Digest != "":
		return ChecksProtocol, "digest"
	case c.CAFile != "" || c.ExpiryMarginS != 0:
		return ChecksProtocol, "ca_file/expiry_margin"
	case c.RetryDelayMS != 0:
		return ChecksProtocol, "retry_delay"
	case c.Source.IsValid() || c.SourcePort != 0 || c.FWMark != 0:
		return ChecksProtocol, "source/fwmark"
	case c.Alpha:
		return AlphaProtocol, "alpha"
	}
	return BaseCommandProtocol, ""
}

// CheckTypes are the checkers ipvsman has.
var CheckTypes = []string{"tcp", "http", "https", "tls", "smtp", "dns", "udp", "icmp", "exec"}

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
	if err := validateCheckExtras(c, bad); err != nil {
		return err
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

// heloName is what an smtp check may send with EHLO: a domain name or an
// address literal, nothing that could end the command early.
var heloName = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$`)

// maxExpiryMarginS bounds a certificate's expiry margin: ten years.
const maxExpiryMarginS = 10 * 366 * 24 * 3600

// validateCheckExtras checks the fields ChecksProtocol added.
func validateCheckExtras(c *HealthCheck, bad func(string, any, string) error) error {
	if c.Digest != "" {
		if c.Type != "http" && c.Type != "https" {
			return bad("digest", fmt.Sprintf("%q", c.Digest), "only for http and https checks")
		}
		if len(c.Digest) != 32 || strings.Trim(strings.ToLower(c.Digest), "0123456789abcdef") != "" {
			return bad("digest", fmt.Sprintf("%q", c.Digest), "want the MD5 of the body: 32 hex digits")
		}
	}
	if c.CAFile != "" {
		if c.Type != "tls" && c.Type != "https" {
			return bad("ca_file", fmt.Sprintf("%q", c.CAFile), "only for tls and https checks")
		}
		if !strings.HasPrefix(c.CAFile, "/") || strings.ContainsAny(c.CAFile, "\x00\n") {
			return bad("ca_file", fmt.Sprintf("%q", c.CAFile), "want an absolute path")
		}
		if c.Insecure {
			return bad("ca_file", fmt.Sprintf("%q", c.CAFile), "insecure skips the verification the CA is for")
		}
	}
	if c.ExpiryMarginS != 0 && c.Type != "tls" && c.Type != "https" {
		return bad("expiry_margin_s", c.ExpiryMarginS, "only for tls and https checks")
	}
	if c.ExpiryMarginS > maxExpiryMarginS {
		return bad("expiry_margin_s", c.ExpiryMarginS, fmt.Sprintf("out of range 0-%d (ten years)", maxExpiryMarginS))
	}
	if c.Helo != "" && (c.Type != "smtp" || len(c.Helo) > 255 || !heloName.MatchString(c.Helo)) {
		if c.Type != "smtp" {
			return bad("helo", fmt.Sprintf("%q", c.Helo), "only for smtp checks")
		}
		return bad("helo", fmt.Sprintf("%q", c.Helo), "want a domain name or an address literal such as [10.0.0.1]")
	}
	if (c.Send != "" || c.Expect != "") && c.Type == "smtp" {
		return bad("send", fmt.Sprintf("%q", c.Send), "an smtp check speaks SMTP itself: use a tcp check for send and expect")
	}
	if c.RetryDelayMS != 0 && (c.RetryDelayMS < 10 || c.RetryDelayMS > 3_600_000) {
		return bad("retry_delay_ms", c.RetryDelayMS, "out of range 10-3600000")
	}
	if c.Source.IsValid() || c.SourcePort != 0 || c.FWMark != 0 {
		switch c.Type {
		case "icmp", "exec":
			field, v := "fwmark", any(c.FWMark)
			switch {
			case c.Source.IsValid():
				field, v = "source", c.Source
			case c.SourcePort != 0:
				field, v = "source_port", c.SourcePort
			}
			return bad(field, v, "not for "+c.Type+" checks: only those that open their own TCP or UDP socket")
		}
	}
	if c.Source.IsValid() && (c.Source.Zone() != "" || c.Source.IsUnspecified() || c.Source.IsMulticast()) {
		return bad("source", c.Source, "not a unicast address")
	}
	return nil
}

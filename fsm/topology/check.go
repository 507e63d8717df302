package topology

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// yamlCheck is fsm.HealthCheck as a file says it: timing as Go durations
// ("2s", "500ms") instead of milliseconds. The values are checked by
// fsm.ValidateHealthCheck; only what cannot reach the model intact (a
// duration that is not whole milliseconds, a port above 65535) and what
// would silently mean the default (an explicit 0) are refused here.
type yamlCheck struct {
	Type     string   `yaml:"type"`
	Interval string   `yaml:"interval,omitempty"`
	Timeout  string   `yaml:"timeout,omitempty"`
	Rise     *yamlInt `yaml:"rise,omitempty"`
	Fall     *yamlInt `yaml:"fall,omitempty"`
	Address  string   `yaml:"address,omitempty"`
	Port     *yamlInt `yaml:"port,omitempty"`
	// http, https
	Method   string    `yaml:"method,omitempty"`
	Path     string    `yaml:"path,omitempty"`
	Host     string    `yaml:"host,omitempty"`
	SNI      string    `yaml:"sni,omitempty"`
	Status   []yamlInt `yaml:"status,omitempty,flow"`
	Body     string    `yaml:"body,omitempty"`
	Insecure bool      `yaml:"insecure,omitempty"`
	// dns
	Query  string `yaml:"query,omitempty"`
	QType  string `yaml:"qtype,omitempty"`
	Proto  string `yaml:"proto,omitempty"`
	RCode  string `yaml:"rcode,omitempty"`
	Answer string `yaml:"answer,omitempty"`
	// udp, tcp, tls
	Send   string `yaml:"send,omitempty"`
	Expect string `yaml:"expect,omitempty"`
	// http, https: MD5 of the body; tls, https: CA file, expiry margin
	Digest       string `yaml:"digest,omitempty"`
	CAFile       string `yaml:"ca_file,omitempty"`
	ExpiryMargin string `yaml:"expiry_margin,omitempty"`
	// smtp
	Helo string `yaml:"helo,omitempty"`
	// every type: keepalived's delay_before_retry, bindto, bind_port, fwmark
	RetryDelay string   `yaml:"retry_delay,omitempty"`
	Source     string   `yaml:"source,omitempty"`
	SourcePort *yamlInt `yaml:"source_port,omitempty"`
	FWMark     *yamlInt `yaml:"fwmark,omitempty"`
	// exec
	Command []string `yaml:"command,omitempty,flow"`
	// every type: a server without a verdict is down until its first check passes
	Alpha bool `yaml:"alpha,omitempty"`
}

// checkKeys maps the fields fsm.ValidateHealthCheck names to the file's
// keys, so that its errors point at the line of the offending key.
var checkKeys = map[string]string{
	"type": "type", "interval_ms": "interval", "timeout_ms": "timeout", "rise": "rise", "fall": "fall",
	"address": "address", "port": "port", "method": "method", "path": "path", "host": "host", "sni": "sni",
	"status": "status", "body": "body", "query": "query", "qtype": "qtype", "proto": "proto", "rcode": "rcode",
	"answer": "answer", "send": "send", "expect": "expect", "command": "command",
	"digest": "digest", "ca_file": "ca_file", "expiry_margin_s": "expiry_margin", "helo": "helo",
	"retry_delay_ms": "retry_delay", "source": "source", "source_port": "source_port", "fwmark": "fwmark",
}

// buildCheck converts and validates a check; what names it in errors as
// fsm does ("service tcp:10.0.0.1:80 check"). It returns each problem with
// the key to blame, for the error's line.
func buildCheck(y *yamlCheck, what string) (*fsm.HealthCheck, []fieldError) {
	c := &fsm.HealthCheck{
		Type: y.Type, Method: y.Method, Path: y.Path, Host: y.Host, SNI: y.SNI, Body: y.Body, Insecure: y.Insecure, Alpha: y.Alpha,
		Query: y.Query, QType: y.QType, Proto: y.Proto, RCode: y.RCode, Answer: y.Answer,
		Send: y.Send, Expect: y.Expect, Digest: y.Digest, CAFile: y.CAFile, Helo: y.Helo,
	}
	var errs []fieldError
	bad := func(field string, err error) { errs = append(errs, fieldError{field, err}) }
	if len(y.Status) > 0 {
		c.Status = make([]int, len(y.Status))
		for i, s := range y.Status {
			var err error
			if c.Status[i], err = toInt("status", s); err != nil {
				bad("status", err)
			}
		}
	}
	if len(y.Command) > 0 {
		c.Command = y.Command
	}
	var err error
	if c.IntervalMS, err = durationMS("interval", y.Interval, fsm.DefaultCheckIntervalMS); err != nil {
		bad("interval", err)
	}
	if c.TimeoutMS, err = durationMS("timeout", y.Timeout, fsm.DefaultCheckTimeoutMS); err != nil {
		bad("timeout", err)
	}
	for _, f := range []struct {
		key string
		v   *yamlInt
		dst *int
		def int
	}{{"rise", y.Rise, &c.Rise, fsm.DefaultCheckRise}, {"fall", y.Fall, &c.Fall, fsm.DefaultCheckFall}} {
		if f.v == nil {
			continue
		}
		if *f.v == 0 {
			bad(f.key, fmt.Errorf("%s 0: want 1 or more (leave it out for the default %d)", f.key, f.def))
			continue
		}
		if *f.dst, err = toInt(f.key, *f.v); err != nil {
			bad(f.key, err)
		}
	}
	if y.Address != "" {
		// Not unmapped, unlike a server's address: the model keeps what it
		// was given, and an export must read back the same.
		a, err := netip.ParseAddr(y.Address)
		switch {
		case err != nil:
			bad("address", fmt.Errorf("address %q: not an IP address", y.Address))
		case a.Zone() != "":
			bad("address", fmt.Errorf("address %q: zones are not allowed", y.Address))
		default:
			c.Address = a
		}
	}
	if y.Port != nil {
		if *y.Port < 1 || *y.Port > math.MaxUint16 {
			bad("port", fmt.Errorf("port %d: want 1-65535 (leave it out for the real server's port)", *y.Port))
		} else {
			c.Port = uint16(*y.Port)
		}
	}
	errs = append(errs, buildCheckSocket(y, c)...)
	if len(errs) > 0 {
		return nil, errs
	}
	if err := fsm.ValidateHealthCheck(what, c); err != nil {
		field, _, _ := strings.Cut(strings.TrimPrefix(err.Error(), what+" "), " ")
		return nil, []fieldError{{checkKeys[field], err}}
	}
	return c, nil
}

// buildCheckSocket reads the keys ChecksProtocol added that need
// converting: the retry delay and expiry margin (durations), the source
// address, port and mark.
func buildCheckSocket(y *yamlCheck, c *fsm.HealthCheck) []fieldError {
	var errs []fieldError
	bad := func(field string, err error) { errs = append(errs, fieldError{field, err}) }
	var err error
	if c.RetryDelayMS, err = durationMS("retry_delay", y.RetryDelay, 0); err != nil {
		bad("retry_delay", err)
	}
	if y.ExpiryMargin != "" {
		d, err := time.ParseDuration(y.ExpiryMargin)
		switch {
		case err != nil:
			bad("expiry_margin", fmt.Errorf("expiry_margin %q: want a duration such as 720h (30 days)", y.ExpiryMargin))
		case d <= 0 || d%time.Second != 0 || d/time.Second > math.MaxUint32:
			bad("expiry_margin", fmt.Errorf("expiry_margin %s: want a positive whole number of seconds", y.ExpiryMargin))
		default:
			c.ExpiryMarginS = uint32(d / time.Second)
		}
	}
	if y.Source != "" {
		a, err := netip.ParseAddr(y.Source)
		switch {
		case err != nil:
			bad("source", fmt.Errorf("source %q: not an IP address", y.Source))
		case a.Zone() != "":
			bad("source", fmt.Errorf("source %q: zones are not allowed", y.Source))
		default:
			c.Source = a
		}
	}
	if y.SourcePort != nil {
		if *y.SourcePort < 1 || *y.SourcePort > math.MaxUint16 {
			bad("source_port", fmt.Errorf("source_port %d: want 1-65535 (leave it out for any)", *y.SourcePort))
		} else {
			c.SourcePort = uint16(*y.SourcePort)
		}
	}
	if y.FWMark != nil {
		if *y.FWMark < 1 || *y.FWMark > math.MaxUint32 {
			bad("fwmark", fmt.Errorf("fwmark %d: want 1-4294967295 (leave it out for none)", *y.FWMark))
		} else {
			c.FWMark = uint32(*y.FWMark)
		}
	}
	return errs
}

// durationMS reads a Go duration as whole milliseconds. Zero is refused:
// the model would read it as the default, which is not what "0s" says.
func durationMS(key, s string, defMS int) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a duration such as 2s or 500ms", key, s)
	}
	switch {
	case d <= 0:
		return 0, fmt.Errorf("%s %s: want a positive duration (leave it out for the default %s)", key, s, msString(uint32(defMS)))
	case d%time.Millisecond != 0:
		return 0, fmt.Errorf("%s %s: not a whole number of milliseconds", key, s)
	case d/time.Millisecond > math.MaxUint32:
		return 0, fmt.Errorf("%s %s: out of range", key, s)
	}
	return uint32(d / time.Millisecond), nil
}

// msString writes milliseconds as durationMS reads them: "2s", "1.5s", "500ms".
func msString(ms uint32) string { return (time.Duration(ms) * time.Millisecond).String() }

// marshalCheck is buildCheck's inverse: zero fields (the defaults) are left out.
func marshalCheck(c *fsm.HealthCheck) *yamlCheck {
	if c == nil {
		return nil
	}
	y := &yamlCheck{
		Type: c.Type, Method: c.Method, Path: c.Path, Host: c.Host, SNI: c.SNI, Body: c.Body,
		Insecure: c.Insecure, Query: c.Query, QType: c.QType, Proto: c.Proto, RCode: c.RCode, Answer: c.Answer,
		Send: c.Send, Expect: c.Expect, Command: c.Command, Alpha: c.Alpha,
		Digest: c.Digest, CAFile: c.CAFile, Helo: c.Helo,
	}
	if c.RetryDelayMS != 0 {
		y.RetryDelay = msString(c.RetryDelayMS)
	}
	if c.ExpiryMarginS != 0 {
		y.ExpiryMargin = (time.Duration(c.ExpiryMarginS) * time.Second).String()
	}
	if c.Source.IsValid() {
		y.Source = c.Source.String()
	}
	if c.SourcePort != 0 {
		y.SourcePort = intPtr(c.SourcePort)
	}
	if c.FWMark != 0 {
		y.FWMark = intPtr(c.FWMark)
	}
	for _, s := range c.Status {
		y.Status = append(y.Status, yamlInt(s))
	}
	if c.IntervalMS != 0 {
		y.Interval = msString(c.IntervalMS)
	}
	if c.TimeoutMS != 0 {
		y.Timeout = msString(c.TimeoutMS)
	}
	if c.Rise != 0 {
		y.Rise = intPtr(c.Rise)
	}
	if c.Fall != 0 {
		y.Fall = intPtr(c.Fall)
	}
	if c.Address.IsValid() {
		y.Address = c.Address.String()
	}
	if c.Port != 0 {
		y.Port = intPtr(c.Port)
	}
	return y
}

// errSorryCheck: the sorry server stands in when no real server is usable;
// nothing checks it, so a check there would be a promise not kept.
var errSorryCheck = errors.New("check: a sorry server is not health-checked")

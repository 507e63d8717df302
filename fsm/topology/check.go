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
	// udp
	Send   string `yaml:"send,omitempty"`
	Expect string `yaml:"expect,omitempty"`
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
}

// buildCheck converts and validates a check; what names it in errors as
// fsm does ("service tcp:10.0.0.1:80 check"). It returns each problem with
// the key to blame, for the error's line.
func buildCheck(y *yamlCheck, what string) (*fsm.HealthCheck, []fieldError) {
	c := &fsm.HealthCheck{
		Type: y.Type, Method: y.Method, Path: y.Path, Host: y.Host, SNI: y.SNI, Body: y.Body, Insecure: y.Insecure, Alpha: y.Alpha,
		Query: y.Query, QType: y.QType, Proto: y.Proto, RCode: y.RCode, Answer: y.Answer,
		Send: y.Send, Expect: y.Expect,
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
	if len(errs) > 0 {
		return nil, errs
	}
	if err := fsm.ValidateHealthCheck(what, c); err != nil {
		field, _, _ := strings.Cut(strings.TrimPrefix(err.Error(), what+" "), " ")
		return nil, []fieldError{{checkKeys[field], err}}
	}
	return c, nil
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

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// checkCmd sets and clears health checks through the replicated log, as
// the topology file's check keys do for a whole file.
func checkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Set or clear the health check of a service, or of one of its real servers, cluster-wide",
	}
	cmd.AddCommand(checkSetCmd(g), checkClearCmd(g))
	return cmd
}

const checkTargetUsage = `The service is named as ipvsadm names it (-t|-u ADDR:PORT, -f MARK [-6])
or by its key as ipvsman prints it (tcp:10.0.0.1:80, fwmark:7). With
-r ADDR[:PORT] the check is that real server's own, replacing the
service's for it; a real server without a port is the one on the
service's port.`

func checkSetCmd(g *globals) *cobra.Command {
	var t checkTarget
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "set (-t|-u ADDR:PORT | -f MARK [-6] | SERVICE) [-r ADDR[:PORT]] --type TYPE [flags]",
		Short: "Set the health check of a service or of one real server",
		Long: `Set the health check of a service or of one real server; it replaces any
check already there.

` + checkTargetUsage + `

Flags that do not apply to --type are refused. --timeout here is the
check's timeout, not how long to wait for the cluster (which is 60s).
--command is split on spaces (no quoting): for an argument that contains
a space, use a wrapper script or the topology file's command list. Its
program must be in the leader's check directory (ipvsmand --check-dir,
default /etc/ipvsman/checks), named by its name or path there, and in
every director's for the check to run wherever the leader is: the leader
refuses any other, and runs it as ipvsmand --check-user (root unless set).`,
		Example: `  ipvsman check set -t 10.0.0.1:80 --type http --path /health --status 200,204
  ipvsman check set -t 10.0.0.1:80 -r 10.3.0.10:8080 --type tcp --check-port 9000 --interval 1s --timeout 500ms
  ipvsman check set -u 10.0.0.2:53 --type dns --query example.com. --qtype AAAA --rcode NOERROR
  ipvsman check set -f 7 --type exec --command "check-shop --quick"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			op, err := t.op(fsm.OpSetCheck, args)
			if err != nil {
				return fmt.Errorf("check set: %w", err)
			}
			if op.Check, err = f.check(c.Flags()); err != nil {
				return fmt.Errorf("check set: %w", err)
			}
			return g.submit(c.OutOrStdout(), op)
		},
	}
	t.register(cmd.Flags())
	f.register(cmd.Flags())
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

func checkClearCmd(g *globals) *cobra.Command {
	var t checkTarget
	cmd := &cobra.Command{
		Use:   "clear (-t|-u ADDR:PORT | -f MARK [-6] | SERVICE) [-r ADDR[:PORT]]",
		Short: "Remove the health check of a service, or a real server's own check",
		Long: `Remove the health check of a service (its real servers are then not
checked, except those with a check of their own), or with -r a real
server's own check (it then has the service's again).

` + checkTargetUsage,
		Example: `  ipvsman check clear -t 10.0.0.1:80
  ipvsman check clear tcp:10.0.0.1:80 -r 10.3.0.10:8080`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			op, err := t.op(fsm.OpClearCheck, args)
			if err != nil {
				return fmt.Errorf("check clear: %w", err)
			}
			return g.submit(c.OutOrStdout(), op)
		},
	}
	t.register(cmd.Flags())
	return cmd
}

// checkTarget is the service and optional real server a check op names.
type checkTarget struct {
	tcp, udp, mark, server string
	ipv6                   bool
}

func (t *checkTarget) register(fs *pflag.FlagSet) {
	fs.StringVarP(&t.tcp, "tcp-service", "t", "", "TCP service `ADDR:PORT`")
	fs.StringVarP(&t.udp, "udp-service", "u", "", "UDP service `ADDR:PORT`")
	fs.StringVarP(&t.mark, "fwmark-service", "f", "", "firewall-mark service `MARK`")
	fs.BoolVarP(&t.ipv6, "ipv6", "6", false, "with -f: the IPv6 firewall-mark service")
	fs.StringVarP(&t.server, "real-server", "r", "", "the real server `ADDR[:PORT]` whose own check this is")
}

// op reads the target with ipvsadm's parser, as `ipvsman server` does, so
// that addresses, ports and marks mean what they mean to ipvsadm: -D names
// a service, -d one of its real servers.
func (t *checkTarget) op(kind fsm.OpKind, args []string) (fsm.Op, error) {
	var argv []string
	for _, f := range []struct{ flag, v string }{{"-t", t.tcp}, {"-u", t.udp}, {"-f", t.mark}} {
		if f.v != "" {
			argv = append(argv, f.flag, f.v)
		}
	}
	if t.ipv6 {
		argv = append(argv, "-6")
	}
	if len(args) == 1 {
		if len(argv) > 0 {
			return fsm.Op{}, fmt.Errorf("service %s: give it once, as a key or with -t, -u or -f", args[0])
		}
		k, err := fsm.ParseServiceKey(args[0])
		if err != nil {
			return fsm.Op{}, err
		}
		switch {
		case k.Protocol == fsm.FWMark && k.IPv6:
			argv = []string{"-f", strconv.FormatUint(uint64(k.Mark), 10), "-6"}
		case k.Protocol == fsm.FWMark:
			argv = []string{"-f", strconv.FormatUint(uint64(k.Mark), 10)}
		case k.Protocol == fsm.SCTP:
			argv = []string{"--sctp-service", netip.AddrPortFrom(k.Address, k.Port).String()}
		default:
			argv = []string{"-" + string(k.Protocol[0]), netip.AddrPortFrom(k.Address, k.Port).String()}
		}
	}
	if len(argv) == 0 {
		return fsm.Op{}, errors.New("no service: give -t|-u ADDR:PORT, -f MARK or a service key such as tcp:10.0.0.1:80")
	}
	cmd := "-D"
	if t.server != "" {
		cmd, argv = "-d", append(argv, "-r", t.server)
	}
	parsed, err := ipvsadm.Parse(append([]string{cmd}, argv...))
	if err != nil {
		return fsm.Op{}, err
	}
	p := parsed.Ops[0]
	op := fsm.Op{Kind: kind, ServiceKey: p.ServiceKey}
	if p.Server != nil {
		op.Server = &fsm.RealServer{Address: p.Server.Address, Port: p.Server.Port}
	}
	return op, nil
}

// checkFlags are fsm.HealthCheck's fields. Zero means "not given", and the
// model's default applies; giving a zero explicitly is refused rather than
// read as the default.
type checkFlags struct {
	typ                           string
	interval, timeout             time.Duration
	rise, fall                    int
	address                       string
	port                          uint16
	method, path, host, sni       string
	status                        []int
	body                          string
	insecure                      bool
	query, qtype, proto, rcode    string
	answer, send, expect, command string
	alpha                         bool
	digest, caFile, helo          string
	expiryMargin, retryDelay      time.Duration
	source                        string
	sourcePort                    uint16
	fwmark                        uint32
}

func (f *checkFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.typ, "type", "", "checker: "+strings.Join(fsm.CheckTypes, ", "))
	fs.DurationVar(&f.interval, "interval", 0, "time between checks, whole milliseconds (default 2s)")
	fs.DurationVar(&f.timeout, "timeout", 0, "time one check may take, at most the interval (default 1s, or the interval if shorter)")
	fs.IntVar(&f.rise, "rise", 0, "consecutive successes that make a down server up (default 2)")
	fs.IntVar(&f.fall, "fall", 0, "consecutive failures that make an up server down (default 3)")
	fs.StringVar(&f.address, "check-address", "", "check this `ADDRESS` instead of the real server's")
	fs.Uint16Var(&f.port, "check-port", 0, "check this `PORT` instead of the real server's")
	fs.StringVar(&f.method, "method", "", "http(s): GET, HEAD, POST or OPTIONS (default GET)")
	fs.StringVar(&f.path, "path", "", "http(s): request path (default /)")
	fs.StringVar(&f.host, "host", "", "http(s): Host header")
	fs.StringVar(&f.sni, "sni", "", "https, tls: TLS server name, also the name the certificate must have")
	fs.IntSliceVar(&f.status, "status", nil, "http(s): accepted status `CODES`, comma-separated (default 200-399)")
	fs.StringVar(&f.body, "body", "", "http(s): regular expression the body must match")
	fs.BoolVar(&f.insecure, "insecure", false, "https, tls: do not verify the certificate's chain and name")
	fs.StringVar(&f.query, "query", "", "dns: the name to ask (required)")
	fs.StringVar(&f.qtype, "qtype", "", "dns: query type (default A)")
	fs.StringVar(&f.proto, "proto", "", "dns: udp or tcp (default udp)")
	fs.StringVar(&f.rcode, "rcode", "", "dns: expected response code (default NOERROR)")
	fs.StringVar(&f.answer, "answer", "", "dns: a value the answer section must contain")
	fs.StringVar(&f.send, "send", "", "udp: payload to send (required); tcp, tls: what to send once connected")
	fs.StringVar(&f.expect, "expect", "", `udp: regular expression the reply must match; tcp, tls: the banner or answer, e.g. "^220[ -]"`)
	fs.StringVar(&f.digest, "digest", "", "http(s): MD5 of the whole body, 32 hex digits (keepalived's digest)")
	fs.StringVar(&f.caFile, "ca-file", "", "https, tls: `PEM` file of the CAs the certificate must chain to, on the node checking (default the system's)")
	fs.DurationVar(&f.expiryMargin, "expiry-margin", 0, "https, tls: fail when the certificate expires within this, e.g. 720h")
	fs.StringVar(&f.helo, "helo", "", "smtp: name sent with EHLO/HELO (default the node's host name)")
	fs.DurationVar(&f.retryDelay, "retry-delay", 0, "retry a failure of an up server after this, not the interval, until --fall failures (keepalived's delay_before_retry)")
	fs.StringVar(&f.source, "check-source", "", "connect from this `ADDRESS` (keepalived's bindto); it must be on the node checking")
	fs.Uint16Var(&f.sourcePort, "check-source-port", 0, "connect from this `PORT` (keepalived's bind_port)")
	fs.Uint32Var(&f.fwmark, "check-fwmark", 0, "mark the check's packets (SO_MARK, keepalived's fwmark), for ip rule and the firewall")
	fs.BoolVar(&f.alpha, "alpha", false, "a real server without a verdict is down until its first check passes (keepalived's alpha); needs every member on protocol 3")
	fs.StringVar(&f.command, "command", "", `exec: "PROGRAM ARG ...", split on spaces; PROGRAM is in ipvsmand's --check-dir (a name or a path there); the target is in $IPVSMAN_CHECK_ADDR and $IPVSMAN_CHECK_PORT`)
}

// checkFlagTypes lists the flags that only some checkers read.
var checkFlagTypes = map[string][]string{
	"method": {"http", "https"}, "path": {"http", "https"}, "host": {"http", "https"},
	"status": {"http", "https"}, "body": {"http", "https"},
	"sni": {"https", "tls"}, "insecure": {"https", "tls"}, "ca-file": {"https", "tls"}, "expiry-margin": {"https", "tls"},
	"digest": {"http", "https"}, "helo": {"smtp"},
	"query": {"dns"}, "qtype": {"dns"}, "proto": {"dns"}, "rcode": {"dns"}, "answer": {"dns"},
	"send": {"udp", "tcp", "tls"}, "expect": {"udp", "tcp", "tls"},
	"command": {"exec"},
}

// check builds the check from the flags given and validates it, so that a
// mistake is reported before the cluster is asked.
func (f *checkFlags) check(fs *pflag.FlagSet) (*fsm.HealthCheck, error) {
	var err error
	fs.Visit(func(fl *pflag.Flag) {
		if types, ok := checkFlagTypes[fl.Name]; ok && err == nil && !slices.Contains(types, f.typ) {
			err = fmt.Errorf("--%s: only for %s checks, not %q", fl.Name, strings.Join(types, " and "), f.typ)
		}
	})
	if err != nil {
		return nil, err
	}
	c := &fsm.HealthCheck{
		Type: f.typ, Rise: f.rise, Fall: f.fall, Port: f.port,
		Method: f.method, Path: f.path, Host: f.host, SNI: f.sni, Status: f.status, Body: f.body, Insecure: f.insecure,
		Query: f.query, QType: f.qtype, Proto: f.proto, RCode: f.rcode, Answer: f.answer,
		Send: f.send, Expect: f.expect, Command: strings.Fields(f.command), Alpha: f.alpha,
		Digest: f.digest, CAFile: f.caFile, Helo: f.helo, SourcePort: f.sourcePort, FWMark: f.fwmark,
	}
	if c.IntervalMS, err = flagMS(fs, "interval", f.interval); err != nil {
		return nil, err
	}
	if c.TimeoutMS, err = flagMS(fs, "timeout", f.timeout); err != nil {
		return nil, err
	}
	if c.RetryDelayMS, err = flagMS(fs, "retry-delay", f.retryDelay); err != nil {
		return nil, err
	}
	if fs.Changed("expiry-margin") {
		if f.expiryMargin <= 0 || f.expiryMargin%time.Second != 0 || f.expiryMargin/time.Second > math.MaxUint32 {
			return nil, fmt.Errorf("--expiry-margin %s: want a positive whole number of seconds", f.expiryMargin)
		}
		c.ExpiryMarginS = uint32(f.expiryMargin / time.Second)
	}
	if f.source != "" {
		a, err := netip.ParseAddr(f.source)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("--check-source %q: want a numeric IPv4 or IPv6 address", f.source)
		}
		c.Source = a
	}
	for _, name := range []string{"rise", "fall", "check-port", "check-source-port", "check-fwmark"} {
		if fl := fs.Lookup(name); fl.Changed && fl.Value.String() == "0" {
			return nil, fmt.Errorf("--%s 0: leave it out for the default", name)
		}
	}
	if fs.Changed("command") && len(c.Command) == 0 {
		return nil, errors.New(`--command "": want a program and its arguments`)
	}
	if f.address != "" {
		a, err := netip.ParseAddr(f.address)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("--check-address %q: want a numeric IPv4 or IPv6 address", f.address)
		}
		c.Address = a
	}
	if err := fsm.ValidateHealthCheck("check", c); err != nil {
		return nil, err
	}
	return c, nil
}

// flagMS reads a duration flag as whole milliseconds; 0 when not given.
func flagMS(fs *pflag.FlagSet, name string, d time.Duration) (uint32, error) {
	switch {
	case !fs.Changed(name):
		return 0, nil
	case d <= 0:
		return 0, fmt.Errorf("--%s %s: want a positive duration (leave it out for the default)", name, d)
	case d%time.Millisecond != 0:
		return 0, fmt.Errorf("--%s %s: not a whole number of milliseconds", name, d)
	case d/time.Millisecond > math.MaxUint32:
		return 0, fmt.Errorf("--%s %s: out of range", name, d)
	}
	return uint32(d / time.Millisecond), nil
}

// submit commits one op and reports what the cluster made of it.
func (g *globals) submit(w io.Writer, op fsm.Op) error {
	return g.withClient(func(ctx context.Context, c *api.Client) error {
		r, err := c.Ops(ctx, []fsm.Op{op})
		if err != nil {
			return err
		}
		if !r.Result.Changed {
			_, err = fmt.Fprintf(w, "no change (version %d)\n", r.Result.Version)
			return err
		}
		if r.Result.Summary != "" {
			printSummary(w, r.Result.Summary)
		}
		_, err = fmt.Fprintf(w, "committed as version %d\n", r.Result.Version)
		return err
	})
}

// Command ipvsman is the operator's CLI: ipvsadm's command language applied
// cluster-wide, plus cluster, node, server, check, health, history,
// topology (apply, export, import) and TLS commands, and the live console
// (package top). It parses arguments and files, sends requests and prints
// the answers.
//
// It decides nothing: every change goes through the API (cluster/api) to
// the leader, which validates it again against the whole log. It imports
// only cluster/api, cluster/pki, cluster/release, director/table and the
// fsm packages, and never links a server-side module (Raft, its stores,
// gossip, netlink, ARP): test/arch fails if it does.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/cluster/pki"
	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/escape"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// globals are the connection settings every command shares.
type globals struct {
	api, token, tokenFile string
	ca                    string // --ca: verify the API server against this CA
	insecureHTTP          bool   // --insecure-http: send the token over plain HTTP off loopback
	node                  string // -L/-S: show this node's kernel table instead of the model
	timeout               time.Duration
	allowEmpty            bool // a write may leave no service (-R, apply, import)
}

// exitUnknown is the exit status of a write whose outcome is unknown: it
// may have been committed (see ipvsman history), unlike a failure (1),
// after which nothing changed.
const exitUnknown = 3

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the CLI: it runs one command line and returns the exit status.
//
// Everything it prints leaves through escape.Writer: what it prints comes
// from clients and the log (actors, summaries, names, check settings,
// the server's error messages), and a terminal must show such text, never
// act on it (colours, a retitled window, a line overwritten, text
// reordered by a bidi override). Fields printed in tables are escaped
// with escape.String besides, so that a newline in one cannot forge a
// row. The live console writes its own screen (top: it escapes what it
// shows).
func run(args []string, stdout, stderr io.Writer) int {
	out, errOut := escape.NewWriter(stdout), escape.NewWriter(stderr)
	defer errOut.Flush()
	defer out.Flush()
	g := &globals{}
	ipvsadmMode, rest, err := g.split(args)
	if err == nil && ipvsadmMode {
		err = runIpvsadm(g, rest, out, errOut)
	} else if err == nil {
		root := rootCmd(g)
		root.SetArgs(args)
		root.SetOut(out)
		root.SetErr(errOut)
		err = root.Execute()
	}
	if err != nil {
		fmt.Fprintln(errOut, "ipvsman:", err)
		var unknown *api.OutcomeUnknownError
		if errors.As(err, &unknown) {
			return exitUnknown
		}
		return 1
	}
	return 0
}

// split tells ipvsadm's language ("-A -t …", "-L -n", or nothing, which
// ipvsadm lists) from ipvsman's subcommands. It takes the global flags
// out, wherever they stand (--timeout only with a duration after it: a
// bare --timeout is ipvsadm's, which lists the timeouts), so that they decide nothing about the mode
// ("ipvsman --timeout 5s cluster status" is a subcommand); in ipvsadm mode
// they are set here, since ipvsadm's parser owns the rest, and in
// subcommand mode cobra parses them again from the whole line.
func (g *globals) split(args []string) (ipvsadm bool, rest []string, err error) {
	var timeout string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if b := map[string]*bool{"--allow-empty": &g.allowEmpty, "--insecure-http": &g.insecureHTTP}[name]; b != nil {
			if *b, err = parseBool(name, val, hasVal); err != nil {
				return false, nil, err
			}
			continue
		}
		if name == "--timeout" && !hasVal && (i+1 >= len(args) || !isDuration(args[i+1])) {
			// ipvsadm's own -L --timeout, which lists the timeouts.
			rest = append(rest, a)
			continue
		}
		dst := map[string]*string{"--api": &g.api, "--token": &g.token, "--token-file": &g.tokenFile, "--ca": &g.ca, "--node": &g.node, "--timeout": &timeout}[name]
		if dst == nil {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return false, nil, fmt.Errorf("%s: missing value", name)
			}
			i++
			val = args[i]
		}
		*dst = val
	}
	if timeout != "" {
		d, err := time.ParseDuration(timeout)
		if err != nil || d <= 0 {
			return false, nil, fmt.Errorf("--timeout %q: want a positive duration such as 30s or 2m", timeout)
		}
		g.timeout = d
	}
	if len(rest) == 0 {
		return true, rest, nil
	}
	first := rest[0]
	if first == "-h" || first == "--help" {
		return false, nil, nil
	}
	return strings.HasPrefix(first, "-"), rest, nil
}

// isDuration tells the global --timeout's value ("5s") from ipvsadm's
// next argument after its -L --timeout ("-n").
func isDuration(s string) bool {
	_, err := time.ParseDuration(s)
	return err == nil
}

// parseBool reads a boolean flag given as --name or --name=VALUE.
func parseBool(name, val string, hasVal bool) (bool, error) {
	if !hasVal {
		return true, nil
	}
	b, err := strconv.ParseBool(val)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, val)
	}
	return b, nil
}

// client builds the API client from flags, then the environment.
func (g *globals) client() (*api.Client, error) {
	base := g.api
	if base == "" {
		base = os.Getenv("IPVSMAN_API")
	}
	if base == "" {
		base = "127.0.0.1:7080"
	}
	token := g.token
	if token == "" {
		token = os.Getenv("IPVSMAN_TOKEN")
	}
	tf, tfName := g.tokenFile, "--token-file"
	if tf == "" {
		tf, tfName = os.Getenv("IPVSMAN_TOKEN_FILE"), "IPVSMAN_TOKEN_FILE"
	}
	if token == "" && tf != "" {
		// The daemon's rule for its token files: one that group or others
		// may read has leaked already, and this says so.
		b, err := pki.ReadSecret(tfName, tf)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, errors.New("no cluster token: give --token, --token-file, IPVSMAN_TOKEN or IPVSMAN_TOKEN_FILE")
	}
	c := &api.Client{Base: base, Token: token, Actor: actor(), InsecureHTTP: g.insecureHTTP}
	if err := g.secure(c); err != nil {
		return nil, err
	}
	return c, nil
}

// secure sets up https: with --ca (or IPVSMAN_CA) the server must have a
// certificate of that CA; an https:// --api without it is verified
// against the system's roots. Either way the addresses of other nodes
// (ipvsman -L --node, top) are reached over https too.
func (g *globals) secure(c *api.Client) error {
	ca := g.ca
	if ca == "" {
		ca = os.Getenv("IPVSMAN_CA")
	}
	switch {
	case ca != "":
		if strings.HasPrefix(c.Base, "http://") {
			return fmt.Errorf("--ca %q with --api %q: a CA is for https; write https:// or leave the scheme out", ca, c.Base)
		}
		b, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("--ca %q: %w", ca, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("--ca %q: no PEM certificate in it", ca)
		}
		c.TLS, c.CA = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, fmt.Sprintf("--ca %q", ca)
	case strings.HasPrefix(c.Base, "https://"):
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	}
	return nil
}

// withClient runs f with an API client and a context bounded by --timeout.
func (g *globals) withClient(f func(ctx context.Context, c *api.Client) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.ctx()
	defer cancel()
	return f(ctx, c)
}

func (g *globals) ctx() (context.Context, context.CancelFunc) {
	t := g.timeout
	if t == 0 {
		t = 60 * time.Second
	}
	return context.WithTimeout(context.Background(), t)
}

// actor names who made a change, for the history: user@host.
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func rootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "ipvsman",
		Short: "Operate a replicated IPVS director cluster",
		Long: `ipvsman operates an ipvsman cluster through any node's API.

It speaks ipvsadm's command language, applied to the whole cluster:
  ipvsman -A -t 10.0.0.1:80 -s wlc
  ipvsman -a -t 10.0.0.1:80 -r 10.3.0.10:8080 -m -w 3
  ipvsman -L -n
and has subcommands for the cluster, the configuration history and topology files.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.api, "api", g.api, "API address of any node (env IPVSMAN_API; default 127.0.0.1:7080)")
	pf.StringVar(&g.token, "token", g.token, "cluster token (env IPVSMAN_TOKEN)")
	pf.StringVar(&g.tokenFile, "token-file", g.tokenFile, "file holding the cluster token (env IPVSMAN_TOKEN_FILE)")
	pf.StringVar(&g.ca, "ca", g.ca, "CA certificate (PEM) to verify the API server with; implies https (env IPVSMAN_CA; an https:// --api without it uses the system's roots)")
	pf.DurationVar(&g.timeout, "timeout", 60*time.Second, "how long to wait for the cluster; a write not answered by then is reported as failed (exit 1) or, if it may have been committed, as outcome unknown (exit 3)")
	pf.BoolVar(&g.allowEmpty, "allow-empty", g.allowEmpty, "let -R, apply or import leave no service where there are some")
	pf.BoolVar(&g.insecureHTTP, "insecure-http", g.insecureHTTP, "send the token over plain HTTP to an address other than loopback, in clear (without it such a request is refused: give --ca instead)")
	// The root's help leads with ipvsadm's language, which split hands to
	// ipvsadm's parser before cobra sees it, so that cobra alone would
	// never show it; the subcommands' help stays cobra's.
	subHelp := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		if c != c.Root() {
			subHelp(c, args)
			return
		}
		out := c.OutOrStdout()
		fmt.Fprintf(out, "%s\n\n%s%s\n%s", c.Long, ipvsadm.Usage("ipvsman"), globalUsage, c.UsageString())
	})
	root.AddCommand(clusterCmd(g), nodeCmd(g), serverCmd(g), poolCmd(g), groupCmd(g), quorumCmd(g), checkCmd(g), healthCmd(g), historyCmd(g), rollbackCmd(g), applyCmd(g), exportCmd(g), importCmd(g), topCmd(g), tlsCmd(), versionCmd(), genManCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the command protocol this build speaks",
		Args:  cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintf(c.OutOrStdout(), "ipvsman %s (protocol %d)\n", release.Version, fsm.CommandProtocol)
		},
	}
}

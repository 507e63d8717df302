// Command labtool is the traffic tool of the IPVS lab: one static binary
// (CGO_ENABLED=0) that runs inside the lab's network namespaces, both as the
// real servers behind IPVS and as the client that measures what IPVS does.
//
//	labtool serve --name NAME [--http :80] [--echo :7] [--dns :53]
//	labtool http  --url URL --count N [--timeout 2s] [--interval 0] [--src A,B,... [--src-ports FROM-TO]]
//	labtool dns   --server ADDR[:53] --count N [--timeout 1s] [--interval 0]
//	labtool echo  --addr ADDR:PORT --conns N [--interval 100ms] --duration D [--timeout 2s] [--src A,B,...]
//	labtool poll  --url URL [--every 10ms] [--timeout 50ms] [--duration 0] [--src A,B,...]
//
// --src spreads the clients' connections over source addresses, round
// robin (behind an ECMP router hashing on layer 4, the source picks the
// director); http's --src-ports also fixes the source ports, so that the
// same tuples can be replayed after a change.
//
// poll is the exception to the next paragraph: it prints one JSON line per
// finished request, as it happens, until SIGTERM/SIGINT or --duration.
//
// The clients print exactly one JSON line on stdout and exit 0 whatever the
// traffic did, so that the test, not the tool, decides what counts as a
// failure; they exit 2 only for bad usage and 1 for an internal error. Every
// network call has a deadline and every loop is bounded, so a black-holed
// VIP costs at most count × timeout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
)

// maxErrors bounds the distinct error strings a result carries: enough to
// see what went wrong, not a copy of every failure.
const maxErrors = 5

// maxCount bounds --count and --conns: the lab never needs more, and a typo
// must not turn into an hour-long run.
const maxCount = 1_000_000

// errUsage marks bad command-line input (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "labtool:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "labtool:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  labtool serve --name NAME [--http :80] [--echo :7] [--dns :53]
  labtool http  --url URL --count N [--timeout 2s] [--interval 0] [--src A,B,... [--src-ports FROM-TO]]
  labtool dns   --server ADDR[:53] --count N [--timeout 1s] [--interval 0]
  labtool echo  --addr ADDR:PORT --conns N [--interval 100ms] --duration D [--timeout 2s] [--src A,B,...]
  labtool poll  --url URL [--every 10ms] [--timeout 50ms] [--duration 0] [--src A,B,...]`

// run dispatches one subcommand; tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no subcommand\n%s", errUsage, usage)
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], stdout, stderr)
	case "http":
		return httpCmd(ctx, args[1:], stdout)
	case "dns":
		return dnsCmd(ctx, args[1:], stdout)
	case "echo":
		return echoCmd(ctx, args[1:], stdout)
	case "poll":
		return pollCmd(ctx, args[1:], stdout)
	default:
		return fmt.Errorf("%w: unknown subcommand %q\n%s", errUsage, args[0], usage)
	}
}

// parseFlags parses a subcommand's flags, turning every parse problem
// (including stray positional arguments) into errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %w", errUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected arguments %q", errUsage, fs.Name(), fs.Args())
	}
	return nil
}

func checkCount(flagName string, n int) error {
	if n < 1 || n > maxCount {
		return fmt.Errorf("%w: --%s must be between 1 and %d, got %d", errUsage, flagName, maxCount, n)
	}
	return nil
}

// result is the JSON line printed by the http and dns clients.
type result struct {
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	ByServer map[string]int `json:"by_server"`
	Errors   []string       `json:"errors"`
	// Tuples: source ADDR:PORT -> server, with http --src-ports only.
	Tuples map[string]string `json:"tuples,omitempty"`
}

func newResult() *result {
	// Empty, not nil, so that the JSON says {} and [] rather than null.
	return &result{ByServer: map[string]int{}, Errors: []string{}}
}

func (r *result) success(server string) {
	r.OK++
	r.ByServer[server]++
}

func (r *result) failure(err error) {
	r.Failed++
	r.Errors = addError(r.Errors, err)
}

// addError appends the description of err unless it is already there or the
// list is full.
func addError(list []string, err error) []string {
	msg := describe(err)
	for _, m := range list {
		if m == msg {
			return list
		}
	}
	if len(list) >= maxErrors {
		return list
	}
	return append(list, msg)
}

// describe renders err without the parts that differ on every attempt (the
// client's ephemeral port, the request URL), so that one failure mode shows
// up as one distinct error instead of filling the list with copies.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		if oe.Addr != nil {
			return fmt.Sprintf("%s %s %s: %v", oe.Op, oe.Net, oe.Addr, oe.Err)
		}
		return fmt.Sprintf("%s %s: %v", oe.Op, oe.Net, oe.Err)
	}
	return err.Error()
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

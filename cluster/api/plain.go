package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Every request carries the cluster token. Over plain HTTP it crosses the
// wire in clear, which is harmless on loopback only: a client refuses to
// send it anywhere else unless told to (InsecureHTTP), and says what to
// give instead. The daemons never listen in clear off loopback
// (cmd/ipvsmand checkListeners), so a refusal means a forgotten --ca or an
// address that is not what it was meant to be.

// Default advice in the errors of a plain HTTP client: the CLI's flags.
const (
	plainFixCLI = "give the cluster CA with --ca (or IPVSMAN_CA) to use https, or --insecure-http to send it in clear anyway"
	tlsFixCLI   = "give the cluster CA with --ca (or IPVSMAN_CA)"
)

// tlsProbeTimeout bounds the TLS handshake tried at an address the token
// was not sent to, to say whether it speaks TLS.
const tlsProbeTimeout = 3 * time.Second

// InClear reports whether a request to rawURL would carry its token in
// clear across a network: plain http to a host other than loopback
// (127.0.0.0/8, ::1, localhost). A host name other than localhost counts
// as remote: what it resolves to is not known here.
func InClear(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	return !loopbackHost(u.Hostname())
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PlainHTTPError is a request not sent: over plain HTTP its token would
// have crossed the network in clear.
type PlainHTTPError struct {
	URL string // the base URL, http://HOST:PORT
	Fix string // what to do instead
}

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("api %s: not sending the token over plain HTTP to a non-loopback address, where anyone on the path could read it: %s", e.URL, e.Fix)
}

// SpeaksTLSError is a plain HTTP client that found a TLS server.
type SpeaksTLSError struct {
	Addr string // HOST:PORT
	Fix  string
}

func (e *SpeaksTLSError) Error() string {
	return fmt.Sprintf("the server at %s speaks TLS: %s", e.Addr, e.Fix)
}

// fixes are the client's advice for a refused plain request and for a
// TLS server reached over plain HTTP.
func (c *Client) fixes() (plain, tlsFix string) {
	if c.PlainFix != "" {
		return c.PlainFix, c.PlainFix
	}
	return plainFixCLI, tlsFixCLI
}

// checkPlain refuses, before anything is sent, a request whose token would
// cross the network in clear. It then tries a TLS handshake at the address
// (the token stays out of it) to tell a forgotten CA from a plain server.
func (c *Client) checkPlain(ctx context.Context) error {
	base := c.URL()
	if c.InsecureHTTP || !InClear(base) {
		return nil
	}
	plain, tlsFix := c.fixes()
	u, err := url.Parse(base)
	if err == nil && speaksTLS(ctx, c.dialer(), hostPort(u)) {
		return fmt.Errorf("api %s: %w; nothing was sent", base, &SpeaksTLSError{Addr: hostPort(u), Fix: tlsFix})
	}
	return &PlainHTTPError{URL: base, Fix: plain}
}

// hostPort is u's host with its port (80 when it names none).
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialer is how the client's own transport connects, when it was given
// one that dials its own way, so that the probe reaches what a request
// would.
func (c *Client) dialer() dialFunc {
	if c.HTTP != nil {
		if t, ok := c.HTTP.Transport.(*http.Transport); ok && t.DialContext != nil {
			return t.DialContext
		}
	}
	return (&net.Dialer{}).DialContext
}

// speaksTLS tries a TLS handshake at addr. It verifies nothing and sends
// nothing after the handshake: it only learns whether a TLS server
// answers, to say so instead of "not sending".
func speaksTLS(ctx context.Context, dial dialFunc, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, tlsProbeTimeout)
	defer cancel()
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn := tls.Client(raw, &tls.Config{
		InsecureSkipVerify: true, // a probe: no request follows, whatever the certificate
		MinVersion:         tls.VersionTLS12,
	})
	err = conn.HandshakeContext(ctx)
	if err == nil {
		return true
	}
	// A server that answers the hello with an alert speaks TLS too.
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:")
}

// httpsServerAnswer is what Go's HTTP server writes to a plain HTTP
// request on its TLS port, with status 400.
const httpsServerAnswer = "Client sent an HTTP request to an HTTPS server"

// tlsAnswer reports a 400 from a TLS server to a plain HTTP request as
// such, for a client that sent one (a loopback address, or InsecureHTTP).
func (c *Client) tlsAnswer(status int, body []byte) error {
	if status != 400 || !strings.Contains(string(body), httpsServerAnswer) {
		return nil
	}
	u, err := url.Parse(c.URL())
	if err != nil || u.Scheme != "http" {
		return nil
	}
	_, fix := c.fixes()
	return fmt.Errorf("api %s: %w", c.URL(), &SpeaksTLSError{Addr: hostPort(u), Fix: fix})
}

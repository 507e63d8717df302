// Package check holds the health checkers: each judges one real server
// (or the address and port its check overrides, see Target) once per call
// and reports a Result. A checker only checks: it never schedules, counts
// rises and falls, or commits a verdict (director/health does, on the
// leader), and it imports only fsm.
//
// The built-in types, one file each:
//
//   - tcp: connect, then close. OK when the handshake completes;
//     "connection refused", "timeout", ... otherwise. With Send and/or
//     Expect (tcp.go, on a goroutine): write Send, then read until the
//     answer matches the regular expression Expect (a banner: SMTP's
//     "^220[ -]", POP3's "^\+OK", IMAP's "^\* OK", FTP's, NNTP's), the
//     server closes, 4 KiB or the timeout.
//   - tls: a TLS handshake, then the certificate (cert.go): its chain to
//     CAFile's CAs or the system's roots and its name (SNI, else the
//     target's address) unless Insecure; not expired, and not expiring
//     within ExpiryMarginS. Send and Expect then work over TLS.
//   - smtp: keepalived's SMTP_CHECK: the 220 greeting, EHLO Helo (HELO
//     after a 5xx), 250, QUIT.
//   - http, https: one HTTP/1.0 request (Method, default GET; Path,
//     default /; Host header, default the target) on a new connection,
//     judged by its status code (Status, default 200-399) and, if Body is
//     set, by a regular expression over the first 64 KiB of the body.
//     Redirects are not followed: a 3xx is judged like any other code.
//     https sends SNI (SNI, else Host's name) and verifies the certificate
//     (against SNI, else the target's address) unless Insecure; with
//     CAFile or ExpiryMarginS, as the tls check does. Digest: the MD5 of
//     the whole body (keepalived's digest), read to its Content-Length or
//     the server's close. Like
//     keepalived's HTTP_GET, it writes a prebuilt request and reads the
//     status line itself rather than through net/http (see http.go).
//   - dns: one question (Query, QType default A) over Proto (udp, default,
//     or tcp). OK when the response code is RCode (default NOERROR) and,
//     if Answer is set, some answer record's text contains it.
//   - udp: send Send from a connected socket and read one reply, which must
//     match the regular expression Expect (any reply if empty). An ICMP
//     port unreachable fails the check at once; no reply is a timeout.
//   - icmp: one echo request, IPv4 or IPv6, from an unprivileged ping
//     socket when net.ipv4.ping_group_range allows it, else from a raw
//     socket (CAP_NET_RAW). The target's port is ignored.
//   - exec: run Command (an argv, no shell) with the target in
//     $IPVSMAN_CHECK_ADDR and $IPVSMAN_CHECK_PORT; exit 0 is OK. As with
//     keepalived's misc_dynamic, a last stdout line "weight N" (0-65535)
//     sets Result.Weight. The command's process group is killed when the
//     context ends. Its program must be in the node's check directory
//     (Options.Exec, a Dir: see checkdir.go), resolved again at every
//     check; one that is not fails the check, "not run: ...", and runs
//     nothing. Dir.Admit is the same rule for the leader's write path.
//
// Every checker that opens its own TCP or UDP socket (not icmp, not exec)
// honours Source, SourcePort and FWMark (socket.go): keepalived's bindto,
// bind_port and fwmark. Retries (RetryDelayMS) are the scheduler's
// (director/health), not a checker's.
//
// Every checker honours its context (the caller sets the timeout), is
// safe for concurrent use, and does its per-configuration work (regular
// expressions, requests, query templates) once, in New, and holds nothing
// between checks.
//
// # Adding a checker
//
// Write one file, say foo.go, with a type implementing Checker and an
// init that registers its builder:
//
//	func init() { Register("foo", newFoo) }
//
//	func newFoo(c fsm.HealthCheck, o Options) (Checker, error) { ... }
//
// The builder gets the check with defaults applied and already validated
// by fsm.ValidateHealthCheck, and the node's Options; add the type to fsm.CheckTypes (and its
// fields' validation) so that configurations may use it. Use describe for
// error details and watch to make a net.Conn honour the context.
package check

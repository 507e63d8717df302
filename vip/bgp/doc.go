// Package bgp announces VIP prefixes to routers over BGP, for the ecmp VIP
// mode: every ready director announces the VIP's /32 or /128 and the
// router spreads flows over them by ECMP; a director that stops being
// ready withdraws, one that is drained first re-announces with
// GRACEFUL_SHUTDOWN (65535:0).
//
// The speaker is GoBGP (github.com/osrg/gobgp/v4), embedded: no child
// process, no control socket, no generated configuration. Its sessions
// belong to the daemon's process, so a crashed daemon's routes go when
// the kernel closes its connections, and native BFD drops a director
// behind a cut link within a second. docs/bgp.md has the measurements
// that chose it over BIRD and FRR as child processes.
//
// The package knows prefixes and peers, nothing of Raft or of which VIPs
// exist: the VIP manager decides, the Speaker carries it out.
package bgp

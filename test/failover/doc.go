// Package failover measures how long clients lose a virtual IP when its
// holder fails, for ipvsman and, as a baseline, for keepalived (VRRP), in
// the same network-namespace lab (test/lab/topo) and with the same client.
//
// The pieces are reusable from other tests:
//
//   - Poller runs `labtool poll` in a namespace: one HTTP GET every few
//     milliseconds, each on a fresh connection with a short deadline, and
//     answers questions about the stream (first answer after an instant,
//     failures in a window, a run of answers from one server).
//   - Observer samples, every 2 ms over netlink, which directors have the VIP
//     on eth0, and computes how long two of them held it at once.
//   - Keepalived and Ipvsman drive three directors: start, crash (SIGKILL and
//     link cut in the same instant), restart.
//
// The benchmark itself (bench_test.go, build tag failoverbench) is run by
// bench.sh; README.md says what it measures and how.
package failover

// Package benchwrites is `make bench-writes`: how the write path scales
// with the size of one write, measured end to end through the real CLI
// against three real ipvsmand processes (--ipvs=off --vips=off) on
// loopback, and how long a restarted follower takes to serve again with a
// large state.
//
// The benchmark (bench_test.go) has the build tag benchwrites, so that
// `go test ./...` and `make test` never run it: it takes minutes, and its
// figures are reported, never asserted. It fails (it does not skip) when a
// step cannot be measured; the figure is then printed as n/a.
//
// What it does, through one node (the leader when the bench starts):
//
//   - `ipvsman --timeout 300s -R` of one service with 1,000, 10,000 and
//     100,000 real servers, and of 10,000 services × 10 real servers, the
//     stdin in `ipvsadm -S` form; three rounds of each, `ipvsman -C`
//     (untimed) before every round. Each round is the CLI's wall time: parse,
//     request, commit, answer.
//   - write_scaling_100x: the median for 100,000 real servers over the
//     median for 1,000. A linear write path gives 100.
//   - restart_to_serving_s: a follower stopped with SIGTERM and started
//     again on its data dir (100,000 real servers in the state), from the
//     process start until its /v1/status shows the leader's commit index of
//     that moment applied and `ipvsman -L -n` through it lists the whole
//     table without a staleness warning.
//   - leader_changes: every node's /v1/status polled every 150 ms for the
//     whole run; the number of distinct (term, leader) pairs confirmed (by
//     two nodes, or one node twice in a row), minus one. A node that does
//     not know the leader (a restarting one) reports no pair, so a restart
//     alone adds nothing.
//
// The daemons run as the packaged unit runs them (--nice=-20). With
// BENCH_DEBUG set, n1, n2 and n3 serve Go's /debug/pprof (profiles and
// execution traces) on 127.0.0.1:6061, 6062 and 6063; BENCH_LOGS=DIR keeps
// their logs.
//
// The daemons share the host's CPUs with whatever else runs there; the
// load average is printed at the start and the end, since a loaded host
// (Raft's 150 ms heartbeat timeout) shows up as leader changes and slow
// rounds.
//
// The pure parts (input, statistics, the leadership count) are in the
// untagged files and tested without processes.
package benchwrites

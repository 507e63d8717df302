// Package vip will hold the virtual IPs on the leader: addresses on
// interfaces over netlink, gratuitous ARP and IPv6 neighbour advertisements,
// dropped first on any loss of leadership. It is milestone 4 (issue 5); the
// VIP definitions already live in the replicated model (fsm.VIP). Nothing
// here is built yet, and docs/architecture.md says so.
package vip

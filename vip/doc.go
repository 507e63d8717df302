// Package vip holds the virtual IPs on the leader's interfaces and
// announces them (gratuitous ARP for IPv4, unsolicited neighbour
// advertisements for IPv6), and judges whether this node can serve them
// (Tracker: the VIP links' carrier, tracked addresses and scripts).
//
// It knows nothing of Raft beyond "this node leads" (Manager.Lead) and
// "it does not" (Manager.Follow, Manager.Close), and imports nothing of
// cluster or director: the cluster's leadership hook, wired by the daemon,
// calls Follow before anything else when leadership is lost, and Lead only
// after a Barrier. Addresses are recorded in a state file before they are
// added, so that Manager.Start, the first thing the daemon does, removes
// whatever a crashed process left behind.
package vip

package fsm

import (
	"maps"
	"slices"
)

// KernelProtocol is the protocol that knows what ipvsadm has beyond the
// first model: SCTP services, the local-node method, persistence engines
// (--pe sip), and schedulers other than the fourteen the first model
// listed. An older build refuses such a service or real server when it
// applies the command (an unknown protocol, method or scheduler) while
// the others accept it, and the replicas would differ; so a configuration
// using them is refused until every member speaks this protocol.
const KernelProtocol = ChecksProtocol + 1

// firstSchedulers are the scheduler names builds before KernelProtocol
// accept.
var firstSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// needsKernel is the highest protocol a service or real server needs for
// what KernelProtocol added, and which one.
func (c *Config) needsKernel() (int, string) {
	for _, k := range slices.Sorted(maps.Keys(c.Services)) {
		svc := c.Services[k]
		switch {
		case svc.Key.Protocol == SCTP:
			return KernelProtocol, "service " + k + ": sctp"
		case !slices.Contains(firstSchedulers, svc.Scheduler):
			return KernelProtocol, "service " + k + ": scheduler " + svc.Scheduler
		case svc.Persistence != nil && svc.Persistence.Engine != "":
			return KernelProtocol, "service " + k + ": persistence engine " + svc.Persistence.Engine
		case svc.Sorry != nil && svc.Sorry.Forward == LocalNode:
			return KernelProtocol, "service " + k + ": local sorry server"
		}
		for rk, rs := range svc.Servers {
			if rs.Forward == LocalNode {
				return KernelProtocol, "real server " + rk + " of service " + k + ": local node"
			}
		}
		for rk, rs := range svc.Pool {
			if rs.Forward == LocalNode {
				return KernelProtocol, "pool server " + rk + " of service " + k + ": local node"
			}
		}
	}
	return BaseCommandProtocol, ""
}

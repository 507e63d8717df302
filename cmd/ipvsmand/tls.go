package main

import (
	"fmt"
	"net"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
)

// loadTLS reads --tls-cert, --tls-key and --tls-ca: all three, or none
// (nil: plain TCP and HTTP, allowed on loopback only; see checkListeners).
// The certificate must name node (--node-id): the other nodes let this
// one act only as the node its certificate names.
func loadTLS(certFile, keyFile, caFile, node string) (*cluster.TLS, error) {
	given := 0
	for _, f := range []string{certFile, keyFile, caFile} {
		if f != "" {
			given++
		}
	}
	switch given {
	case 0:
		return nil, nil
	case 3:
		m, err := cluster.LoadTLS(certFile, keyFile, caFile, time.Now())
		if err != nil {
			return nil, err
		}
		if m.Node() != node {
			return nil, fmt.Errorf("--tls-cert %q is node %q's certificate, and --node-id is %q: each node needs its own (`ipvsman tls init --node %s=IP`)", certFile, m.Node(), node, node)
		}
		return m, nil
	}
	return nil, fmt.Errorf("--tls-cert %q, --tls-key %q, --tls-ca %q: give all three or none (`ipvsman tls init` makes them)", certFile, keyFile, caFile)
}

// isLoopback reports whether a listen address is on loopback only. A
// wildcard (":7080", "0.0.0.0:7080") or a host name other than localhost
// is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkListeners keeps the promise that nothing listens unauthenticated
// on a non-loopback address: Raft and the API need TLS there (the API's
// token would otherwise cross the network in clear, and Raft has no other
// authentication), and the profiling server, which has none at all, stays
// on loopback. Gossip is encrypted with a key derived from the token.
func checkListeners(raftAddr, apiAddr, debugAddr string, tlsOn bool) error {
	if !tlsOn {
		for _, f := range []struct{ flag, addr string }{{"--raft-addr", raftAddr}, {"--api-addr", apiAddr}} {
			if !isLoopback(f.addr) {
				return fmt.Errorf("%s %q is not a loopback address: give --tls-cert, --tls-key and --tls-ca (`ipvsman tls init` makes them), so that nothing listens unauthenticated on the network", f.flag, f.addr)
			}
		}
	}
	if debugAddr != "" && !isLoopback(debugAddr) {
		return fmt.Errorf("--debug-addr %q: the profiling server has no authentication: give a loopback address (127.0.0.1:PORT) and reach it through ssh", debugAddr)
	}
	return nil
}

// checkPeersInClear keeps a node without TLS from sending the token in
// clear: every API call between nodes carries it, so --join must be a
// loopback address, and --api-advertise too (the others would call this
// node there). A node off loopback needs the --tls-* flags in any case
// (checkListeners); this names the flag that would have leaked.
func checkPeersInClear(join, advertise string, tlsOn bool) error {
	if tlsOn {
		return nil
	}
	if join != "" && api.InClear(api.BaseURL(join, false)) {
		return fmt.Errorf("--join %q is not a loopback address, and this node runs without TLS: the join would send the cluster token in clear; give --tls-cert, --tls-key and --tls-ca (`ipvsman tls init` makes them)", join)
	}
	if advertise != "" && api.InClear(api.BaseURL(advertise, false)) {
		return fmt.Errorf("--api-advertise %q is not a loopback address, and this node runs without TLS: the other nodes would send it the cluster token in clear; give --tls-cert, --tls-key and --tls-ca (`ipvsman tls init` makes them)", advertise)
	}
	return nil
}

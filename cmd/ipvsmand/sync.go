package main

import (
	"fmt"
	"net"
	"net/netip"
)

// syncInterface is the interface the sync threads use: --sync-interface,
// or the one holding the Raft address, the network the directors share.
func syncInterface(flag, raftAddr string) (string, error) {
	if flag != "" {
		if _, err := net.InterfaceByName(flag); err != nil {
			return "", fmt.Errorf("--sync-interface %q: %w", flag, err)
		}
		return flag, nil
	}
	ap, err := netip.ParseAddrPort(raftAddr)
	if err != nil || ap.Addr().IsUnspecified() || ap.Addr().IsLoopback() {
		return "", fmt.Errorf("--raft-addr %q is not an address on the directors' network; give --sync-interface", raftAddr)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == ap.Addr().Unmap() {
				return ifc.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no interface holds --raft-addr's %s; give --sync-interface", ap.Addr())
}

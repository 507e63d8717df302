package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/fsm"
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

// startSync runs this node's connection sync threads, following the model
// and leadership (wake is poked on every leadership change).
func startSync(ctx context.Context, node *cluster.Node, o options, wake chan struct{}, log *slog.Logger) (*director.SyncDaemons, error) {
	iface, err := syncInterface(o.syncIface, o.raftAddr)
	if err != nil {
		// Without it the node still directs traffic; its connections just do
		// not survive a failover. Said loudly, not fatal.
		log.Error("connection sync off on this node", "err", err)
	}
	k, err := ipvsnl.Dial()
	if err != nil {
		return nil, fmt.Errorf("connection sync: %w", err)
	}
	s := &director.SyncDaemons{Kernel: k, Log: log, SysctlDir: director.SyncSysctlDir}
	changes := node.Subscribe()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changes:
				poke(wake)
			}
		}
	}()
	go func() {
		defer k.Close()
		s.Run(ctx, wake, func() director.SyncTarget {
			t := director.SyncTarget{Leader: node.IsLeader(), Iface: iface}
			node.View(func(st *fsm.State, _ uint64) {
				t.Settings, t.Masquerading, t.Mixed = fsm.SyncOf(st.Config), director.Masquerading(st.Config), director.MixedFamily(st.Config)
			})
			return t
		})
	}()
	return s, nil
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/notify"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/vip"
)

// trackOptions are the flags of readiness: keepalived's track_interface
// and track_script, and a tracked address (the gateway).
type trackOptions struct {
	ifaces, addrs, scripts []string
	interval               time.Duration
	fall, rise             int
}

// notifyOptions are the hook commands: by event, and one for every event.
type notifyOptions struct {
	all     string
	byKind  map[notify.Kind]*string // filled by the flags
	timeout time.Duration
}

func registerTrack(f *pflag.FlagSet, t *trackOptions) {
	f.StringArrayVar(&t.ifaces, "track-interface", nil, "an interface that must have carrier for this node to serve, besides those holding its VIPs (repeat for more); a leader that cannot serve hands leadership to a node that can")
	f.StringArrayVar(&t.addrs, "track-address", nil, "an address that must answer ICMP echo for this node to serve, e.g. the gateway (repeat for more)")
	f.StringArrayVar(&t.scripts, "track-script", nil, "a command (/bin/sh -c) that must exit 0 for this node to serve; run every 5 intervals (repeat for more)")
	f.DurationVar(&t.interval, "track-interval", 200*time.Millisecond, "how often links, tracked addresses (and every 5th time, scripts) are checked")
	f.IntVar(&t.fall, "track-fall", 3, "failures in a row that make a tracked address or script down")
	f.IntVar(&t.rise, "track-rise", 2, "successes in a row that make it up again")
}

func registerNotify(f *pflag.FlagSet, n *notifyOptions) {
	n.byKind = map[notify.Kind]*string{}
	what := map[notify.Kind]string{
		notify.Leader:     "this node gains leadership (keepalived's notify_master)",
		notify.Backup:     "this node loses leadership (notify_backup)",
		notify.VIPAdd:     "a VIP is added to an interface here",
		notify.VIPRemove:  "a VIP is removed from an interface here",
		notify.Up:         "a real server's verdict turns up (notify_up; run by the leader)",
		notify.Down:       "a real server's verdict turns down (notify_down; run by the leader)",
		notify.QuorumUp:   "a service gains its quorum (quorum_up; run by the leader)",
		notify.QuorumDown: "a service loses its quorum, or starts without it (quorum_down; run by the leader)",
	}
	for _, k := range notify.Kinds {
		n.byKind[k] = new(string)
		f.StringVar(n.byKind[k], "notify-"+string(k), "", "command (/bin/sh -c) run when "+what[k]+"; the event is in $IPVSMAN_EVENT, $IPVSMAN_NODE, $IPVSMAN_SEQ, $IPVSMAN_TIME, $IPVSMAN_VIP, $IPVSMAN_INTERFACE, $IPVSMAN_SERVICE, $IPVSMAN_SERVER, $IPVSMAN_REASON")
	}
	f.StringVar(&n.all, "notify", "", "command run on every event, after the event's own (keepalived's notify)")
	f.DurationVar(&n.timeout, "notify-timeout", 10*time.Second, "a hook still running after this is killed, with its children")
}

// trackedAddrs parses --track-address, naming the flag and the value.
func trackedAddrs(in []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil || a.IsUnspecified() || a.IsMulticast() {
			return nil, fmt.Errorf("--track-address %q: want a unicast IP address (the gateway, say)", s)
		}
		out = append(out, a)
	}
	return out, nil
}

// checkTrack checks the readiness flags before anything starts.
func checkTrack(t trackOptions) error {
	if _, err := trackedAddrs(t.addrs); err != nil {
		return err
	}
	if t.interval < 10*time.Millisecond || t.interval > time.Minute {
		return fmt.Errorf("--track-interval %s: want 10ms to 1m", t.interval)
	}
	if t.fall < 1 || t.fall > 100 {
		return fmt.Errorf("--track-fall %d: want 1 to 100", t.fall)
	}
	if t.rise < 1 || t.rise > 100 {
		return fmt.Errorf("--track-rise %d: want 1 to 100", t.rise)
	}
	return nil
}

// vipLinks lists the interfaces that carry a VIP on node in st, with the
// extra ones --track-interface names.
func vipLinks(st *fsm.State, node string, extra []string) []string {
	out := slices.Clone(extra)
	for _, v := range st.Config.VIPs {
		if i := v.InterfaceOn(node); i != "" {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// startReadiness runs the tracker that tells the node whether it can
// serve: the VIPs' links (when this node holds VIPs), the tracked
// addresses and scripts, and the kernel table (with --ipvs=on).
func (d *daemon) startReadiness() {
	t := d.o.track
	addrs, _ := trackedAddrs(t.addrs) // checked by loadSettings
	tr := &vip.Tracker{
		Addrs:    addrs,
		Scripts:  t.scripts,
		Interval: t.interval,
		Fall:     t.fall,
		Rise:     t.rise,
		Log:      d.log,
		OnChange: func(ready bool, reason string) {
			d.node.SetReadiness(cluster.Readiness{Ready: ready, Reason: reason})
			d.tracked.Store(true)
			poke(d.ecmpWake)
		},
	}
	tr.Links = func() []string {
		if d.vips == nil {
			return t.ifaces // --vips=off: no VIP link here to watch
		}
		var links []string
		d.node.View(func(st *fsm.State, _ uint64) { links = vipLinks(st, d.o.nodeID, t.ifaces) })
		return links
	}
	if d.ipvs != nil {
		tr.Extra = func() (bool, string) { return kernelReady(d.ipvs.rec.Last().Failed) }
	}
	d.stop.track = d.stack.push("readiness", start(tr.Run))
}

// kernelReady is the kernel table's part of readiness: a node whose
// table fails to apply would forward to servers the model no longer has,
// or to none.
func kernelReady(failed int) (bool, string) {
	if failed > 0 {
		return false, fmt.Sprintf("kernel table: %d operations failing", failed)
	}
	return true, ""
}

// newNotifier starts the hooks, if any command is given.
func (d *daemon) newNotifier() {
	n := d.o.notify
	cmds := map[notify.Kind]string{}
	for k, c := range n.byKind {
		if *c != "" {
			cmds[k] = *c
		}
	}
	d.hooks = notify.New(notify.Config{Commands: cmds, All: n.all, Timeout: n.timeout, Node: d.o.nodeID, Log: d.log})
	if d.hooks != nil {
		d.stop.hooks = d.stack.push("notify hooks", func(ctx context.Context) { d.hooks.Close(ctx) })
	}
	d.verdictHooks = n.all != "" || cmds[notify.Up] != "" || cmds[notify.Down] != ""
}

// vipChanged is the VIP manager's report of an address added or removed.
func (d *daemon) vipChanged(added bool, a vip.Addr, reason string) {
	kind := notify.VIPRemove
	if added {
		kind = notify.VIPAdd
	}
	d.hooks.Notify(notify.Event{Kind: kind, VIP: a.Prefix.String(), Iface: a.Interface, Reason: reason})
}

// watchVerdicts tells the hooks of real servers turning up or down. Every
// node applies the same verdicts; only the leader, which decided them,
// tells, so that a hook runs once per transition in the cluster.
func (d *daemon) watchVerdicts(ctx context.Context) {
	changes := d.node.Subscribe()
	var before map[string]fsm.Verdict
	for {
		var now map[string]fsm.Verdict
		d.node.View(func(st *fsm.State, _ uint64) { now = cloneVerdicts(st.Verdicts) })
		if before != nil && d.node.IsLeader() {
			for _, ev := range notify.Verdicts(before, now) {
				d.hooks.Notify(ev)
			}
		}
		before = now
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

func cloneVerdicts(m map[string]fsm.Verdict) map[string]fsm.Verdict {
	out := make(map[string]fsm.Verdict, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

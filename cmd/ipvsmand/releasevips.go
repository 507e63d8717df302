package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipvsman/ipvsman/vip"
)

// vipStateFile is where the VIP manager records, before it adds one, every
// address this node may hold (vip.Manager.StateFile).
func vipStateFile(dataDir string) string { return filepath.Join(dataDir, "vips.json") }

// addrDeleter removes one address from one interface; an address or an
// interface that is not there is not an error (vip.Netlink).
type addrDeleter interface {
	Del(iface string, p netip.Prefix) error
}

// recordedAddr is one entry of vips.json as written, read as text so that
// a bad entry can be named by its field and value.
type recordedAddr struct {
	Prefix    *string `json:"prefix"`
	Interface *string `json:"interface"`
}

// readRecordedVIPs reads and checks every entry of the state file before
// anything is removed, so that a damaged file changes nothing. A missing
// file records nothing.
func readRecordedVIPs(path string) ([]vip.Addr, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var raw []recordedAddr
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: want a JSON list of {\"prefix\", \"interface\"}: %w", path, err)
	}
	out := make([]vip.Addr, 0, len(raw))
	for i, r := range raw {
		if r.Prefix == nil {
			return nil, fmt.Errorf("%s: entry %d: prefix: missing", path, i)
		}
		p, err := netip.ParsePrefix(*r.Prefix)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: prefix %q: %w", path, i, *r.Prefix, err)
		}
		if r.Interface == nil {
			return nil, fmt.Errorf("%s: entry %d: interface: missing", path, i)
		}
		// The kernel's own limits on an interface name (IFNAMSIZ less
		// the NUL; no slash, no blank): anything else was never written
		// by the VIP manager.
		iface := *r.Interface
		if iface == "" || len(iface) > 15 || strings.ContainsAny(iface, "/ \t\n:") {
			return nil, fmt.Errorf("%s: entry %d: interface %q: not an interface name", path, i, iface)
		}
		out = append(out, vip.Addr{Prefix: p, Interface: iface})
	}
	return out, nil
}

// releaseVIPs removes from their interfaces the addresses the state file
// in dataDir records, and nothing else: what a dead daemon of this node
// may have left up. The service manager runs it after the daemon's main
// process has ended by any means (ExecStopPost), so a crash does not leave
// a VIP answering beside the next leader's until the daemon restarts. It
// is idempotent: an address already gone is not an error, and the file is
// left for the next start-up's own cleanup, which finds nothing to do.
func releaseVIPs(dataDir string, addrs addrDeleter, log *slog.Logger) error {
	path := vipStateFile(dataDir)
	rec, err := readRecordedVIPs(path)
	if err != nil {
		return fmt.Errorf("release-vips: %w", err)
	}
	if len(rec) == 0 {
		log.Info("release-vips: no address recorded", "file", path)
		return nil
	}
	var errs []error
	for _, a := range rec {
		if err := addrs.Del(a.Interface, a.Prefix); err != nil {
			log.Error("release-vips: address not removed", "vip", a.Prefix.String(), "interface", a.Interface, "err", err)
			errs = append(errs, err)
			continue
		}
		log.Info("release-vips: address removed (or already gone)", "vip", a.Prefix.String(), "interface", a.Interface, "file", path)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release-vips: %d of %d recorded address(es) not removed: %w", len(errs), len(rec), err)
	}
	return nil
}

// runReleaseVIPs is ipvsmand --release-vips: the daemon's own options (the
// command line over the --config file) name the data dir, so that the
// service manager can pass it the very options the daemon had.
func runReleaseVIPs(o options, cmdline map[string][]string) error {
	o, _, err := loadOptions(cmdline, o.config)
	if err != nil {
		return err
	}
	log, _, err := optionsLogger(o)
	if err != nil {
		return err
	}
	return releaseVIPs(o.dataDir, vip.Netlink{}, log)
}

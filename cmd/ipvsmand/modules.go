package main

import (
	"fmt"
	"log/slog"

	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/fsm"
)

// admitFor is the Raft node's Admit: the exec checks' directory, and with
// --ipvs=on the kernel's schedulers and persistence engines. A write
// naming a scheduler this leader's kernel cannot load is refused before
// the log; with --ipvs=off this node programs no kernel and asks none.
func admitFor(o *options, exec func(cur, next *fsm.Config) error, log *slog.Logger) func(cur, next *fsm.Config) error {
	if o.ipvs != "on" {
		return exec
	}
	mods, err := director.KernelModules()
	if err != nil {
		log.Warn("kernel modules unknown: schedulers are not checked before a write", "err", err)
		return exec
	}
	log.Info("writes naming a scheduler or persistence engine this kernel lacks are refused", "kernel", mods.Release, "modules", mods.Lib)
	return func(cur, next *fsm.Config) error {
		if err := exec(cur, next); err != nil {
			return err
		}
		if err := mods.Admit(cur, next); err != nil {
			return fmt.Errorf("%w (checked by the leader, %s)", err, o.nodeID)
		}
		return nil
	}
}

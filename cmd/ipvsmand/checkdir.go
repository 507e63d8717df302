package main

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/ipvsman/ipvsman/director/check"
	"github.com/ipvsman/ipvsman/fsm"
)

// openExec reads --check-dir and --check-user into how this node runs
// exec checks, and logs the outcome in one line. A bad flag value (a
// relative directory, an unknown user, a user this process may not
// become) stops the start; a directory that
// is missing or unsafe does not: the node still directs traffic, refuses
// writes adding exec checks while it leads, and fails the exec checks it
// runs, saying why, until the directory is fixed.
func openExec(dir, user string, log *slog.Logger) (*check.Exec, error) {
	d, err := check.NewDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--check-dir: %w", err)
	}
	x := &check.Exec{Dir: d, Log: log}
	runAs := "the daemon's user"
	if user != "" {
		if x.Cred, err = check.UserCredential(user); err != nil {
			return nil, fmt.Errorf("--check-user: %w", err)
		}
		if err := check.CanSwitchUser(); err != nil {
			return nil, fmt.Errorf("--check-user %q: %w", user, err)
		}
		runAs = user + " (uid " + strconv.FormatUint(uint64(x.Cred.Uid), 10) + ", gid " + strconv.FormatUint(uint64(x.Cred.Gid), 10) + ", no supplementary groups)"
	}
	if err := d.Check(); err != nil {
		log.Warn("exec checks: --check-dir unusable: writes adding exec checks are refused and exec checks fail until it is fixed", "check_dir", dir, "run_as", runAs, "err", err)
		return x, nil
	}
	if err := d.Reachable(x.Cred); err != nil {
		log.Warn("exec checks: --check-user cannot reach --check-dir: its exec checks will fail", "check_dir", dir, "run_as", runAs, "err", err)
		return x, nil
	}
	log.Info("exec checks run only programs in --check-dir", "check_dir", dir, "run_as", runAs)
	return x, nil
}

// admitExec is the Raft node's Admit: while this node leads, a write whose
// exec check names a program outside its --check-dir is refused before
// the log. The error says which node checked, since the directories are
// each node's own.
func admitExec(x *check.Exec, node string) func(cur, next *fsm.Config) error {
	return func(cur, next *fsm.Config) error {
		if err := x.Dir.Admit(cur, next); err != nil {
			return fmt.Errorf("%w (checked by the leader, %s)", err, node)
		}
		return nil
	}
}

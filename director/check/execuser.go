package check

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// UserCredential is what exec checks run as for --check-user name (a user
// name or a numeric uid): the user's uid and primary group, and no
// supplementary groups, so that the daemon's groups are not handed down.
func UserCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.ParseUint(name, 10, 32); nerr != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%q: gid %q: %w", name, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// Linux capability numbers (linux/capability.h) a switch of user needs.
const (
	capSetGID = 6 // setgid, setgroups
	capSetUID = 7 // setuid
)

// CanSwitchUser reports whether this process may run programs as another
// user: it needs CAP_SETUID and CAP_SETGID in its effective set, which a
// systemd unit's CapabilityBoundingSet may have taken away from root.
func CanSwitchUser() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	return canSwitch(string(b))
}

func canSwitch(status string) error {
	for _, line := range strings.Split(status, "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("capabilities: CapEff %q: %w", strings.TrimSpace(hex), err)
		}
		var missing []string
		if eff&(1<<capSetUID) == 0 {
			missing = append(missing, "CAP_SETUID")
		}
		if eff&(1<<capSetGID) == 0 {
			missing = append(missing, "CAP_SETGID")
		}
		if len(missing) > 0 {
			return fmt.Errorf("this process lacks %s (a systemd unit's CapabilityBoundingSet and AmbientCapabilities must give CAP_SETUID CAP_SETGID)", strings.Join(missing, " and "))
		}
		return nil
	}
	return errors.New("capabilities: no CapEff line in /proc/self/status")
}

package fsm

import (
	"fmt"
	"net/netip"
)

// Sync is the kernel's connection sync (ipvsadm --start-daemon), the same
// on every node: each node runs a backup thread, which learns the leader's
// connections, and the leader also a master thread, which sends them, so
// that established connections survive a failover. The interface the
// threads use is a node's own (ipvsmand --sync-interface). Nil in the
// config: on, with the defaults below.
type Sync struct {
	Off bool `json:"off,omitempty" yaml:"off,omitempty"`
	// ID tells this cluster's sync messages from another's on the same
	// network (1-255; 0: DefaultSyncID). Not 0 in the kernel: a backup
	// with sync ID 0 takes every master's connections.
	ID uint8 `json:"id,omitempty" yaml:"id,omitempty"`
	// Group and Port are where the master sends (a multicast group; zero:
	// 224.0.0.81 and 8848, the kernel's).
	Group netip.Addr `json:"group,omitzero" yaml:"group,omitempty"`
	Port  uint16     `json:"port,omitempty" yaml:"port,omitempty"`
	TTL   uint8      `json:"ttl,omitempty" yaml:"ttl,omitempty"` // 0: 1, the kernel's
	// MaxLen bounds a sync message's payload (0: the interface's MTU less
	// headers, the kernel's choice).
	MaxLen uint16 `json:"max_len,omitempty" yaml:"max_len,omitempty"`
}

// Defaults of the sync settings, the kernel's but for the ID.
const (
	DefaultSyncID   = 1
	DefaultSyncPort = 8848
	DefaultSyncTTL  = 1
	MinSyncMaxLen   = 256 // below this a message holds a handful of connections
)

// DefaultSyncGroup is the kernel's IPv4 group.
var DefaultSyncGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})

// SyncOf is the config's sync settings with every default filled in.
func SyncOf(c *Config) Sync {
	var s Sync
	if c != nil && c.Sync != nil {
		s = *c.Sync
	}
	if s.ID == 0 {
		s.ID = DefaultSyncID
	}
	if !s.Group.IsValid() {
		s.Group = DefaultSyncGroup
	}
	if s.Port == 0 {
		s.Port = DefaultSyncPort
	}
	if s.TTL == 0 {
		s.TTL = DefaultSyncTTL
	}
	return s
}

// ValidateSync checks sync settings.
func ValidateSync(s *Sync) error {
	if s.Group.IsValid() && (s.Group.Zone() != "" || !s.Group.IsMulticast()) {
		return fmt.Errorf("sync group %s: not a multicast group", s.Group)
	}
	if s.MaxLen != 0 && s.MaxLen < MinSyncMaxLen {
		return fmt.Errorf("sync max_len %d: want 0 (the interface's MTU) or %d or more", s.MaxLen, MinSyncMaxLen)
	}
	return nil
}

// Describe is the settings in one line, for history and dry runs.
func (s Sync) Describe() string {
	if s.Off {
		return "off"
	}
	maxLen := "mtu"
	if s.MaxLen != 0 {
		maxLen = fmt.Sprint(s.MaxLen)
	}
	return fmt.Sprintf("id %d group %s port %d ttl %d max_len %s", s.ID, s.Group, s.Port, s.TTL, maxLen)
}

// applySetSync replaces the sync settings (set-sync).
func applySetSync(c *Config, op Op) error {
	if op.Sync == nil {
		return fmt.Errorf("%s: sync: missing", op.Kind)
	}
	if err := ValidateSync(op.Sync); err != nil {
		return err
	}
	s := *op.Sync
	c.Sync = &s
	return nil
}

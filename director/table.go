package director

import (
	"github.com/ipvsman/ipvsman/director/table"
	"github.com/ipvsman/ipvsman/fsm"
)

// The kernel table's types live in director/table, which is pure so that
// the CLI and the console use them without netlink; the reconciler and
// the kernel adapter name them here.
type (
	Table   = table.Table
	Service = table.Service
	Dest    = table.Dest
	Conn    = table.Conn
)

// Kernel service flags (linux/ip_vs.h); see director/table.
const (
	FlagPersistent = table.FlagPersistent
	FlagHashed     = table.FlagHashed
	FlagOnePacket  = table.FlagOnePacket
	FlagSched1     = table.FlagSched1
	FlagSched2     = table.FlagSched2
	FlagSched3     = table.FlagSched3
)

// Desired is the table every node must hold for a state (table.Desired).
func Desired(st *fsm.State) Table { return table.Desired(st) }

// Managed is every service key the model holds or held (table.Managed):
// what seeds the record of owned services on a node that has none.
func Managed(st *fsm.State) map[string]bool { return table.Managed(st) }

func sameService(a, b Service) bool            { return table.SameService(a, b) }
func serviceDigest(k string, s Service) uint64 { return table.ServiceDigest(k, s) }
func formatFingerprint(sum uint64, n int) string {
	return table.FormatFingerprint(sum, n)
}

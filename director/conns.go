package director

import "github.com/ipvsman/ipvsman/director/table"

// The sync file first: it is the one with the origin column, which the
// sync daemon's connections are counted by. It lacks the persistence
// engine's data, which `-L -c -n` does not print.
const (
	connSyncPath = "/proc/net/ip_vs_conn_sync"
	connPath     = "/proc/net/ip_vs_conn"
)

// ReadConns reads the kernel's connection table of this network namespace.
func ReadConns() ([]Conn, error) { return table.ReadConnsFrom(connSyncPath, connPath) }

package harness

import (
	"fmt"
	"syscall"
)

// Reload sends the daemon SIGHUP (what `systemctl reload` does) and
// returns at once: the daemon logs what the reload changed.
func (n *Node) Reload() error {
	if n.cmd == nil {
		return fmt.Errorf("node %s is not running", n.ID)
	}
	return n.cmd.Process.Signal(syscall.SIGHUP)
}

// Alive reports whether the daemon's process has not ended.
func (n *Node) Alive() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

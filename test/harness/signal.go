package harness

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"time"
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

// ReleaseVIPs runs what the packaged unit's ExecStopPost runs once the
// daemon's process has ended: ipvsmand --release-vips with the node's data
// dir, in the node's namespace. It returns the command's output.
func (n *Node) ReleaseVIPs() (string, error) {
	if n.cmd != nil {
		return "", fmt.Errorf("node %s is still running: systemd runs ExecStopPost only after the main process ended", n.ID)
	}
	daemon := n.c.Daemon
	if n.Daemon != "" {
		daemon = n.Daemon
	}
	bin, args := inNetNS(n.NetNS, daemon, "--node-id", n.ID, "--data-dir", n.DataDir, "--log-format", "json", "--release-vips")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("node %s: ipvsmand --release-vips: %w: %s", n.ID, err, out)
	}
	return string(out), nil
}

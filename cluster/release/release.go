// Package release names this build: a leaf that the CLI, the daemon and
// the cluster all read without linking one another. It holds the name and
// nothing else, and imports nothing.
package release

// Version is this build's release, reported in status and gossip and
// printed by both binaries. Set at link time with
// -ldflags "-X github.com/ipvsman/ipvsman/cluster/release.Version=...".
var Version = "0.8.0"

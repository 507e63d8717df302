//go:build next

package release

// The simulated next release (build tag next) reports its own version,
// whatever was set at link time.
func init() { Version = "0.9.0-next" }

//go:build !linux

package director

import "time"

// threadCPU is not measured where there is no per-thread usage (and no
// IPVS): passes report no CPU.
func threadCPU() time.Duration { return 0 }

package director

import (
	"errors"
	"fmt"

	"github.com/mdlayher/genetlink"
)

// ErrNoIPVS means the running kernel has no IPVS generic-netlink family.
var ErrNoIPVS = errors.New("the kernel has no IPVS")

// CheckKernel reports whether the kernel in this network namespace offers
// IPVS over generic netlink (family "IPVS"), as moby/ipvs and ipvsadm need.
func CheckKernel() error {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return fmt.Errorf("%w: open generic netlink: %w", ErrNoIPVS, err)
	}
	defer c.Close()
	if _, err := c.GetFamily("IPVS"); err != nil {
		return fmt.Errorf("%w: generic netlink family \"IPVS\": %w", ErrNoIPVS, err)
	}
	return nil
}

//go:build next

package fsm

// laterTypes are the types the simulated next release adds to the base.
var laterTypes = []CommandType{CmdNote}

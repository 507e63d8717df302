//go:build !next

package fsm

// CommandProtocol is the newest command protocol this build speaks. A command
// type introduced by protocol N is proposed only while every member
// gossips a protocol of at least N (the rolling-upgrade gate).
const CommandProtocol = ECMPProtocol

// laterCommands are the types this build adds to the base protocols: none
// in a release build.
func laterCommands() []commandSpec { return nil }

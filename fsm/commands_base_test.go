//go:build !next

package fsm

// laterTypes are the types a release build adds to the base: none.
var laterTypes []CommandType

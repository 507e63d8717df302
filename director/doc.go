// Package director turns the replicated model into this node's kernel IPVS
// table: the table the model means (director/table, pure), the plan of
// operations from the kernel's table to it (Plan, pure), and the
// Reconciler, the one writer to kernel IPVS, which applies the plan
// through the generic-netlink client director/ipvsnl, retries what fails
// and reports a fingerprint of what it read back. It also keeps the
// connection-sync threads as the model says and reads the kernel's view
// for status.
//
// It acts on every node alike and never decides leadership: whether this
// node leads reaches it as a plain input (the sync master's role). It
// imports nothing of cluster or vip.
package director

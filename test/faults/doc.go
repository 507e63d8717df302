// Package faults is the fault-injection suite (make faults): each test
// builds the lab topology in network namespaces on the host, runs a
// cluster of ipvsmand in the director namespaces (--ipvs=off: the
// promises checked here are the cluster's, the kernel tables follow the
// model as the lab tests show), writes through every node while a fault
// lasts, heals it and checks that no acknowledged write was lost, that no
// two nodes held the VIP at once and that the nodes agree again. The
// figures end the output as a table (report_test.go). Root only.
package faults

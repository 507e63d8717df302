package ipvsnl

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"
)

// nlmsg builds one netlink message: header, then payload, padded to four.
func nlmsg(typ uint16, seq uint32, payload []byte) []byte {
	l := nlmsgHdrLen + len(payload)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint32(b[0:], uint32(l))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint32(b[8:], seq)
	copy(b[nlmsgHdrLen:], payload)
	return b
}

func errnoPayload(e int32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(e))
	return b
}

func TestDumpRepliesKeepsOnlyThisRequestsEntriesUntilDone(t *testing.T) {
	const family = 42
	genl := func(attrs string) []byte { return append([]byte{1, 1, 0, 0}, attrs...) } // cmd, version, reserved
	var dg []byte
	dg = append(dg, nlmsg(family, 6, genl("stale"))...) // an abandoned request's answer
	dg = append(dg, nlmsg(family, 7, genl("one"))...)
	dg = append(dg, nlmsg(family, 7, genl("two!!"))...) // padded
	var out [][]byte
	done, err := dumpReplies(dg, 7, &out)
	if err != nil || done {
		t.Fatalf("first datagram: done %v, err %v; want more to come", done, err)
	}
	done, err = dumpReplies(nlmsg(nlmsgDone, 7, errnoPayload(0)), 7, &out)
	if err != nil || !done {
		t.Fatalf("DONE: done %v, err %v", done, err)
	}
	if len(out) != 2 || string(out[0]) != "one" || string(out[1]) != "two!!" {
		t.Fatalf("replies %q, want [one two!!]", out)
	}
}

func TestDumpRepliesReportsTheKernelsRefusal(t *testing.T) {
	var out [][]byte
	_, err := dumpReplies(nlmsg(nlmsgError, 9, append(errnoPayload(-int32(syscall.ESRCH)), make([]byte, 16)...)), 9, &out)
	if !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("error message: %v, want %v", err, syscall.ESRCH)
	}
	_, err = dumpReplies(nlmsg(nlmsgDone, 9, errnoPayload(-int32(syscall.EINTR))), 9, &out)
	if !errors.Is(err, syscall.EINTR) {
		t.Fatalf("DONE with an errno (an interrupted dump): %v, want %v", err, syscall.EINTR)
	}
}

func TestDumpRepliesRefusesABrokenLength(t *testing.T) {
	m := nlmsg(42, 3, []byte{1, 1, 0, 0, 'x'})
	binary.NativeEndian.PutUint32(m[0:], uint32(len(m)+8))
	var out [][]byte
	if _, err := dumpReplies(m, 3, &out); err == nil {
		t.Fatalf("a message longer than its datagram was read: %q", out)
	}
}

package ipvsadm

import (
	"encoding/binary"
	"net/netip"

	"github.com/ipvsman/ipvsman/fsm"
)

// ipvsadm sorts with libipvs's ipvs_cmp_services and ipvs_cmp_dests under
// glibc's qsort (a merge sort in Debian 12's glibc 2.36). The comparators
// subtract 32-bit words into an int, so addresses more than 2^31 apart
// compare by wrapped difference, not numerically: 200.0.0.1 sorts before
// 10.0.0.1, and an IPv6 fd00:: real server before an IPv4 one. Scripts see
// that order, so it is reproduced exactly here.
func sortedServices(cfg *fsm.Config) []*fsm.Service {
	out := make([]*fsm.Service, 0, len(cfg.Services))
	for _, k := range cfg.SortedServiceKeys() {
		out = append(out, cfg.Services[k])
	}
	msort(out, func(x, y *fsm.Service) int {
		a, b := x.Key, y.Key
		if r := int32(a.Mark - b.Mark); r != 0 {
			return int(r)
		}
		if r := famOrder(a) - famOrder(b); r != 0 {
			return r
		}
		if r := protoOrder(a.Protocol) - protoOrder(b.Protocol); r != 0 {
			return r
		}
		if r := cmpWords(a.Address, b.Address, a.Family() == "inet6"); r != 0 {
			return r
		}
		return int(a.Port) - int(b.Port)
	})
	return out
}

func famOrder(k fsm.ServiceKey) int {
	if k.Family() == "inet6" {
		return 10 // AF_INET6
	}
	return 2 // AF_INET
}

func protoOrder(p fsm.Protocol) int {
	switch p {
	case fsm.UDP:
		return 17
	case fsm.SCTP:
		return 132
	}
	return 6
}

func sortedServers(s *fsm.Service) []*fsm.RealServer {
	out := make([]*fsm.RealServer, 0, len(s.Servers))
	for _, k := range s.SortedServerKeys() {
		out = append(out, s.Servers[k])
	}
	msort(out, func(x, y *fsm.RealServer) int {
		if r := cmpWords(x.Address, y.Address, x.Address.Is6()); r != 0 {
			return r
		}
		return int(x.Port) - int(y.Port)
	})
	return out
}

// cmpWords is libipvs's address comparison: the first 32-bit word (all four
// for IPv6, decided by the left operand), each difference wrapped to int32.
func cmpWords(a, b netip.Addr, six bool) int {
	wa, wb := words(a), words(b)
	n := 1
	if six {
		n = 4
	}
	for i := 0; i < n; i++ {
		if r := int32(wa[i] - wb[i]); r != 0 {
			return int(r)
		}
	}
	return 0
}

// words lays an address out as union nf_inet_addr does: IPv4 in the first
// word, the rest zero.
func words(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if a.Is4() {
		b := a.As4()
		w[0] = binary.BigEndian.Uint32(b[:])
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return w
}

// msort is glibc's msort_with_tmp: a top-down merge sort that takes from the
// left run while cmp(left, right) <= 0. With libipvs's comparators, which
// are not always a total order, the algorithm decides the output too.
func msort[T any](s []T, cmp func(a, b T) int) {
	if len(s) <= 1 {
		return
	}
	n1 := len(s) / 2
	left := append([]T(nil), s[:n1]...)
	right := append([]T(nil), s[n1:]...)
	msort(left, cmp)
	msort(right, cmp)
	i, j, k := 0, 0, 0
	for i < len(left) && j < len(right) {
		if cmp(left[i], right[j]) <= 0 {
			s[k] = left[i]
			i++
		} else {
			s[k] = right[j]
			j++
		}
		k++
	}
	k += copy(s[k:], left[i:])
	copy(s[k:], right[j:])
}

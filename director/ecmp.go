package director

import "slices"

// ECMPSysctls are the IPVS settings a node needs while the model has an
// ecmp VIP: the router may move a flow to another director mid-connection
// (a next hop withdrawn or added), and without sloppy_tcp that director
// drops its packets, having never seen the SYN (sloppy_sctp: the INIT).
// With mh and the same destination order the new director picks the same
// real server, so the connection goes on. Like the sync sysctls they are
// set while needed and not written back after (docs/ecmp.md).
func ECMPSysctls() []Sysctl {
	return []Sysctl{{"sloppy_tcp", "1"}, {"sloppy_sctp", "1"}}
}

// overECMP is the operator's sysctls with the ecmp ones in the place of
// any the operator named too: two values for one name would be written in
// turn at every pass. It says so once per stretch of ecmp.
func (s *SyncDaemons) overECMP() []Sysctl {
	ecmp := ECMPSysctls()
	out := slices.Clone(ecmp)
	for _, o := range s.Sysctls {
		if i := slices.IndexFunc(ecmp, func(e Sysctl) bool { return e.Name == o.Name }); i >= 0 {
			if o.Value != ecmp[i].Value && !s.overridden {
				s.overridden = true
				s.log().Warn("ipvs sysctl from --ipvs-sysctls overridden while the model has an ecmp VIP", "sysctl", o.Name, "asked", o.Value, "set", ecmp[i].Value)
			}
			continue
		}
		out = append(out, o)
	}
	return out
}

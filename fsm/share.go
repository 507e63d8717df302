package fsm

import "slices"

// shareDepth is how many of the latest configurations a new one is
// compared with. Two already reach across `ipvsman -C` then `-R` of the
// same table (the cleared version between holds no services); a few more
// cover edits in between. Each costs a map lookup per changed service, so
// the whole history (HistoryLimit versions) would be too dear per command.
const shareDepth = 8

// share makes next reuse the services, real servers and services map of the
// configurations in cands (newest first) wherever they are equal in every
// field, so that versions which repeat a table hold it once instead of once
// per version. It changes which memory next uses, never its value: its
// encoding, diff and fingerprint stay what they were.
//
// next must be the caller's own: its Services map, and every service in it
// other than the very service cands[0] holds under the same key, must be
// reachable from no committed configuration, since they are changed here.
// What next takes from cands is committed and, like every committed value,
// never changed again (ops clone what they change).
func share(next *Config, cands []*Config) {
	if next == nil || len(cands) == 0 {
		return
	}
	latest := cands[0].Services
	unshared := 0
	for key, svc := range next.Services {
		if svc == nil || latest[key] == svc {
			continue
		}
		if old := shareService(key, svc, cands); old != nil {
			next.Services[key] = old
		} else {
			unshared++
		}
	}
	if unshared > 0 {
		return // a service no candidate holds: no candidate's map can equal next's
	}
	for _, c := range cands {
		if sameServices(next.Services, c.Services) {
			next.Services = c.Services
			return
		}
	}
}

// shareService returns the newest service of cands under key that equals
// svc, or nil after letting svc share what it can with the newest service
// under key.
func shareService(key string, svc *Service, cands []*Config) *Service {
	var newest *Service
	for _, c := range cands {
		old := c.Services[key]
		if old == nil {
			continue
		}
		if equalService(old, svc) {
			return old
		}
		if newest == nil {
			newest = old
		}
	}
	if newest != nil {
		shareParts(svc, newest)
	}
	return nil
}

// shareParts makes svc, which differs from old, reuse old's equal real
// servers (or its whole map of them) and health check.
func shareParts(svc, old *Service) {
	if svc.Check != old.Check && equalCheck(svc.Check, old.Check) {
		svc.Check = old.Check
	}
	if svc.Servers == nil || old.Servers == nil {
		return
	}
	same := len(svc.Servers) == len(old.Servers)
	for k, r := range svc.Servers {
		o := old.Servers[k]
		switch {
		case o == nil || r == nil:
			same = false
		case o == r:
		case equalServer(o, r):
			svc.Servers[k] = o
		default:
			same = false
		}
	}
	if same {
		svc.Servers = old.Servers
	}
}

// sameServices reports whether two services maps hold the very same
// services under the same keys (nil and empty differ: they encode apart).
func sameServices(a, b map[string]*Service) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// The equal functions compare every field, exactly: nil and empty differ,
// as they may encode differently. A field added to a type must be added
// here; TestEqualSeesEveryField fails until it is.

func equalService(a, b *Service) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	return a.Key == b.Key && a.Name == b.Name && a.Scheduler == b.Scheduler && a.OnePacket == b.OnePacket &&
		a.OnFailure == b.OnFailure && equalSlice(a.Flags, b.Flags) && equalPersistence(a.Persistence, b.Persistence) &&
		equalServer(a.Sorry, b.Sorry) && equalCheck(a.Check, b.Check) && equalServers(a.Servers, b.Servers) &&
		equalServers(a.Pool, b.Pool) && a.Quorum == b.Quorum && a.Hysteresis == b.Hysteresis &&
		equalSlice(a.Group, b.Group)
}

func equalPersistence(a, b *Persistence) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func equalServers(a, b map[string]*RealServer) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, r := range a {
		o, ok := b[k]
		if !ok || !equalServer(r, o) {
			return false
		}
	}
	return true
}

func equalServer(a, b *RealServer) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	// RealServer is comparable; only its check is compared by value.
	x, y := *a, *b
	x.Check, y.Check = nil, nil
	return x == y && equalCheck(a.Check, b.Check)
}

func equalCheck(a, b *HealthCheck) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	return a.Type == b.Type && a.IntervalMS == b.IntervalMS && a.TimeoutMS == b.TimeoutMS &&
		a.Rise == b.Rise && a.Fall == b.Fall && a.Address == b.Address && a.Port == b.Port &&
		a.Method == b.Method && a.Path == b.Path && a.Host == b.Host && a.SNI == b.SNI &&
		equalSlice(a.Status, b.Status) && a.Body == b.Body && a.Insecure == b.Insecure &&
		a.Query == b.Query && a.QType == b.QType && a.Proto == b.Proto && a.RCode == b.RCode &&
		a.Answer == b.Answer && a.Send == b.Send && a.Expect == b.Expect &&
		equalSlice(a.Command, b.Command) && a.Alpha == b.Alpha && a.Digest == b.Digest &&
		a.CAFile == b.CAFile && a.ExpiryMarginS == b.ExpiryMarginS && a.Helo == b.Helo &&
		a.RetryDelayMS == b.RetryDelayMS && a.Source == b.Source && a.SourcePort == b.SourcePort && a.FWMark == b.FWMark
}

func equalSlice[T comparable](a, b []T) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}

// recent lists the latest configurations, newest first and each once: the
// current one, then the history's, at most shareDepth.
func (s *State) recent() []*Config {
	out := make([]*Config, 0, shareDepth)
	if s.Config != nil {
		out = append(out, s.Config)
	}
	for i := len(s.History) - 1; i >= 0 && len(out) < shareDepth; i-- {
		if c := s.History[i].Config; c != nil && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// sharedSummary returns sum, as the string of a recent history entry when
// one has the same summary: a table restored again after a clear has the
// same diff each time, and for a big table the diff is as big as the table.
func (s *State) sharedSummary(sum string) string {
	for i := len(s.History) - 1; i >= 0 && i >= len(s.History)-shareDepth; i-- {
		if s.History[i].Summary == sum {
			return s.History[i].Summary
		}
	}
	return sum
}

// shareSummaries makes a version's summary the very string of an equal
// summary among the shareDepth versions before it.
func (s *State) shareSummaries() {
	for i := range s.History {
		for j := i - 1; j >= 0 && j >= i-shareDepth; j-- {
			if s.History[j].Summary == s.History[i].Summary {
				s.History[i].Summary = s.History[j].Summary
				break
			}
		}
	}
}

// shareDecoded re-establishes, in a state just decoded from a plain
// snapshot, the sharing between versions that the encoding does not keep:
// each history version shares with the ones before it, the current
// configuration with the history. Every configuration in s is fresh from
// the decoder.
func (s *State) shareDecoded() {
	for i := range s.History {
		cands := make([]*Config, 0, shareDepth)
		for j := i - 1; j >= 0 && len(cands) < shareDepth; j-- {
			if c := s.History[j].Config; c != nil {
				cands = append(cands, c)
			}
		}
		share(s.History[i].Config, cands)
	}
	s.shareSummaries()
	cands := make([]*Config, 0, shareDepth)
	for j := len(s.History) - 1; j >= 0 && len(cands) < shareDepth; j-- {
		if c := s.History[j].Config; c != nil {
			cands = append(cands, c)
		}
	}
	share(s.Config, cands)
}

package fsm

import (
	"fmt"
	"slices"
	"strings"
)

// A service group is one model service that the kernel serves on several
// virtual addresses: keepalived's virtual_server_group. The service's own
// key is the first; Service.Group lists the others (its members). Every
// member is a kernel service of its own, with the service's scheduler,
// persistence and flags and the very destinations the service has (sorry
// server and on_failure applied alike), so the real servers, their checks
// and their verdicts are the service's, one of each per real server
// however many addresses the group has. Verdicts stay keyed by the
// service's key.
//
// A member key belongs to one group and is never a service of its own:
// every op that names it as a service is refused, naming the group
// (memberError), and the group's service is edited instead.

// GroupProtocol is the protocol that knows service groups. An older build
// would drop Service.Group when it decodes a configuration (and refuse the
// group ops), so its kernel would lack the members' services; a
// configuration with a group is refused until every member speaks it
// (Config.Needs).
const GroupProtocol = KernelProtocol + 1

// Group ops: ipvsadm has no groups, so these are ipvsman's own (`ipvsman
// group add|remove SERVICE VIRTUAL...`). Op.ServiceKey names the group's
// service, Op.Group the members to add or remove.
const (
	OpGroupAdd    OpKind = "group-add"
	OpGroupRemove OpKind = "group-remove"
)

// groupHandlers are the group ops' entries of opHandlers.
var groupHandlers = map[OpKind]func(b *batch, op Op) error{
	OpGroupAdd:    onService((*batch).groupAdd),
	OpGroupRemove: onService((*batch).groupRemove),
}

// CompareKeys orders service keys by their canonical form, the order
// Service.Group keeps.
func CompareKeys(a, b ServiceKey) int { return strings.Compare(a.String(), b.String()) }

// normalizeKey is a key's one spelling: an unmapped address, and for
// fwmark no address or port (as NormalizeService makes a service's).
func normalizeKey(k ServiceKey) ServiceKey {
	if k.Protocol == FWMark {
		k.Address, k.Port = netipZero, 0
	} else {
		k.Address = k.Address.Unmap()
		k.Mark, k.IPv6 = 0, false
	}
	return k
}

// GroupOf returns the key of the service whose group holds key, if any. It
// walks every service: for one lookup (the CLI, the console); ops use the
// batch's index.
func (c *Config) GroupOf(key string) (string, bool) {
	for sk, svc := range c.Services {
		for _, m := range svc.Group {
			if m.String() == key {
				return sk, true
			}
		}
	}
	return "", false
}

// groupMembers maps every member key of c to its service's key.
func groupMembers(c *Config) map[string]string {
	m := map[string]string{}
	for sk, svc := range c.Services {
		for _, k := range svc.Group {
			m[k.String()] = sk
		}
	}
	return m
}

// memberOf is the key of the service whose group holds key in the batch's
// configuration. The index is made on first use, once per ApplyOps call,
// and kept up to date by the ops that change groups.
func (b *batch) memberOf(key string) (string, bool) {
	if b.members == nil {
		b.members = groupMembers(b.c)
	}
	owner, ok := b.members[key]
	return owner, ok
}

// memberError is the refusal of an op that names a group member as a
// service of its own.
func memberError(key, owner string) error {
	return fmt.Errorf("service %s: a member of the group of service %s: edit that service (its real servers, checks and attributes serve every member), or take the address out with ipvsman group remove %s %s", key, owner, owner, key)
}

// notService reports, for an op that found no service at key, whether key
// is a group member, and then says whose.
func (b *batch) notService(key string) error {
	if owner, ok := b.memberOf(key); ok {
		return memberError(key, owner)
	}
	return fmt.Errorf("service %s: no such service", key)
}

// forgetGroup drops a deleted service's members from the index.
func (b *batch) forgetGroup(svc *Service) {
	if b.members == nil || svc == nil {
		return
	}
	for _, k := range svc.Group {
		delete(b.members, k.String())
	}
}

// keepGroup gives an edited service (svc, not yet in the configuration)
// the group of the service it replaces, and checks that its new
// attributes still suit every member: -E cannot say a group, so it keeps
// it.
func keepGroup(svc, old *Service) error {
	svc.Group = old.Group // never changed in place: group ops replace the slice
	return checkMembers(svc, svc.Group)
}

// checkMembers checks that each of keys can be a kernel service with
// svc's attributes: a valid key of svc's address family, for which the
// service's scheduler, persistence and flags are valid too (one-packet
// scheduling on a TCP member is not).
func checkMembers(svc *Service, keys []ServiceKey) error {
	for _, k := range keys {
		where := fmt.Sprintf("service %s group member %s", svc.Key, k)
		if k.Family() != svc.Key.Family() {
			return fmt.Errorf("%s: address family %s differs from the service's %s", where, k.Family(), svc.Key.Family())
		}
		m := *svc
		m.Key, m.Check, m.Sorry, m.Group = k, nil, nil, nil
		if err := ValidateService(&m); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// groupAdd adds op.Group's keys to the group of service key.
func (b *batch) groupAdd(key string, old *Service, op Op) error {
	if len(op.Group) == 0 {
		return fmt.Errorf("%s on service %s: group: empty (name the virtual services to add)", op.Kind, key)
	}
	keys := make([]ServiceKey, 0, len(op.Group))
	seen := map[string]bool{}
	for _, k := range op.Group {
		k = normalizeKey(k)
		ks := k.String()
		where := fmt.Sprintf("service %s group member %s", key, ks)
		switch owner, member := b.memberOf(ks); {
		case ks == key:
			return fmt.Errorf("%s: the service's own key", where)
		case seen[ks]:
			return fmt.Errorf("%s: listed twice", where)
		case member && owner == key:
			return fmt.Errorf("%s: already a member", where)
		case member:
			return fmt.Errorf("%s: already a member of the group of service %s", where, owner)
		case b.c.Services[ks] != nil:
			return fmt.Errorf("%s: a service of its own (delete it with ipvsman -D first)", where)
		}
		seen[ks] = true
		keys = append(keys, k)
	}
	if err := checkMembers(old, keys); err != nil {
		return err
	}
	w := b.writable(key, old)
	w.Group = append(slices.Clone(w.Group), keys...)
	slices.SortFunc(w.Group, CompareKeys)
	for _, k := range keys {
		b.members[k.String()] = key
	}
	return nil
}

// groupRemove takes op.Group's keys out of the group of service key: their
// kernel services go, the service and its other members stay.
func (b *batch) groupRemove(key string, old *Service, op Op) error {
	if len(op.Group) == 0 {
		return fmt.Errorf("%s on service %s: group: empty (name the members to remove)", op.Kind, key)
	}
	drop := map[string]bool{}
	for _, k := range op.Group {
		ks := normalizeKey(k).String()
		if !slices.ContainsFunc(old.Group, func(m ServiceKey) bool { return m.String() == ks }) {
			if owner, ok := b.memberOf(ks); ok {
				return fmt.Errorf("service %s group member %s: not in this group but in the group of service %s", key, ks, owner)
			}
			return fmt.Errorf("service %s group member %s: not a member (members: %s)", key, ks, describeGroup(old.Group))
		}
		drop[ks] = true
	}
	w := b.writable(key, old)
	w.Group = slices.DeleteFunc(slices.Clone(w.Group), func(m ServiceKey) bool { return drop[m.String()] })
	if len(w.Group) == 0 {
		w.Group = nil // one spelling of "no group"
	}
	if b.members != nil {
		for ks := range drop {
			delete(b.members, ks)
		}
	}
	return nil
}

// describeGroup is "tcp:10.0.0.2:80,fwmark:7", or "none".
func describeGroup(keys []ServiceKey) string {
	if len(keys) == 0 {
		return "none"
	}
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.String()
	}
	return strings.Join(s, ",")
}

// ValidateGroup normalizes and checks a normalized service's own group: no
// member is the service's key or listed twice, and each suits the service
// (checkMembers). Whether a member is another service or in another group
// is the whole configuration's to say (ValidateConfig).
func ValidateGroup(svc *Service) error {
	if len(svc.Group) == 0 {
		svc.Group = nil
		return nil
	}
	group := make([]ServiceKey, len(svc.Group))
	seen := make(map[string]bool, len(svc.Group))
	for i, k := range svc.Group {
		k = normalizeKey(k)
		ks := k.String()
		where := fmt.Sprintf("service %s group member %s", svc.Key, ks)
		switch {
		case k == svc.Key:
			return fmt.Errorf("%s: the service's own key", where)
		case seen[ks]:
			return fmt.Errorf("%s: listed twice", where)
		}
		seen[ks] = true
		group[i] = k
	}
	if err := checkMembers(svc, group); err != nil {
		return err
	}
	slices.SortFunc(group, CompareKeys)
	svc.Group = group
	return nil
}

// validateGroups checks every service's group in a config whose services
// ValidateConfig has checked: each valid for its service (ValidateGroup),
// and a member is no service of its own and in one group only.
func validateGroups(c *Config) error {
	owners := map[string]string{}
	for _, sk := range c.SortedServiceKeys() {
		svc := c.Services[sk]
		if err := ValidateGroup(svc); err != nil {
			return err
		}
		for _, k := range svc.Group {
			ks := k.String()
			where := fmt.Sprintf("service %s group member %s", sk, ks)
			if owner, dup := owners[ks]; dup {
				return fmt.Errorf("%s: also a member of the group of service %s", where, owner)
			}
			if c.Services[ks] != nil {
				return fmt.Errorf("%s: also a service of its own", where)
			}
			owners[ks] = sk
		}
	}
	return nil
}

// needsGroup is the protocol a configuration's groups need, and what needs it.
func (c *Config) needsGroup() (int, string) {
	for _, k := range c.SortedServiceKeys() {
		if len(c.Services[k].Group) > 0 {
			return GroupProtocol, "service " + k + " group"
		}
	}
	return BaseCommandProtocol, ""
}

package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
)

// HistoryLimit is how many configuration versions are kept for `ipvsman
// history` and rollback. Changing it changes snapshots: it is part of the
// log's meaning, like a command type. Versions share every service, real
// server and summary equal to a recent version's (share.go), so a version
// costs what it changed, however it was made.
const HistoryLimit = 200

// State is the whole replicated model. Apply is its only mutator.
type State struct {
	Config         *Config            `json:"config"`
	Version        uint64             `json:"version"` // latest configuration version, 0 = none yet
	History        []HistoryEntry     `json:"history"`
	Verdicts       map[string]Verdict `json:"verdicts"` // by VerdictKey
	Members        map[string]Member  `json:"members"`  // by Member.ID
	ZeroGeneration uint64             `json:"zero_generation"`
	ZeroService    string             `json:"zero_service,omitempty"`
	Skipped        uint64             `json:"skipped"` // ignorable commands this build did not know
	// Annotations are free-form values that commands of later protocols
	// set (the "note" of the simulated next release, tag next). Every
	// build keeps them in snapshots, so none loses what a newer one wrote.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Requests remembers the outcome of the latest client requests by ID
	// (at most RequestLimit, in RequestOrder, oldest first), so that a
	// retry of a committed write gets its first outcome instead of a
	// second application: the client sessions of the Raft dissertation.
	Requests     map[string]Result `json:"requests,omitempty"`
	RequestOrder []string          `json:"request_order,omitempty"`
	// QuorumUp is the quorum state of every service with a quorum, by
	// service key: true while it holds it (keepalived's quorum_state_up;
	// quorum.go). It has memory (hysteresis), so it is replicated.
	QuorumUp map[string]bool `json:"quorum_up,omitempty"`

	// verdictGen counts, per service key, the commits that wrote or
	// dropped any of its verdicts. It is this process's own count, never
	// replicated: a reader that caches per service (the reconciler's
	// target) compares it to know a service's verdicts are unchanged
	// without reading them.
	verdictGen map[string]uint64
}

// VerdictGeneration changes whenever a verdict of the service at key is
// written or dropped in this State; the same value means the service's
// verdicts are as they were.
func (s *State) VerdictGeneration(key string) uint64 { return s.verdictGen[key] }

// verdictsChanged bumps the generation of the service of verdict key k.
func (s *State) verdictsChanged(k string) {
	if s.verdictGen == nil {
		s.verdictGen = map[string]uint64{}
	}
	svc, _, _ := strings.Cut(k, "/")
	s.verdictGen[svc]++
}

// NewState is the state before the first log entry.
func NewState() *State {
	return &State{Config: NewConfig(), History: []HistoryEntry{}, Verdicts: map[string]Verdict{}, Members: map[string]Member{}}
}

// Result is what Apply returns to the proposer.
type Result struct {
	Version uint64 `json:"version"`           // configuration version after the command
	Changed bool   `json:"changed"`           // a new configuration version was made
	Summary string `json:"summary,omitempty"` // what changed, one line per change
	Err     string `json:"error,omitempty"`   // the command was rejected; nothing changed
	Request string `json:"request,omitempty"` // the client's request ID
	// Duplicate: this answer is the remembered outcome of an earlier
	// command with the same request ID; nothing was applied again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// change is a planned transition; commit makes it real.
type change struct {
	config   *Config // nil: configuration unchanged
	summary  []string
	verdicts map[string]Verdict // nil value removes; merged into State.Verdicts
	member   *Member
	removeID string
	zero     *ZeroCountersPayload
	annotate map[string]string // "" removes
	skipped  bool
}

// Check reports whether cmd would apply cleanly to s, without changing s.
// The leader calls it before proposing, so that every logged command applies.
// A command whose request ID is remembered passes: it would apply as a
// duplicate.
func (s *State) Check(cmd Command) error {
	_, err := s.Plan(cmd)
	return err
}

// Plan returns the configuration cmd would leave (nil when it leaves the
// configuration as it is), or why it cannot apply, without changing s.
func (s *State) Plan(cmd Command) (*Config, error) {
	p, err := s.Prepare(cmd)
	return p.Config(), err
}

// Prepared is a command planned against one state. ApplyPrepared commits
// it to that same state without planning again, so that the leader, which
// validates a command before proposing it, plans it once like every other
// node.
type Prepared struct {
	ch  change
	dup bool
}

// Config is the configuration the prepared command leaves (nil: unchanged).
func (p Prepared) Config() *Config { return p.ch.config }

// Prepare plans cmd against s without changing s. A command whose request
// ID is remembered prepares as a duplicate.
func (s *State) Prepare(cmd Command) (Prepared, error) {
	if _, dup := s.Requested(cmd.Request); dup {
		return Prepared{dup: true}, nil
	}
	ch, err := s.plan(cmd)
	return Prepared{ch: ch}, err
}

// ApplyPrepared is Apply of cmd with its plan p, which Prepare made from
// this very state (same command, nothing applied since): the caller
// guarantees it, since only then is the result Apply's.
func (s *State) ApplyPrepared(cmd Command, p Prepared) Result {
	if r, dup := s.Requested(cmd.Request); dup || p.dup {
		return r
	}
	s.commit(cmd, p.ch)
	r := Result{Version: s.Version, Changed: p.ch.config != nil, Summary: strings.Join(p.ch.summary, "\n")}
	s.remember(cmd.Request, r)
	r.Request = cmd.Request
	return r
}

// Preview returns the configuration diff cmd would make, without changing s.
func (s *State) Preview(cmd Command) ([]string, error) {
	ch, err := s.plan(cmd)
	if err != nil {
		return nil, err
	}
	return ch.summary, nil
}

// Apply applies one command. It either applies it whole or changes nothing
// and reports why in Result.Err. An unknown, non-ignorable type returns
// *UnknownCommandError: the caller must stop the node.
//
// A command whose request ID is remembered changes nothing and returns the
// remembered result; any other command with an ID is remembered with its
// result, a rejection included, so that a retry gets the same answer.
func (s *State) Apply(cmd Command) (Result, error) {
	if r, dup := s.Requested(cmd.Request); dup {
		return r, nil
	}
	ch, err := s.plan(cmd)
	var unknown *UnknownCommandError
	if errors.As(err, &unknown) {
		return Result{Version: s.Version, Err: err.Error()}, err
	}
	if err != nil {
		r := Result{Version: s.Version, Err: err.Error()}
		s.remember(cmd.Request, r)
		r.Request = cmd.Request
		return r, nil
	}
	s.commit(cmd, ch)
	r := Result{Version: s.Version, Changed: ch.config != nil, Summary: strings.Join(ch.summary, "\n")}
	s.remember(cmd.Request, r)
	r.Request = cmd.Request
	return r, nil
}

func (s *State) planOps(_ Command, p OpsPayload) (change, error) {
	if len(p.Ops) == 0 {
		return change{}, fmt.Errorf("ops: empty list")
	}
	next, err := ApplyOps(s.Config, p.Ops)
	if err != nil {
		return change{}, err
	}
	share(next, s.recent())
	return s.configChange(next, ""), nil
}

func (s *State) planReplaceConfig(_ Command, p ReplaceConfigPayload) (change, error) {
	if p.Config == nil {
		return change{}, fmt.Errorf("replace-config: config: missing")
	}
	next := p.Config
	if next.Services == nil {
		next.Services = map[string]*Service{}
	}
	if next.VIPs == nil {
		next.VIPs = map[string]VIP{}
	}
	if err := ValidateConfig(next); err != nil {
		return change{}, err
	}
	share(next, s.recent())
	return s.configChange(next, p.Reason), nil
}

func (s *State) planRollback(_ Command, p RollbackPayload) (change, error) {
	h := s.entry(p.Version)
	if h == nil {
		return change{}, fmt.Errorf("rollback version %d: not in history (have %s)", p.Version, s.historyRange())
	}
	return s.configChange(h.Config, fmt.Sprintf("rollback to version %d", p.Version)), nil
}

func (s *State) planSetMember(_ Command, p SetMemberPayload) (change, error) {
	if p.Member.ID == "" || p.Member.RaftAddr == "" || p.Member.APIAddr == "" {
		return change{}, fmt.Errorf("member %q: id, raft_addr and api_addr are required", p.Member.ID)
	}
	return change{member: &p.Member}, nil
}

func (s *State) planRemoveMember(_ Command, p RemoveMemberPayload) (change, error) {
	if _, ok := s.Members[p.ID]; !ok {
		return change{}, fmt.Errorf("member %q: not a member", p.ID)
	}
	return change{removeID: p.ID}, nil
}

func (s *State) planZeroCounters(_ Command, p ZeroCountersPayload) (change, error) {
	if _, ok := s.Config.Services[p.Service]; p.Service != "" && !ok {
		return change{}, fmt.Errorf("service %s: no such service", p.Service)
	}
	return change{zero: &p}, nil
}

// configChange plans a new version unless next equals the current config.
func (s *State) configChange(next *Config, reason string) change {
	diff := DiffConfig(s.Config, next)
	if len(diff) == 0 {
		return change{}
	}
	if reason != "" {
		diff = append([]string{reason}, diff...)
	}
	return change{config: next, summary: diff}
}

// planVerdicts stamps each verdict with the command's time, not the
// clock's, so that every node records the same Since.
func (s *State) planVerdicts(cmd Command, p SetVerdictsPayload) (change, error) {
	ch := change{verdicts: map[string]Verdict{}}
	for _, v := range p.Verdicts {
		svc, ok := s.Config.Services[v.Service]
		if !ok {
			return change{}, fmt.Errorf("verdict for service %s: no such service", v.Service)
		}
		if _, ok := svc.Servers[v.Server]; !ok {
			return change{}, fmt.Errorf("verdict for real server %s of service %s: no such real server", v.Server, v.Service)
		}
		switch v.Health {
		case HealthUp, HealthDown, HealthUnknown:
		default:
			return change{}, fmt.Errorf("verdict for real server %s of service %s: health %q: want up, down or unknown", v.Server, v.Service, v.Health)
		}
		if v.Weight != nil && (*v.Weight < 0 || *v.Weight > MaxWeight) {
			return change{}, fmt.Errorf("verdict for real server %s of service %s: weight %d: out of range 0-%d", v.Server, v.Service, *v.Weight, MaxWeight)
		}
		ch.verdicts[VerdictKey(v.Service, v.Server)] = Verdict{Health: v.Health, Weight: v.Weight, Since: cmd.Time, Reason: v.Reason}
	}
	return ch, nil
}

func (s *State) commit(cmd Command, ch change) {
	if ch.skipped {
		s.Skipped++
		return
	}
	old := s.Config
	if ch.config != nil {
		s.Version++
		s.Config = ch.config
		s.History = append(s.History, HistoryEntry{
			Version: s.Version, Time: cmd.Time, Actor: cmd.Actor, Request: cmd.Request,
			Summary: s.sharedSummary(strings.Join(ch.summary, "\n")), Config: ch.config,
		})
		if n := len(s.History) - HistoryLimit; n > 0 {
			s.History = append([]HistoryEntry(nil), s.History[n:]...)
		}
		s.pruneVerdicts(old)
	}
	for k, v := range ch.verdicts {
		s.Verdicts[k] = v
		s.verdictsChanged(k)
	}
	s.settleQuorum(old, ch.verdicts)
	if ch.member != nil {
		s.Members[ch.member.ID] = *ch.member
	}
	if ch.removeID != "" {
		delete(s.Members, ch.removeID)
	}
	for k, v := range ch.annotate {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		if v == "" {
			delete(s.Annotations, k)
		} else {
			s.Annotations[k] = v
		}
	}
	if ch.zero != nil {
		s.ZeroGeneration++
		s.ZeroService = ch.zero.Service
	}
}

// pruneVerdicts drops verdicts of real servers that are no longer
// configured. A verdict is only ever set for a configured real server, and
// is dropped when its server goes, so only the servers of services that
// changed since old (a new object, or gone) can have lost theirs.
func (s *State) pruneVerdicts(old *Config) {
	for key, was := range old.Services {
		now := s.Config.Services[key]
		if now == was {
			continue
		}
		for rk := range was.Servers {
			if now != nil && now.Servers[rk] != nil {
				continue
			}
			k := VerdictKey(key, rk)
			if _, ok := s.Verdicts[k]; ok {
				delete(s.Verdicts, k)
				s.verdictsChanged(k)
			}
		}
	}
}

func (s *State) entry(version uint64) *HistoryEntry {
	for i := range s.History {
		if s.History[i].Version == version {
			return &s.History[i]
		}
	}
	return nil
}

func (s *State) historyRange() string {
	if len(s.History) == 0 {
		return "no versions"
	}
	return fmt.Sprintf("versions %d-%d", s.History[0].Version, s.History[len(s.History)-1].Version)
}

// Frozen is a copy of s that later commands do not change, made in
// proportion to the maps that change in place (verdicts, members,
// requests), not to the configurations: a Config and a history entry are
// never changed once made, and the history slice is only appended to or
// replaced. A snapshot encodes it while the state moves on.
func (s *State) Frozen() *State {
	f := *s
	f.Verdicts = maps.Clone(s.Verdicts)
	f.verdictGen = nil // the copy's verdicts never change
	f.Members = maps.Clone(s.Members)
	f.Annotations = maps.Clone(s.Annotations)
	f.QuorumUp = maps.Clone(s.QuorumUp)
	f.Requests = maps.Clone(s.Requests)
	f.History = s.History[:len(s.History):len(s.History)]
	f.RequestOrder = s.RequestOrder[:len(s.RequestOrder):len(s.RequestOrder)]
	return &f
}

// Encode writes what Marshal returns to w (json.Encoder builds it in
// memory first).
func (s *State) Encode(w io.Writer) error {
	if err := json.NewEncoder(w).Encode(s); err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return nil
}

// Marshal is the plain snapshot encoding, every version in full, which
// every build reads. encoding/json sorts map keys, so equal states give
// equal bytes on every node.
func (s *State) Marshal() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return b, nil
}

// UnmarshalState restores a snapshot, plain (Marshal, Encode) or pooled
// (EncodePooled).
func UnmarshalState(b []byte) (*State, error) {
	s := NewState()
	pooled := isPooled(b)
	if pooled {
		if err := decodePooled(b, s); err != nil {
			return nil, fmt.Errorf("decode pooled state: %w", err)
		}
	} else if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if s.Config == nil {
		s.Config = NewConfig()
	}
	if s.Config.Services == nil {
		s.Config.Services = map[string]*Service{}
	}
	if s.Config.VIPs == nil {
		s.Config.VIPs = map[string]VIP{}
	}
	if s.History == nil {
		s.History = []HistoryEntry{}
	}
	if s.Verdicts == nil {
		s.Verdicts = map[string]Verdict{}
	}
	if s.Members == nil {
		s.Members = map[string]Member{}
	}
	if s.Requests == nil {
		s.Requests = map[string]Result{}
	}
	s.restoreQuorum()
	if !pooled { // a pooled one comes back shared
		s.shareDecoded()
	}
	return s, nil
}

package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
)

// PooledProtocol is the protocol whose builds read pooled snapshots
// (EncodePooled). A snapshot is written pooled only while every member
// speaks it: raft sends a follower that falls behind the leader's latest
// snapshot, and an older build reading one must not come up with an empty
// table. It reads the pooled form as a malformed snapshot and stops instead
// (see pooledSnapshot.History).
const PooledProtocol = AlphaProtocol + 1

// pooledFormat names the pooled snapshot encoding.
const pooledFormat = "pooled/1"

// The plain encoding writes every history version in full: 200 versions of
// one service of 100,000 real servers, each differing by one weight, made
// a 1.9 GB snapshot that took a minute to encode, and as long to read on
// every restart. Versions share their unchanged services and real servers
// in memory (share.go); the pooled encoding keeps that sharing on disk. It
// writes each distinct real server and each distinct service once, in two
// pools, and every configuration names its services by their place in the
// pool. The pools hold values, not pointers: two equal real servers are
// one entry whichever of them a node's memory shares, so equal states
// still give equal bytes on every node.

// pooledSnapshot is the top level of a pooled snapshot, as decodePooled
// reads it; EncodePooled writes these keys in this order, piece by piece.
type pooledSnapshot struct {
	Format string `json:"format"`
	// History is a string where older builds expect the list of versions,
	// so that they refuse the snapshot ("cannot unmarshal string into ...
	// State.history") instead of reading an empty state from it.
	History   string            `json:"history"`
	Summaries []string          `json:"summaries"`
	Servers   []json.RawMessage `json:"servers"`
	Services  []json.RawMessage `json:"services"`
	State     json.RawMessage   `json:"state"` // a pooledState
}

// pooledState is State with its configurations as pool references: the
// outer fields shadow the embedded ones of the same JSON name.
type pooledState struct {
	*State
	Config  *pooledConfig `json:"config"`
	History []pooledEntry `json:"history"`
}

// pooledEntry is a history version whose summary is an index into the
// summary pool: the summary of `ipvsman -R` is one line per real server,
// and every round of -C / -R of one table repeats it.
type pooledEntry struct {
	*HistoryEntry
	Summary uint32        `json:"summary"`
	Config  *pooledConfig `json:"config"`
}

// pooledConfig is a Config whose services are indexes into the service pool.
type pooledConfig struct {
	*Config
	Services map[string]uint32 `json:"services"`
}

// pooledService is a Service whose real servers are indexes into the server pool.
type pooledService struct {
	*Service
	Servers map[string]uint32 `json:"servers,omitempty"`
}

// pool interns encoded values: memo skips the encoding of a value already
// seen at the same address, byValue makes equal encodings one entry.
type pool[T any] struct {
	memo    map[*T]uint32
	byValue map[string]uint32
	entries []json.RawMessage
}

func newPool[T any]() *pool[T] {
	return &pool[T]{memo: map[*T]uint32{}, byValue: map[string]uint32{}}
}

func (p *pool[T]) add(v *T, encode func(*T) ([]byte, error)) (uint32, error) {
	if i, ok := p.memo[v]; ok {
		return i, nil
	}
	b, err := encode(v)
	if err != nil {
		return 0, err
	}
	i, ok := p.byValue[string(b)]
	if !ok {
		i = uint32(len(p.entries))
		p.entries = append(p.entries, b)
		p.byValue[string(b)] = i
	}
	p.memo[v] = i
	return i, nil
}

// pooler builds the pools while it converts configurations.
type pooler struct {
	servers  *pool[RealServer]
	services *pool[Service]
}

func (p *pooler) service(s *Service) ([]byte, error) {
	ps := pooledService{Service: s}
	if len(s.Servers) > 0 {
		ps.Servers = make(map[string]uint32, len(s.Servers))
		// Sorted, so that a service's servers enter the pool in the same
		// order on every node.
		for _, k := range slices.Sorted(maps.Keys(s.Servers)) {
			i, err := p.servers.add(s.Servers[k], func(r *RealServer) ([]byte, error) { return json.Marshal(r) })
			if err != nil {
				return nil, err
			}
			ps.Servers[k] = i
		}
	}
	return json.Marshal(ps)
}

func (p *pooler) config(c *Config) (*pooledConfig, error) {
	if c == nil {
		return nil, nil
	}
	pc := &pooledConfig{Config: c, Services: make(map[string]uint32, len(c.Services))}
	for _, k := range slices.Sorted(maps.Keys(c.Services)) {
		svc := c.Services[k]
		if svc == nil {
			return nil, fmt.Errorf("service %q: nil in the configuration", k)
		}
		i, err := p.services.add(svc, p.service)
		if err != nil {
			return nil, err
		}
		pc.Services[k] = i
	}
	return pc, nil
}

// EncodePooled writes s in the pooled encoding, which UnmarshalState reads
// back to a state equal to s. Its size grows with what the versions
// changed, not with the number of versions times the table. It writes the
// pools entry by entry: json.Encoder would first build the whole encoding
// in one buffer, grown by copies of hundreds of megabytes that the Go
// scheduler cannot preempt (measured: both of a leader's threads silent
// for 270 ms, its heartbeats with them).
func (s *State) EncodePooled(w io.Writer) error {
	p := &pooler{servers: newPool[RealServer](), services: newPool[Service]()}
	state := pooledState{State: s, History: make([]pooledEntry, len(s.History))}
	var err error
	if state.Config, err = p.config(s.Config); err != nil {
		return fmt.Errorf("encode state: configuration: %w", err)
	}
	var summaries []string
	summaryIdx := map[string]uint32{}
	for i := range s.History {
		e := &s.History[i]
		pe := &state.History[i]
		pe.HistoryEntry = e
		if pe.Config, err = p.config(e.Config); err != nil {
			return fmt.Errorf("encode state: version %d: %w", e.Version, err)
		}
		j, ok := summaryIdx[e.Summary]
		if !ok {
			j = uint32(len(summaries))
			summaries = append(summaries, e.Summary)
			summaryIdx[e.Summary] = j
		}
		pe.Summary = j
	}
	sw := &sequenceWriter{w: w}
	sw.raw(`{"format":`)
	sw.value(pooledFormat)
	sw.raw(`,"history":`)
	sw.value("pooled snapshot (" + pooledFormat + "): needs a build of protocol " + fmt.Sprint(PooledProtocol) + " or later")
	sw.raw(`,"summaries":[`)
	for i, sum := range summaries {
		if i > 0 {
			sw.raw(",")
		}
		sw.value(sum)
	}
	sw.list("servers", p.servers.entries)
	sw.list("services", p.services.entries)
	sw.raw(`],"state":`)
	sw.value(&state)
	sw.raw("}\n")
	if sw.err != nil {
		return fmt.Errorf("encode state: %w", sw.err)
	}
	return nil
}

// sequenceWriter writes JSON piece by piece and keeps the first error.
type sequenceWriter struct {
	w   io.Writer
	err error
}

func (s *sequenceWriter) raw(text string) { s.bytes([]byte(text)) }

func (s *sequenceWriter) bytes(b []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
}

// value writes v as json.Marshal encodes it.
func (s *sequenceWriter) value(v any) {
	if s.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return
	}
	s.bytes(b)
}

// list closes the list before it and writes ,"name":[entries...
func (s *sequenceWriter) list(name string, entries []json.RawMessage) {
	s.raw(`],"` + name + `":[`)
	for i, e := range entries {
		if i > 0 {
			s.raw(",")
		}
		s.bytes(e)
	}
}

// isPooled reports whether b is a pooled snapshot, from its first key:
// encoding/json writes struct fields in order, and the plain encoding
// starts with "config".
func isPooled(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte(`{"format":"`+pooledFormat+`"`))
}

// decodePooled reads a pooled snapshot into s. Equal values come back as
// one shared value, as share.go would have made them, without comparing
// versions (which, for 200 versions of 100,000 real servers, took longer
// than all the decoding).
func decodePooled(b []byte, s *State) error {
	var in pooledSnapshot
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in.Format != pooledFormat {
		return fmt.Errorf("format %q: this build reads %q", in.Format, pooledFormat)
	}
	servers := make([]*RealServer, len(in.Servers))
	for i, raw := range in.Servers {
		servers[i] = new(RealServer)
		if err := json.Unmarshal(raw, servers[i]); err != nil {
			return fmt.Errorf("real server %d of the pool: %w", i, err)
		}
	}
	services := make([]*Service, len(in.Services))
	for i, raw := range in.Services {
		ps := pooledService{Service: new(Service)}
		if err := json.Unmarshal(raw, &ps); err != nil {
			return fmt.Errorf("service %d of the pool: %w", i, err)
		}
		if ps.Servers != nil {
			ps.Service.Servers = make(map[string]*RealServer, len(ps.Servers))
			for k, ref := range ps.Servers {
				if int(ref) >= len(servers) {
					return fmt.Errorf("service %d of the pool: real server %q: reference %d, the pool holds %d", i, k, ref, len(servers))
				}
				ps.Service.Servers[k] = servers[ref]
			}
		}
		services[i] = ps.Service
	}
	ps := pooledState{State: s}
	if err := json.Unmarshal(in.State, &ps); err != nil {
		return err
	}
	// A services map equal to one of the latest versions' is that map, as
	// share.go makes it when a command repeats a table.
	type made struct {
		refs map[string]uint32
		svcs map[string]*Service
	}
	var recent []made
	resolve := func(pc *pooledConfig) (*Config, error) {
		if pc == nil {
			return nil, nil
		}
		c := pc.Config
		if c == nil {
			c = &Config{}
		}
		for _, m := range recent {
			if maps.Equal(m.refs, pc.Services) {
				c.Services = m.svcs
				return c, nil
			}
		}
		c.Services = make(map[string]*Service, len(pc.Services))
		for k, ref := range pc.Services {
			if int(ref) >= len(services) {
				return nil, fmt.Errorf("service %q: reference %d, the pool holds %d", k, ref, len(services))
			}
			c.Services[k] = services[ref]
		}
		recent = append([]made{{pc.Services, c.Services}}, recent[:min(len(recent), shareDepth-1)]...)
		return c, nil
	}
	var err error
	if s.Config, err = resolve(ps.Config); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	s.History = make([]HistoryEntry, len(ps.History))
	for i, pe := range ps.History {
		if pe.HistoryEntry != nil {
			s.History[i] = *pe.HistoryEntry
		}
		if int(pe.Summary) >= len(in.Summaries) {
			return fmt.Errorf("version %d: summary reference %d, the pool holds %d", s.History[i].Version, pe.Summary, len(in.Summaries))
		}
		s.History[i].Summary = in.Summaries[pe.Summary]
		if s.History[i].Config, err = resolve(pe.Config); err != nil {
			return fmt.Errorf("version %d: %w", s.History[i].Version, err)
		}
	}
	return nil
}

//go:build lab && labbench

package lab

// The storm half of make bench-health: reading what the runner logged and
// the set-verdicts entries Raft stored, and counting them per tick.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/figures"
	"github.com/ipvsman/ipvsman/test/harness"
)

// hbStorm is what the storm did.
type hbStorm struct {
	ran             bool
	servers         int
	slowUp          time.Duration // every server up under the slow check
	seen, committed int           // transitions the runner logged, and committed
	entries         []verdictEntry
	at              time.Time // the responder killed
}

// storm brings servers up under the slow check, kills the responder and
// applies the benchmark's check, which starts from the committed verdicts
// (up) and fails fall (3) times in a row everywhere; then stops the daemon
// and reads the set-verdicts entries from its Raft log. It ends the
// bench: no responder, no daemon.
func (b *hbBench) storm(servers int) hbStorm {
	b.t.Helper()
	s := hbStorm{ran: true, servers: servers}
	slowAt := time.Now()
	b.apply(servers, hbSlowCheck)
	harness.Eventually(b.t, 3*time.Minute, "every server up under the slow check", func() (bool, string) {
		h, err := b.health()
		if err != nil {
			return false, err.Error()
		}
		n := h.count("up")
		return n == servers, fmt.Sprintf("%d of %d up", n, servers)
	})
	s.slowUp = time.Since(slowAt)
	s.at = time.Now()
	if err := b.resp.Kill(); err != nil {
		b.t.Fatal(err)
	}
	b.apply(servers, hbCheck)
	harness.Eventually(b.t, 2*time.Minute, "every server down", func() (bool, string) {
		h, err := b.health()
		if err != nil {
			return false, err.Error()
		}
		n := h.count("down")
		return n == servers, fmt.Sprintf("%d of %d down", n, servers)
	})
	harness.Eventually(b.t, time.Minute, "every transition committed", func() (bool, string) {
		seen, committed := stormLog(b.node.Log(), s.at)
		return seen > 0 && committed >= seen, fmt.Sprintf("%d transitions, %d committed", seen, committed)
	})
	end := time.Now()
	s.seen, s.committed = stormLog(b.node.Log(), s.at)
	if err := b.node.Stop(); err != nil {
		b.t.Fatal(err)
	}
	for _, e := range verdictEntries(b.t, b.node.DataDir, s.at) {
		if e.at.Before(end) {
			s.entries = append(s.entries, e)
		}
	}
	if len(s.entries) == 0 {
		b.t.Fatal("no set-verdicts entry in the Raft log after the responder was killed")
	}
	return s
}

// logLine is the part of the daemon's JSON log lines the storm reads.
type logLine struct {
	Time        time.Time `json:"time"`
	Msg         string    `json:"msg"`
	Health      string    `json:"health"`
	Transitions int       `json:"transitions"`
}

// stormLog counts, since from, the transitions the runner logged and those
// it logged as committed.
func stormLog(log string, from time.Time) (seen, committed int) {
	for _, line := range strings.Split(log, "\n") {
		var l logLine
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &l) != nil || l.Time.Before(from) {
			continue
		}
		switch l.Msg {
		case "health transition":
			seen++
		case "health verdicts committed":
			committed += l.Transitions
		}
	}
	return seen, committed
}

// verdictEntry is one set-verdicts entry of the Raft log.
type verdictEntry struct {
	index uint64
	at    time.Time // the leader's stamp, taken when the runner proposed it
	down  int       // its transitions to down
	all   int
	stamp figures.Stamp // the runner's tick that proposed it
}

// verdictEntries reads the stopped daemon's Raft log (raft.db).
func verdictEntries(t *testing.T, dataDir string, from time.Time) []verdictEntry {
	t.Helper()
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dataDir, "raft.db"),
		BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	first, err1 := store.FirstIndex()
	last, err2 := store.LastIndex()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	var out []verdictEntry
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			t.Fatalf("raft log index %d: %v", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := fsm.Decode(l.Data)
		if err != nil {
			t.Fatalf("raft log index %d: %v", i, err)
		}
		at := time.Unix(0, cmd.Time)
		if cmd.Type != fsm.CmdSetVerdicts || at.Before(from) {
			continue
		}
		var p fsm.SetVerdictsPayload
		if err := json.Unmarshal(cmd.Payload, &p); err != nil {
			t.Fatalf("raft log index %d: %v", i, err)
		}
		e := verdictEntry{index: i, at: at, all: len(p.Verdicts), stamp: figures.Stamp{Runner: cmd.Actor, Tick: p.Tick}}
		for _, v := range p.Verdicts {
			if v.Health == fsm.HealthDown {
				e.down++
			}
		}
		out = append(out, e)
	}
	return out
}

// mostInAnyTick is the most entries proposed within one tick of each
// other (any window [t, t+tick)): an upper bound of the entries per tick,
// which counts two consecutive ticks' entries when the first was proposed
// later after its tick than the second.
func mostInAnyTick(es []verdictEntry, tick time.Duration) int {
	most := 0
	for i := range es {
		n := 0
		for j := i; j < len(es) && es[j].at.Sub(es[i].at) < tick; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

// stamps are the entries' tick stamps, for figures.MostPerTick.
func stamps(es []verdictEntry) []figures.Stamp {
	out := make([]figures.Stamp, len(es))
	for i, e := range es {
		out[i] = e.stamp
	}
	return out
}

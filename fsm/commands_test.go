package fsm

import (
	"errors"
	"slices"
	"testing"
)

// baseTypes is the log's base vocabulary as written by every release.
// Spelled out here rather than read from the table, so that dropping or
// renumbering an entry fails this test instead of silently agreeing.
var baseTypes = []struct {
	typ  CommandType
	name string
}{
	{1, "ops"}, {2, "replace-config"}, {3, "rollback"}, {4, "set-verdicts"},
	{5, "set-member"}, {6, "remove-member"}, {7, "zero-counters"}, {8, "compressed"},
}

func TestCommandTableIsComplete(t *testing.T) {
	if n := len(commands.byType); n != len(baseTypes)+len(laterTypes) {
		t.Fatalf("table has %d types, want %d base + %d later", n, len(baseTypes), len(laterTypes))
	}
	for _, b := range baseTypes {
		c, ok := commands.byType[b.typ]
		if !ok || c.name != b.name || c.since != BaseCommandProtocol || c.ignorable {
			t.Errorf("type %d: %+v, want base command %q, not ignorable", b.typ, c, b.name)
			continue
		}
		if got, ok := CommandByName(b.name); !ok || got != b.typ {
			t.Errorf("CommandByName(%q) = %d, %v", b.name, got, ok)
		}
		// Only the wrapper has no planner: Decode unwraps it.
		if (c.plan == nil) != (b.typ == CmdCompressed) {
			t.Errorf("type %d (%s): planner present = %v", b.typ, b.name, c.plan != nil)
		}
	}
	var later []CommandType
	for _, c := range laterCommands() {
		later = append(later, c.typ)
		if c.since <= PooledProtocol || c.plan == nil || !c.typ.Known() {
			t.Errorf("later type %d (%s): since %d, planner %v, known %v", c.typ, c.name, c.since, c.plan != nil, c.typ.Known())
		}
	}
	if !slices.Equal(later, laterTypes) {
		t.Errorf("this build adds types %v, want %v", later, laterTypes)
	}
	// Protocols 2 to 10 added features to existing types (request IDs,
	// check alpha, pooled snapshots, service pools, the checks of
	// ChecksProtocol, ipvsadm's SCTP, local node, --pe and any
	// scheduler, service groups, a service's quorum, the ecmp VIP
	// mode), later ones add types.
	if want := max(ECMPProtocol, commands.newest()); CommandProtocol != want {
		t.Errorf("CommandProtocol = %d, want %d (the newest feature's or type's protocol)", CommandProtocol, want)
	}
}

func TestCommandTableRefusesDuplicates(t *testing.T) {
	for name, group := range map[string][]commandSpec{
		"number":   {{typ: 50, name: "a", since: 1}, {typ: 50, name: "b", since: 1}},
		"name":     {{typ: 50, name: "a", since: 1}, {typ: 51, name: "a", since: 1}},
		"flag bit": {{typ: CommandType(IgnoreIfUnknown) | 1, name: "a", since: 1}},
		"protocol": {{typ: 50, name: "a", since: 0}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			newCommandTable(baseCommands(), group)
		})
	}
}

// Every number the table lacks, and the flag leaves room for, is skipped
// when its entry carries the ignore flag and stops the node when not.
func TestUnknownTypesHonourTheIgnoreFlag(t *testing.T) {
	for n := 0; n < int(IgnoreIfUnknown); n++ {
		typ := CommandType(n)
		if typ.Known() {
			continue
		}
		s := NewState()
		for _, ignorable := range []bool{true, false} {
			b, err := Command{Type: typ, Ignorable: ignorable, Payload: []byte(`{}`)}.Encode()
			if err != nil {
				t.Fatal(err)
			}
			cmd, err := Decode(b)
			if err != nil {
				t.Fatalf("type %d: %v", n, err)
			}
			_, err = s.Apply(cmd)
			var unknown *UnknownCommandError
			if ignorable && err != nil {
				t.Fatalf("type %d, ignorable: %v", n, err)
			}
			if !ignorable && (!errors.As(err, &unknown) || unknown.Type != typ) {
				t.Fatalf("type %d, not ignorable: err = %v, want *UnknownCommandError", n, err)
			}
		}
		if s.Skipped != 1 || s.Version != 0 {
			t.Fatalf("type %d: skipped %d, version %d; want 1 and 0", n, s.Skipped, s.Version)
		}
	}
}

// newest is the highest protocol among the table's types.
func (t commandTable) newest() int {
	n := BaseCommandProtocol
	for _, c := range t.byType {
		n = max(n, c.since)
	}
	return n
}

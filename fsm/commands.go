package fsm

import "fmt"

// commandSpec is everything this build knows about one command type. The
// type number and name are part of the log's meaning: an entry is never
// renumbered, renamed or reused, only added.
type commandSpec struct {
	typ  CommandType
	name string
	// since is the protocol that introduced the type: the leader proposes
	// it only while every member speaks at least that protocol.
	since int
	// ignorable: an older build may skip the type, so its entries carry
	// IgnoreIfUnknown. Only a type whose effect no other command depends
	// on may be ignorable, or skipping it would make the nodes diverge.
	ignorable bool
	// plan decodes the payload and plans the change against a state. Nil
	// for a type that Decode unwraps (CmdCompressed), which Apply never
	// sees from a log.
	plan func(s *State, cmd Command) (change, error)
}

// commandTable is the build's command types by number and by name. It is
// made once, from the base commands and the build's later ones, and never
// changed, so that every lookup sees the same table whatever ran first.
type commandTable struct {
	byType map[CommandType]commandSpec
	byName map[string]CommandType
}

// commands is this build's table; Known, Since, Ignorable and Apply all
// read it.
var commands = newCommandTable(baseCommands(), laterCommands())

// newCommandTable builds a table from groups of specs. A duplicate number
// or name, or a number that collides with the ignore flag, is a bug in the
// build, not in a log: it panics while the package initializes, before any
// entry could be applied by the wrong handler.
func newCommandTable(groups ...[]commandSpec) commandTable {
	t := commandTable{byType: map[CommandType]commandSpec{}, byName: map[string]CommandType{}}
	for _, g := range groups {
		for _, c := range g {
			switch {
			case byte(c.typ)&IgnoreIfUnknown != 0:
				panic(fmt.Sprintf("fsm: command type %d uses the ignore flag bit", c.typ))
			case c.name == "" || c.since < BaseCommandProtocol:
				panic(fmt.Sprintf("fsm: command type %d: name %q, protocol %d", c.typ, c.name, c.since))
			}
			if _, dup := t.byType[c.typ]; dup {
				panic(fmt.Sprintf("fsm: command type %d registered twice", c.typ))
			}
			if _, dup := t.byName[c.name]; dup {
				panic(fmt.Sprintf("fsm: command name %q registered twice", c.name))
			}
			t.byType[c.typ] = c
			t.byName[c.name] = c.typ
		}
	}
	return t
}

// baseCommands are the types of protocols 1 and 2. Protocol 2 added no
// type of its own that Apply sees: it added request IDs and compressed
// entries, which older builds were never sent (RequestProtocol gates both).
func baseCommands() []commandSpec {
	return []commandSpec{
		{typ: CmdOps, name: "ops", since: BaseCommandProtocol, plan: decoded((*State).planOps)},
		{typ: CmdReplaceConfig, name: "replace-config", since: BaseCommandProtocol, plan: decoded((*State).planReplaceConfig)},
		{typ: CmdRollback, name: "rollback", since: BaseCommandProtocol, plan: decoded((*State).planRollback)},
		{typ: CmdSetVerdicts, name: "set-verdicts", since: BaseCommandProtocol, plan: decoded((*State).planVerdicts)},
		{typ: CmdSetMember, name: "set-member", since: BaseCommandProtocol, plan: decoded((*State).planSetMember)},
		{typ: CmdRemoveMember, name: "remove-member", since: BaseCommandProtocol, plan: decoded((*State).planRemoveMember)},
		{typ: CmdZeroCounters, name: "zero-counters", since: BaseCommandProtocol, plan: decoded((*State).planZeroCounters)},
		// Gated by RequestProtocol where the leader compresses, not by
		// since: the type is never proposed by name.
		{typ: CmdCompressed, name: "compressed", since: BaseCommandProtocol},
	}
}

// decoded makes a planner of a function of the decoded payload, so that
// every type reports a bad payload the same way.
func decoded[T any](plan func(s *State, cmd Command, p T) (change, error)) func(*State, Command) (change, error) {
	return func(s *State, cmd Command) (change, error) {
		p, err := decodePayload[T](cmd)
		if err != nil {
			return change{}, err
		}
		return plan(s, cmd, p)
	}
}

func (t CommandType) String() string {
	if c, ok := commands.byType[t]; ok {
		return c.name
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// Known reports whether this build can apply commands of type t.
func (t CommandType) Known() bool { _, ok := commands.byType[t]; return ok }

// Since is the protocol that introduced t.
func (t CommandType) Since() int {
	if c, ok := commands.byType[t]; ok {
		return c.since
	}
	return BaseCommandProtocol
}

// Ignorable reports whether an older build may skip t (the log entry then
// carries IgnoreIfUnknown).
func (t CommandType) Ignorable() bool { return commands.byType[t].ignorable }

// CommandByName finds a command type this build knows by its name.
func CommandByName(name string) (CommandType, bool) {
	t, ok := commands.byName[name]
	return t, ok
}

// plan dispatches cmd to its type's planner. A type this build does not
// know is skipped when its entry says an older build may skip it; any
// other unknown type is an error the caller must stop on, since applying
// the rest of the log without it would diverge from the nodes that know it.
func (s *State) plan(cmd Command) (change, error) {
	c, ok := commands.byType[cmd.Type]
	if !ok {
		if cmd.Ignorable {
			return change{skipped: true}, nil
		}
		return change{}, &UnknownCommandError{Type: cmd.Type}
	}
	if c.plan == nil {
		return change{}, fmt.Errorf("command type %s: no handler", cmd.Type)
	}
	return c.plan(s, cmd)
}

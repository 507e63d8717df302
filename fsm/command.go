package fsm

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// CommandType is the first byte of every log entry. Values are never
// renumbered or reused: a log written by any version must replay the same.
type CommandType uint8

const (
	CmdOps           CommandType = 1 // topology ops (ipvsadm commands), atomically
	CmdReplaceConfig CommandType = 2 // a whole topology (apply -f)
	CmdRollback      CommandType = 3 // a new version equal to an old one
	CmdSetVerdicts   CommandType = 4 // health verdict transitions, batched
	CmdSetMember     CommandType = 5 // a node's addresses (bootstrap, join)
	CmdRemoveMember  CommandType = 6 // a node left
	CmdZeroCounters  CommandType = 7 // ipvsadm -Z, cluster-wide
	// CmdCompressed wraps another entry, gzipped (protocol 2): Decode
	// unwraps it, so Apply never sees this type. Not ignorable: a build
	// that cannot read it must stop rather than skip a command.
	CmdCompressed CommandType = 8

	// IgnoreIfUnknown marks a command that an older node may skip safely.
	// Any other unknown type stops the node: skipping it would diverge.
	IgnoreIfUnknown byte = 0x80
)

// BaseCommandProtocol is the protocol every build that may share a log speaks:
// its command types are never gated.
const BaseCommandProtocol = 1

// RequestProtocol is the protocol that carries the client's request ID in a
// command (Command.Request) and remembers it in the state, so that a retry
// is answered with the first outcome instead of applying twice. A build of
// protocol 1 would ignore the field and apply a retry again, so the leader
// stamps the ID only while every member speaks at least this protocol.
const RequestProtocol = 2

// AlphaProtocol is the protocol that knows a health check's Alpha: a real
// server whose check has it counts as down until its first check passes.
// A build that predates it would count the server as up and program
// another kernel table, so a configuration with Alpha is refused until
// every member speaks it (Config.Needs).
const AlphaProtocol = RequestProtocol + 1

// Command is one log entry. Time and Actor are stamped by the leader before
// the entry is proposed, so that Apply never reads a clock. Request is the
// client's ID for the write (empty for the cluster's own commands): a
// command whose ID the state remembers is answered with the remembered
// result and changes nothing.
type Command struct {
	Type      CommandType     `json:"-"`
	Ignorable bool            `json:"-"`
	Time      int64           `json:"time"` // unix nanoseconds
	Actor     string          `json:"actor"`
	Request   string          `json:"request,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// Payloads, one per command type.
type (
	OpsPayload struct {
		Ops []Op `json:"ops"`
	}
	ReplaceConfigPayload struct {
		Config *Config `json:"config"`
		Reason string  `json:"reason,omitempty"` // e.g. the file name
	}
	RollbackPayload struct {
		Version uint64 `json:"version"`
	}
	SetVerdictsPayload struct {
		Verdicts []VerdictChange `json:"verdicts"`
		// Tick is the number of the health runner's tick that proposed
		// the batch: benchmarks count entries per tick from it. Apply
		// ignores it, and older members ignore the unknown field.
		Tick uint64 `json:"tick,omitempty"`
	}
	VerdictChange struct {
		Service string `json:"service"` // ServiceKey.String()
		Server  string `json:"server"`  // RealServer.Key()
		Health  Health `json:"health"`
		Weight  *int   `json:"weight,omitempty"` // from an exec check; nil: the configured weight
		Reason  string `json:"reason,omitempty"`
	}
	SetMemberPayload struct {
		Member Member `json:"member"`
	}
	RemoveMemberPayload struct {
		ID string `json:"id"`
	}
	ZeroCountersPayload struct {
		Service string `json:"service,omitempty"` // empty = all
	}
)

// NewCommand builds a command with its payload encoded.
func NewCommand(t CommandType, time int64, actor string, payload any) (Command, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return Command{}, fmt.Errorf("encode %s payload: %w", t, err)
	}
	return Command{Type: t, Time: time, Actor: actor, Payload: b}, nil
}

// Encode gives the log entry bytes: type byte (with the ignore flag) + JSON.
// The envelope is written around the payload, which is JSON already, so
// that a large payload is neither scanned nor copied twice (encoding/json
// would re-compact a RawMessage).
func (c Command) Encode() ([]byte, error) {
	head, err := json.Marshal(struct {
		Time    int64  `json:"time"`
		Actor   string `json:"actor"`
		Request string `json:"request,omitempty"`
	}{c.Time, c.Actor, c.Request})
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", c.Type, err)
	}
	payload := []byte(c.Payload)
	if len(payload) == 0 {
		payload = []byte("null")
	}
	b := byte(c.Type)
	if c.Ignorable {
		b |= IgnoreIfUnknown
	}
	const key = `,"payload":`
	out := make([]byte, 0, 1+len(head)+len(key)+len(payload))
	out = append(out, b)
	out = append(out, head[:len(head)-1]...)
	out = append(out, key...)
	out = append(out, payload...)
	return append(out, '}'), nil
}

// ErrEmptyCommand is returned for a zero-length log entry.
var ErrEmptyCommand = errors.New("command: empty log entry")

// CompressAbove is the entry size from which the leader compresses an
// entry (CmdCompressed) when every member speaks RequestProtocol: a table
// of 100,000 real servers is a 17 MB entry of repetitive JSON, which every
// node would otherwise store, send and decode at full size.
const CompressAbove = 64 << 10

// maxEntry bounds what a compressed entry may expand to.
const maxEntry = 512 << 20

// Compress wraps an encoded entry as a CmdCompressed entry.
func Compress(entry []byte) ([]byte, error) {
	// Sized for what JSON compresses to, so that the buffer is not grown
	// (copied) again and again: a copy of megabytes is a stretch the Go
	// scheduler cannot preempt.
	buf := bytes.NewBuffer(make([]byte, 0, len(entry)/3+1024))
	buf.WriteByte(byte(CmdCompressed))
	zw, err := gzip.NewWriterLevel(buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(entry); err != nil {
		return nil, fmt.Errorf("compress entry: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress entry: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode parses a log entry. An unknown type decodes without error (its
// payload is kept raw) so that Apply can decide to skip or stop. A
// compressed entry decodes as the command it wraps.
func Decode(b []byte) (Command, error) {
	if len(b) == 0 {
		return Command{}, ErrEmptyCommand
	}
	if CommandType(b[0]&^IgnoreIfUnknown) == CmdCompressed {
		inner, err := decompress(b[1:])
		if err != nil {
			return Command{}, err
		}
		if len(inner) > 0 && CommandType(inner[0]&^IgnoreIfUnknown) == CmdCompressed {
			return Command{}, fmt.Errorf("decode compressed entry: it wraps another compressed entry")
		}
		return Decode(inner)
	}
	var c Command
	if err := json.Unmarshal(b[1:], &c); err != nil {
		return Command{}, fmt.Errorf("decode command type %d: %w", b[0]&^IgnoreIfUnknown, err)
	}
	c.Type = CommandType(b[0] &^ IgnoreIfUnknown)
	c.Ignorable = b[0]&IgnoreIfUnknown != 0
	return c, nil
}

func decompress(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode compressed entry: %w", err)
	}
	// gzip's trailer holds the size it expands to (modulo 2^32): the
	// output is made that size at once instead of grown by copies, as
	// Compress's is. It is only a hint: the limit still bounds the read.
	hint := 0
	if len(b) >= 4 {
		hint = min(int(binary.LittleEndian.Uint32(b[len(b)-4:])), maxEntry)
	}
	out := bytes.NewBuffer(make([]byte, 0, hint+bytes.MinRead))
	if _, err := out.ReadFrom(io.LimitReader(zr, maxEntry+1)); err != nil {
		return nil, fmt.Errorf("decode compressed entry: %w", err)
	}
	if out.Len() > maxEntry {
		return nil, fmt.Errorf("decode compressed entry: expands past %d bytes", maxEntry)
	}
	return out.Bytes(), nil
}

// UnknownCommandError means the log holds a command this build cannot apply
// and must not skip: the node has to stop rather than diverge.
type UnknownCommandError struct{ Type CommandType }

func (e *UnknownCommandError) Error() string {
	return fmt.Sprintf("command type %d is unknown to this version and not marked ignorable: upgrade this node", uint8(e.Type))
}

func decodePayload[T any](c Command) (T, error) {
	var v T
	if err := json.Unmarshal(c.Payload, &v); err != nil {
		return v, fmt.Errorf("%s payload: %w", c.Type, err)
	}
	return v, nil
}

package ipvsadm

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// argKind says whether an option takes a value, following ipvsadm's popt
// table: POPT_ARG_NONE, POPT_ARG_STRING, and STRING|ARGFLAG_OPTIONAL (-p).
type argKind int

const (
	argNone argKind = iota
	argRequired
	argOptional
)

type optID int

// Commands first, so that isCommand can be a comparison.
const (
	cmdAdd optID = iota
	cmdEdit
	cmdDel
	cmdClear
	cmdList
	cmdZero
	cmdAddDest
	cmdEditDest
	cmdDelDest
	cmdRestore
	cmdSave
	cmdHelp
	cmdVersion
	cmdSet
	lastCommand

	optTCP
	optUDP
	optFWMark
	optSCTP
	optIPv6
	optSched
	optPersist
	optNetmask
	optSchedFlags
	optOnePacket
	optPE
	optReal
	optGate
	optIPIP
	optMasq
	optWeight
	optUpper
	optLower
	optTunType
	optTunPort
	optTunNoCsum // --tun-nocsum; also the slot of --tun-csum and --tun-remcsum
	optTunCsum
	optTunRemCsum
	optTunInfo
	optNumeric
	optConn
	optStats
	optRate
	optThresholds
	optPConn
	optExact
	optSort
	optNoSort
	optTimeout
	optUnsupported // kernel-only features the model does not have yet
)

func (id optID) isCommand() bool { return id < lastCommand }

type optSpec struct {
	short byte // 0 when ipvsadm has no short form
	long  string
	arg   argKind
	id    optID
}

// optTable mirrors ipvsadm 1.31's poptOption table, so that every spelling
// an existing script may use is recognized, even where ipvsman cannot act
// on it yet.
var optTable = []optSpec{
	{'A', "add-service", argNone, cmdAdd},
	{'E', "edit-service", argNone, cmdEdit},
	{'D', "delete-service", argNone, cmdDel},
	{'C', "clear", argNone, cmdClear},
	{'L', "list", argNone, cmdList},
	{'l', "", argNone, cmdList},
	{'Z', "zero", argNone, cmdZero},
	{'a', "add-server", argNone, cmdAddDest},
	{'e', "edit-server", argNone, cmdEditDest},
	{'d', "delete-server", argNone, cmdDelDest},
	{'h', "help", argNone, cmdHelp},
	{'v', "version", argNone, cmdVersion},
	{'R', "restore", argNone, cmdRestore},
	{'S', "save", argNone, cmdSave},
	{'t', "tcp-service", argRequired, optTCP},
	{'u', "udp-service", argRequired, optUDP},
	{'f', "fwmark-service", argRequired, optFWMark},
	{'6', "ipv6", argNone, optIPv6},
	{'s', "scheduler", argRequired, optSched},
	{'p', "persistent", argOptional, optPersist},
	{'M', "netmask", argRequired, optNetmask},
	{'b', "sched-flags", argRequired, optSchedFlags},
	{'o', "ops", argNone, optOnePacket},
	{'r', "real-server", argRequired, optReal},
	{'g', "gatewaying", argNone, optGate},
	{'i', "ipip", argNone, optIPIP},
	{'m', "masquerading", argNone, optMasq},
	{'w', "weight", argRequired, optWeight},
	{'x', "u-threshold", argRequired, optUpper},
	{'y', "l-threshold", argRequired, optLower},
	{0, "tun-type", argRequired, optTunType},
	{'n', "numeric", argNone, optNumeric},
	{'c', "connection", argNone, optConn},
	{0, "stats", argNone, optStats},
	{0, "rate", argNone, optRate},
	{0, "thresholds", argNone, optThresholds},
	{0, "persistent-conn", argNone, optPConn},
	{'X', "exact", argNone, optExact},
	{0, "sort", argNone, optSort},
	{0, "nosort", argNone, optNoSort},
	{0, "set", argRequired, cmdSet}, // three values: see tokenize
	{0, "start-daemon", argRequired, optUnsupported},
	{0, "stop-daemon", argRequired, optUnsupported},
	{0, "sctp-service", argRequired, optSCTP},
	{0, "pe", argRequired, optPE},
	{0, "mcast-interface", argRequired, optUnsupported},
	{0, "mcast-group", argRequired, optUnsupported},
	{0, "mcast-port", argRequired, optUnsupported},
	{0, "mcast-ttl", argRequired, optUnsupported},
	{0, "sync-maxlen", argRequired, optUnsupported},
	{0, "syncid", argRequired, optUnsupported},
	{0, "timeout", argNone, optTimeout},
	{0, "daemon", argNone, optUnsupported},
	{0, "tun-info", argNone, optTunInfo},
	{0, "tun-port", argRequired, optTunPort},
	{0, "tun-nocsum", argNone, optTunNoCsum},
	{0, "tun-csum", argNone, optTunCsum},
	{0, "tun-remcsum", argNone, optTunRemCsum},
}

var (
	byShort = map[byte]*optSpec{}
	byLong  = map[string]*optSpec{}
)

func init() {
	for i := range optTable {
		o := &optTable[i]
		if o.short != 0 {
			byShort[o.short] = o
		}
		if o.long != "" {
			byLong[o.long] = o
		}
	}
}

// token is one option occurrence, with the spelling the user typed so that
// errors can quote it back.
type token struct {
	spec     *optSpec
	name     string // "-w" or "--weight"
	value    string
	hasValue bool
}

// label is how errors name the option and its value: `-w "abc"`.
func (t token) label() string {
	if t.hasValue {
		return fmt.Sprintf("%s %q", t.name, t.value)
	}
	return t.name
}

// tokenize splits argv the way popt does: clustered short options ("-Ln"),
// a short option's value attached ("-w3") or in the next word, "--long=value"
// or "--long value", and -p's optional value taken from the next word only
// when that word does not start with '-'.
func tokenize(args []string) ([]token, error) {
	var toks []token
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return nil, fmt.Errorf("unexpected argument %q", args[i+1])
			}
			return toks, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasEq := strings.Cut(a[2:], "=")
			spec := byLong[name]
			if spec == nil {
				return nil, fmt.Errorf("unknown option %q", "--"+name)
			}
			t := token{spec: spec, name: "--" + name}
			if spec.id == optUnsupported {
				// Before its operands, which would read as stray arguments
				// (--set tcp tcpfin udp).
				return nil, fmt.Errorf("not supported yet: %s", t.name)
			}
			if spec.id == cmdSet {
				// ipvsadm's only three-valued option: --set tcp tcpfin udp.
				if hasEq || i+3 >= len(args) {
					return nil, fmt.Errorf("--set: want three values: tcp tcpfin udp (seconds, 0 = unchanged)")
				}
				t.value, t.hasValue = strings.Join(args[i+1:i+4], " "), true
				i += 3
				toks = append(toks, t)
				continue
			}
			switch {
			case hasEq && spec.arg == argNone:
				return nil, fmt.Errorf("%s: takes no value (got %q)", t.name, val)
			case hasEq:
				t.value, t.hasValue = val, true
			default:
				var err error
				if t.value, t.hasValue, err = nextValue(args, &i, t.name, spec.arg); err != nil {
					return nil, err
				}
			}
			toks = append(toks, t)
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				spec := byShort[a[j]]
				if spec == nil {
					r, _ := utf8.DecodeRuneInString(a[j:])
					return nil, fmt.Errorf("unknown option %q", "-"+string(r))
				}
				t := token{spec: spec, name: "-" + string(a[j])}
				if spec.arg != argNone {
					if rest := a[j+1:]; rest != "" {
						t.value, t.hasValue = rest, true
					} else {
						var err error
						if t.value, t.hasValue, err = nextValue(args, &i, t.name, spec.arg); err != nil {
							return nil, err
						}
					}
					toks = append(toks, t)
					break
				}
				toks = append(toks, t)
			}
		default:
			return nil, fmt.Errorf("unexpected argument %q", a)
		}
	}
	return toks, nil
}

// nextValue consumes args[*i+1] as the value of the option at args[*i].
func nextValue(args []string, i *int, name string, kind argKind) (string, bool, error) {
	if kind == argNone {
		return "", false, nil
	}
	if *i+1 >= len(args) {
		if kind == argOptional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("%s: missing value", name)
	}
	next := args[*i+1]
	if kind == argOptional && strings.HasPrefix(next, "-") {
		return "", false, nil
	}
	*i++
	return next, true, nil
}

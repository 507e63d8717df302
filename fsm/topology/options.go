package topology

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// lineOpts are the options that become defaults of the service's servers.
type lineOpts struct {
	forward      fsm.Forward
	weight       int
	upper, lower uint32
}

// optArg says whether an option takes a value.
type optArg int

const (
	argNone optArg = iota
	argRequired
	argOptional // -p: a following word is its value only if it is a number
)

var shortOpts = map[byte]optArg{
	's': argRequired, 'p': argOptional, 'M': argRequired, 'b': argRequired,
	'o': argNone, 'g': argNone, 'i': argNone, 'm': argNone,
	'w': argRequired, 'x': argRequired, 'y': argRequired,
	optPE: argRequired,
}

// optPE is --pe's letter: ipvsadm has no short form, and no typed letter
// is this byte.
const optPE = 1

var longOpts = map[string]byte{
	"scheduler": 's', "persistent": 'p', "netmask": 'M', "sched-flags": 'b',
	"ops": 'o', "gatewaying": 'g', "ipip": 'i', "masquerading": 'm',
	"weight": 'w', "u-threshold": 'x', "l-threshold": 'y', "pe": optPE,
}

func parseOptions(s string, svc *fsm.Service) (lineOpts, error) {
	opts := lineOpts{forward: fsm.DirectRoute, weight: fsm.DefaultWeight}
	words := strings.Fields(s)
	type seenOpt struct {
		letter byte
		word   string
	}
	seen := map[byte]seenOpt{}
	var netmask, peName string
	for i := 0; i < len(words); i++ {
		word := words[i]
		var letter byte
		var val string
		var attached bool
		switch {
		case strings.HasPrefix(word, "--"):
			name, v, eq := strings.Cut(word[2:], "=")
			l, ok := longOpts[name]
			if !ok {
				return opts, fmt.Errorf("option %q: unknown", word)
			}
			letter, val, attached = l, v, eq
		case len(word) >= 2 && word[0] == '-':
			letter, val, attached = word[1], word[2:], len(word) > 2
		default:
			return opts, fmt.Errorf("option %q: options start with '-', as ipvsadm's do", word)
		}
		arg, ok := shortOpts[letter]
		if !ok || (arg == argNone && attached) {
			return opts, fmt.Errorf("option %q: unknown", word)
		}
		if !attached && i+1 < len(words) {
			next := words[i+1]
			if arg == argRequired || (arg == argOptional && isDigits(next)) {
				val, attached = next, true
				i++
			}
		}
		if (arg == argRequired && !attached) || (attached && val == "") {
			return opts, fmt.Errorf("option %q: needs a value", word)
		}
		group := letter
		if letter == 'g' || letter == 'i' || letter == 'm' {
			group = 'g' // the forwarding methods exclude each other
		}
		if prev, dup := seen[group]; dup {
			if prev.letter == letter {
				return opts, fmt.Errorf("option %q: given twice (also %q)", word, prev.word)
			}
			return opts, fmt.Errorf("option %q: conflicts with %q", word, prev.word)
		}
		seen[group] = seenOpt{letter, word}
		if letter == optPE {
			peName = val
			continue
		}
		if err := applyOption(letter, val, attached, svc, &opts, &netmask); err != nil {
			return opts, fmt.Errorf("option %q: %w", word, err)
		}
	}
	if netmask != "" {
		if svc.Persistence == nil {
			return opts, fmt.Errorf("option %q: needs -p", seen['M'].word)
		}
		svc.Persistence.Netmask = netmask
	}
	if pe, ok := seen[optPE]; ok {
		if svc.Persistence == nil {
			return opts, fmt.Errorf("option %q: needs -p", pe.word)
		}
		svc.Persistence.Engine = peName
	}
	return opts, nil
}

func applyOption(letter byte, val string, given bool, svc *fsm.Service, opts *lineOpts, netmask *string) error {
	var err error
	switch letter {
	case 's':
		svc.Scheduler = val
	case 'p':
		t := uint32(fsm.DefaultPersistence)
		if given {
			if t, err = parseUint32(val, 1); err != nil {
				return fmt.Errorf("timeout %q: want a number of seconds, 1 or more", val)
			}
		}
		svc.Persistence = &fsm.Persistence{Timeout: t}
	case 'M':
		*netmask = val
	case 'b':
		svc.Flags = strings.Split(val, ",")
		for _, f := range svc.Flags {
			if f == "" {
				return fmt.Errorf("flags %q: want FLAG[,FLAG...]", val)
			}
		}
	case 'o':
		svc.OnePacket = true
	case 'g':
		opts.forward = fsm.DirectRoute
	case 'i':
		opts.forward = fsm.Tunnel
	case 'm':
		opts.forward = fsm.Masquerade
	case 'w':
		w, err := strconv.Atoi(val)
		if err != nil || w < 0 || w > fsm.MaxWeight {
			return fmt.Errorf("weight %q: want 0-%d", val, fsm.MaxWeight)
		}
		opts.weight = w
	case 'x', 'y':
		t, err := parseUint32(val, 0)
		if err != nil {
			return fmt.Errorf("threshold %q: want 0-4294967295 connections", val)
		}
		if letter == 'x' {
			opts.upper = t
		} else {
			opts.lower = t
		}
	}
	return nil
}

func parseUint32(s string, lo uint64) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err == nil && v < lo {
		err = fmt.Errorf("below %d", lo)
	}
	return uint32(v), err
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

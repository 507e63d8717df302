package main

import (
	"fmt"

	"github.com/spf13/pflag"
)

// commandLine is every flag given on the command line, by name, as its
// value's text (a list flag's items): what wins over a --config file, at
// start and at every reload.
func commandLine(f *pflag.FlagSet) map[string][]string {
	set := map[string][]string{}
	f.Visit(func(fl *pflag.Flag) {
		if fl.Name == "gen-man" {
			return
		}
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			set[fl.Name] = sv.GetSlice()
		} else {
			set[fl.Name] = []string{fl.Value.String()}
		}
	})
	return set
}

// loadOptions is the daemon's settings: the defaults, then the --config
// file's flags (none when config is ""), then the command line's. values
// is every flag's resulting text, by name, for a reload to compare.
func loadOptions(cmdline map[string][]string, config string) (o options, values map[string]string, err error) {
	f := pflag.NewFlagSet("ipvsmand", pflag.ContinueOnError)
	f.Usage = func() {}
	defineFlags(f, &o)
	if config != "" {
		args, err := configArgs(config)
		if err != nil {
			return options{}, nil, err
		}
		if err := f.Parse(args); err != nil {
			return options{}, nil, fmt.Errorf("--config %q: %w", config, err)
		}
	}
	for name, v := range cmdline {
		if err := setFlag(f, name, v); err != nil {
			return options{}, nil, fmt.Errorf("--%s %q: %w", name, v, err)
		}
	}
	values = map[string]string{}
	f.VisitAll(func(fl *pflag.Flag) { values[fl.Name] = fl.Value.String() })
	return o, values, nil
}

// setFlag gives flag name the value(s) the command line gave it: a list
// flag's items replace the file's (as a later --flag would not).
func setFlag(f *pflag.FlagSet, name string, v []string) error {
	fl := f.Lookup(name)
	if fl == nil {
		return fmt.Errorf("no such flag")
	}
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		fl.Changed = true
		return sv.Replace(v)
	}
	if len(v) != 1 {
		return fmt.Errorf("want one value")
	}
	return f.Set(name, v[0])
}

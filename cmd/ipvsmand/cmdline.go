package main

import (
	"fmt"

	"github.com/spf13/pflag"
)

// commandLine is every flag given on the command line, by name, as its
// value's text: what wins over a --config file, at start and at every
// reload.
func commandLine(f *pflag.FlagSet) map[string]string {
	set := map[string]string{}
	f.Visit(func(fl *pflag.Flag) {
		if fl.Name != "gen-man" {
			set[fl.Name] = fl.Value.String()
		}
	})
	return set
}

// loadOptions is the daemon's settings: the defaults, then the --config
// file's flags (none when config is ""), then the command line's. values
// is every flag's resulting text, by name, for a reload to compare.
func loadOptions(cmdline map[string]string, config string) (o options, values map[string]string, err error) {
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
		if err := f.Set(name, v); err != nil {
			return options{}, nil, fmt.Errorf("--%s %q: %w", name, v, err)
		}
	}
	values = map[string]string{}
	f.VisitAll(func(fl *pflag.Flag) { values[fl.Name] = fl.Value.String() })
	return o, values, nil
}

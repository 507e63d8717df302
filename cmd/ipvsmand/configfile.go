package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// configArgs reads a --config file: the daemon's flags, one per line, as
// on the command line ("--log-level=debug", "--log-level debug") or bare
// ("log-level = debug", "ipvs-exclusive"); blank lines and lines starting
// with # are skipped. A file keeps the settings SIGHUP may change where the
// daemon can read them again; flags on the command line win over it.
func configArgs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--config %q: %w", path, err)
	}
	defer f.Close()
	var args []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, hasValue := cutFlag(text)
		if name == "" || strings.ContainsAny(name, " \t=") {
			return nil, fmt.Errorf("--config %q line %d: %q: want --flag=value, flag = value or flag", path, line, text)
		}
		if name == "config" {
			return nil, fmt.Errorf("--config %q line %d: a config file cannot name another", path, line)
		}
		arg := "--" + name
		if hasValue {
			arg += "=" + unquote(value)
		}
		args = append(args, arg)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--config %q: %w", path, err)
	}
	return args, nil
}

// cutFlag splits one line into the flag's name and value.
func cutFlag(text string) (name, value string, hasValue bool) {
	text = strings.TrimLeft(text, "-")
	if i := strings.IndexAny(text, "= \t"); i >= 0 {
		name = text[:i]
		value = strings.TrimSpace(text[i:])
		value = strings.TrimSpace(strings.TrimPrefix(value, "="))
		return name, value, true
	}
	return text, "", false
}

// unquote takes away one pair of matching quotes, as a shell would.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

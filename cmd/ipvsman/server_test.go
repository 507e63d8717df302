package main

import (
	"bytes"
	"strings"
	"testing"
)

// The server subcommands read their arguments with ipvsadm's parser, so
// cobra's own --help handling is off there; --help must still show help
// (the man pages are generated from it) and reach no cluster.
func TestServerSubcommandHelp(t *testing.T) {
	for _, sub := range []string{"suspend", "resume", "drain"} {
		root := rootCmd(&globals{})
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{"server", sub, "--help"})
		if err := root.Execute(); err != nil {
			t.Fatalf("server %s --help: %v", sub, err)
		}
		if !strings.Contains(out.String(), "ipvsman server "+sub+" -t|-u ADDR:PORT") {
			t.Fatalf("server %s --help printed:\n%s", sub, out.String())
		}
	}
}

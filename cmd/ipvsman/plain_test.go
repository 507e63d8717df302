package main

import (
	"io"
	"slices"
	"testing"
)

// --insecure-http is a global flag like --allow-empty: wherever it stands
// in ipvsadm's language, and before a subcommand; the client it makes may
// send the token in clear, and one without it may not.
func TestInsecureHTTPIsAGlobalFlag(t *testing.T) {
	t.Setenv("IPVSMAN_CA", "")
	for _, c := range []struct {
		args    []string
		ipvsadm bool
		rest    []string
	}{
		{[]string{"-L", "-n", "--insecure-http"}, true, []string{"-L", "-n"}},
		{[]string{"--insecure-http=true", "-A", "-t", "10.0.0.1:80"}, true, []string{"-A", "-t", "10.0.0.1:80"}},
		{[]string{"--insecure-http", "cluster", "status"}, false, []string{"cluster", "status"}},
	} {
		g := &globals{api: "10.0.0.11:7080", token: "x"}
		ipvsadm, rest, err := g.split(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if ipvsadm != c.ipvsadm || !slices.Equal(rest, c.rest) || !g.insecureHTTP {
			t.Errorf("%q: ipvsadm %v rest %q insecure %v", c.args, ipvsadm, rest, g.insecureHTTP)
		}
		if cl, err := g.client(); err != nil || !cl.InsecureHTTP {
			t.Errorf("%q: client %+v, %v", c.args, cl, err)
		}
	}
	if cl, err := (&globals{api: "10.0.0.11:7080", token: "x"}).client(); err != nil || cl.InsecureHTTP {
		t.Errorf("without the flag: client %+v, %v", cl, err)
	}
	root := rootCmd(&globals{})
	root.SetOut(io.Discard)
	root.SetArgs([]string{"--insecure-http", "version"})
	if err := root.Execute(); err != nil {
		t.Errorf("--insecure-http before a subcommand: %v", err)
	}
}

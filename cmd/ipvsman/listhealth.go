package main

import (
	"bufio"
	"fmt"
	"slices"
	"strings"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// healthFlag is ipvsman's own addition to -L: each real server's line gets
// its health verdict, last check result and latency. Without it -L stays
// byte for byte ipvsadm's, for the scripts that parse it.
const healthFlag = "--health"

// takeHealthFlag removes --health from args and reports whether it was there.
func takeHealthFlag(args []string) ([]string, bool) {
	i := slices.Index(args, healthFlag)
	if i < 0 {
		return args, false
	}
	return slices.Delete(slices.Clone(args), i, i+1), true
}

// annotateHealth appends health columns to the real-server lines of a
// numeric -L listing.
func annotateHealth(list string, checks []api.CheckStatus) string {
	by := map[string]api.CheckStatus{}
	for _, c := range checks {
		by[c.Service+"/"+c.Server] = c
	}
	var out strings.Builder
	service := ""
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP"):
			service = strings.ToLower(f[0]) + ":" + f[1]
		case len(f) >= 2 && f[0] == "FWM":
			service = "fwmark:" + f[1]
			if slices.Contains(f, "IPv6") {
				service = "fwmark6:" + f[1]
			}
		case len(f) >= 2 && f[0] == "->" && f[1] == "RemoteAddress:Port":
			line = strings.TrimRight(line, " ") + "  Health  Last  Latency"
		case len(f) >= 2 && f[0] == "->":
			if c, ok := by[service+"/"+f[1]]; ok {
				line = strings.TrimRight(line, " ") + "  " + describeStatus(c)
			}
		}
		out.WriteString(line + "\n")
	}
	return out.String()
}

func describeStatus(c api.CheckStatus) string {
	if c.At.IsZero() {
		return string(c.Health) + "  -  -"
	}
	last := "ok"
	if !c.OK {
		last = "fail:" + strings.ReplaceAll(c.Detail, " ", "_")
	}
	return fmt.Sprintf("%s  %s  %.1fms", c.Health, last, float64(c.Latency.Microseconds())/1000)
}

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// manSection is 8 (system administration) for both programs: ipvsman takes
// over from ipvsadm(8), is installed in /usr/sbin next to ipvsmand, and in
// practice needs the root-only cluster token; Debian wants a program's man
// section to match its directory.
const manSection = "8"

// genManCmd writes the man pages at package time. It is hidden: operators
// read the pages, they do not make them.
func genManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages (section 8) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return genMan(c.Root(), args[0])
		},
	}
}

// genMan writes ipvsman.8 and one page per subcommand. The ipvsadm command
// language is parsed outside cobra (see split), so cobra cannot document it:
// the root page gets it as sections of its own, added only here so that
// --help stays short.
func genMan(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gen-man: directory %q: %w", dir, err)
	}
	root.Long = "ipvsman operates an ipvsman cluster through the HTTP API of any of its nodes " +
		"(**ipvsmand**(8)). It speaks ipvsadm's command language, applied to the whole cluster, " +
		"and has subcommands for the cluster's membership, health checks, the configuration " +
		"history and topology files.\n\n" + ipvsadmManSections()
	root.DisableAutoGenTag = true // its HISTORY line is a build date, nothing more
	header := &doc.GenManHeader{
		Section: manSection,
		Source:  "ipvsman " + release.Version,
		Manual:  "ipvsman manual",
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("gen-man: %w", err)
	}
	return nil
}

// ipvsadmManSections is markdown (go-md2man turns "# X" into .SH X).
func ipvsadmManSections() string {
	return "# IPVSADM COMMAND LANGUAGE\n" +
		"When the first argument (after the global options **--api**, **--token**, **--token-file**, **--ca**, **--insecure-http**, **--timeout**, **--allow-empty** and **--node**) " +
		"starts with a dash, or there is none, ipvsman reads ipvsadm's command language and applies the command " +
		"to the whole cluster through the replicated log. Without arguments it lists the table, as ipvsadm does. " +
		"**-L** and **-S** show the cluster's model; with **--node NODE** they show that node's kernel table instead.\n\n" +
		"```\n" + ipvsadm.Usage("ipvsman") + "```\n\n" +
		"# ENVIRONMENT\n" +
		"**IPVSMAN_API**\n: API address of any node, as **--api** (default 127.0.0.1:7080).\n\n" +
		"**IPVSMAN_TOKEN**\n: the cluster token, as **--token**.\n\n" +
		"**IPVSMAN_TOKEN_FILE**\n: a file holding the cluster token, as **--token-file**; like it, refused when group or others may read it.\n\n" +
		"**IPVSMAN_CA**\n: the CA certificate to verify the API server with, as **--ca** (implies https).\n\n" +
		"There is no variable for **--insecure-http**: sending the token in clear is decided per command.\n\n" +
		"# SECURITY\n" +
		"The token goes with every request. Over plain HTTP it is sent to a loopback address only (127.0.0.0/8, ::1, localhost): " +
		"to any other address nothing is sent, and ipvsman says to give **--ca** (it first tries a TLS handshake there, without the token, " +
		"and says \"the server at ADDR speaks TLS\" when one answers), unless **--insecure-http** is given. " +
		"A token file that group or others may read is refused, with the **chmod 600** that fixes it.\n\n" +
		"# FILES\n" +
		"*/etc/ipvsman/token*\n: the cluster token the packaged daemon reads, mode 0600; give it with **--token-file /etc/ipvsman/token**.\n\n" +
		"*/usr/share/doc/ipvsman/examples/*\n: topology files for **ipvsman apply -f** and a three-node setup.\n\n" +
		"# EXAMPLE\n" +
		"```\n" +
		"ipvsman -A -t 10.0.0.1:80 -s wlc\n" +
		"ipvsman -a -t 10.0.0.1:80 -r 10.3.0.10:8080 -m -w 3\n" +
		"ipvsman -L -n\n" +
		"ipvsman --token-file /etc/ipvsman/token cluster status\n" +
		"ipvsman apply -f /usr/share/doc/ipvsman/examples/web-farm.yaml --dry-run\n" +
		"```\n"
}

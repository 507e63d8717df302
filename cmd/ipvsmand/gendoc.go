package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ipvsman/ipvsman/cluster/release"
)

// registerGenMan adds the hidden --gen-man DIR flag, which writes
// ipvsmand.8 and exits, for the package build. A flag rather than a
// subcommand: a subcommand would make cobra add completion and help
// commands to a program that has none.
func registerGenMan(cmd *cobra.Command) {
	var dir string
	cmd.Flags().StringVar(&dir, "gen-man", "", "write the man page into `DIR` and exit")
	_ = cmd.Flags().MarkHidden("gen-man")
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if dir != "" {
			return genMan(c, dir)
		}
		return run(c, args)
	}
}

// genMan writes ipvsmand.8, section 8 (a daemon), with the sections cobra
// cannot derive from the flags: signals, files and exit status.
func genMan(cmd *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--gen-man %q: %w", dir, err)
	}
	cmd.Long = "ipvsmand is one director node of an ipvsman cluster. The nodes replicate the " +
		"IPVS configuration through Raft; every node programs its kernel's IPVS table from it, " +
		"and the leader holds and announces the VIPs and runs the health checks. It is driven " +
		"with **ipvsman**(8) through its HTTP API.\n\n" + daemonManSections()
	cmd.DisableAutoGenTag = true
	// The default is the host name where the page is made: say what it
	// means instead, so the page does not name the build machine.
	if f := cmd.Flags().Lookup("node-id"); f != nil {
		f.DefValue = "the host name"
	}
	header := &doc.GenManHeader{Section: "8", Source: "ipvsman " + release.Version, Manual: "ipvsman manual"}
	if err := doc.GenManTree(cmd, header, dir); err != nil {
		return fmt.Errorf("--gen-man: %w", err)
	}
	return nil
}

// daemonManSections is markdown (go-md2man turns "# X" into .SH X).
func daemonManSections() string {
	return "# SIGNALS\n" +
		"**SIGTERM**, **SIGINT**\n: stop: drop the VIPs first, stop the health checks, leave Raft and the API " +
		"(10 s for those), and exit 0. A shutdown that takes more than 25 s logs every goroutine's stack and exits 4.\n\n" +
		"**SIGHUP**\n: reload, never exit (**systemctl reload**): read the **--token-file** and **--read-token-file** files, " +
		"the **--tls-cert** and **--tls-key** files (checked as at start, against the CA read at start: a new CA needs a restart) " +
		"and the **--config** file (its **log-level** applies; flags on the command line still win) again. Everything is checked " +
		"before anything changes: bad new material (a token or key file that group or others may read included) changes nothing and is logged as an error naming the flag and the file. " +
		"A changed setting of the config file that needs a restart (addresses, node id, data dir, ...) is logged and ignored. " +
		"One line says what changed (**reloaded**, with **changed**) or **reloaded: nothing changed**. A new certificate serves " +
		"new connections; a changed cluster token is accepted beside the previous one, which the node keeps sending to the " +
		"others, until a reload finds the token unchanged (a rotation is two reloads of every node: see docs/security.md).\n\n" +
		"# SECRET FILES\n" +
		"**--token-file**, **--read-token-file** and **--tls-key** must be private to their owner: a file group or others may read or change " +
		"is refused at start and on reload, naming the flag, the file, its mode and the fix (**chmod 600** FILE). " +
		"Create them so: **(umask 077; head -c 32 /dev/urandom | base64 >/etc/ipvsman/token)**.\n\n" +
		"# PLAIN HTTP\n" +
		"Without the **--tls-*** flags a node refuses a **--join** or **--api-advertise** off loopback: every call between nodes carries " +
		"the cluster token, and it would cross the network in clear.\n\n" +
		"# FILES\n" +
		"*/var/lib/ipvsman*\n: the default **--data-dir**: the Raft log, snapshots, node identity and the VIPs this node held.\n\n" +
		"*/etc/ipvsman/token*\n: the shared cluster token the packaged unit passes with **--token-file**; the same on every node, mode 0600.\n\n" +
		"*/etc/ipvsman/checks*\n: the default **--check-dir**: the only programs exec health checks run, named by their name or path there. " +
		"It, the directories above it and each program must belong to root and not be writable by group or others; the package makes it 0755.\n\n" +
		"*/etc/ipvsman/tls/*\n: where the examples keep the node's certificate, its key and the cluster CA for **--tls-cert**, **--tls-key** and **--tls-ca** (made with **ipvsman tls init**; required off loopback).\n\n" +
		"*/etc/default/ipvsmand*\n: IPVSMAND_OPTS, the options the packaged systemd unit starts ipvsmand with.\n\n" +
		"*/etc/ipvsman/ipvsmand.conf*\n: where the examples keep a **--config** file (none by default; */usr/share/doc/ipvsman/examples/ipvsmand.conf* is one).\n\n" +
		"# EXIT STATUS\n" +
		"0 after a signal, 1 on an error (bad option, missing token, no IPVS in the kernel, a certificate of another node, a join the cluster refused), 4 when the shutdown hung.\n"
}

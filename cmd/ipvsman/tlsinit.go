package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/pki"
	"github.com/ipvsman/ipvsman/fsm"
)

func tlsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tls", Short: "Certificates for a TLS cluster (docs/security.md)"}
	var dir string
	var nodes []string
	var days int
	initCmd := &cobra.Command{
		Use:   "init --dir DIR --node NAME=IP[,IP...] [--node ...]",
		Short: "Make a small CA (unless DIR has one) and a certificate for each node",
		Long: `tls init makes what a cluster's TLS needs, for people starting out:
an ECDSA P-256 CA (DIR/ca.pem, DIR/ca-key.pem), unless DIR already holds one,
which is then reused, and for each --node NAME=IP[,IP...] a certificate and
key (DIR/NAME.pem, DIR/NAME-key.pem) for server and client use, valid for the
given IPs, loopback, "localhost" and NAME. Keys are written 0600; an existing
node certificate is never overwritten.

NAME is the node's ID, bound to the certificate (the URI SAN
spiffe://ipvsman/node/NAME): the node must run with --node-id NAME, and the
cluster lets it join and act only as NAME.

Nodes accept each other by chain to this CA, so whoever holds ca-key.pem
decides who may be a node: copy only ca.pem, NAME.pem and NAME-key.pem to
node NAME, and keep ca-key.pem elsewhere.`,
		Example: `  ipvsman tls init --dir ./tls --node d1=10.0.0.11 --node d2=10.0.0.12 --node d3=10.0.0.13
  ipvsman tls init --dir ./tls --node d4=10.0.0.14,fd00::14     # later: reuses the CA`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return tlsInit(c.OutOrStdout(), dir, nodes, days, time.Now())
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "", "directory for the CA and the certificates (created 0700 if missing)")
	initCmd.Flags().StringArrayVar(&nodes, "node", nil, "NAME=IP[,IP...]: a node certificate for node NAME (its --node-id, bound to the certificate) valid for these addresses; repeat for each node")
	initCmd.Flags().IntVar(&days, "days", pki.NodeDays, "validity of the node certificates in days (the CA: 10 years)")
	cmd.AddCommand(initCmd)
	return cmd
}

// nodeSpec is one --node NAME=IP[,IP...].
type nodeSpec struct {
	name string
	ips  []net.IP
}

func parseNodeSpec(s string) (nodeSpec, error) {
	name, list, ok := strings.Cut(s, "=")
	if !ok || list == "" {
		return nodeSpec{}, fmt.Errorf("--node %q: want NAME=IP[,IP...]", s)
	}
	if err := fsm.ValidateNodeID(name); err != nil {
		return nodeSpec{}, fmt.Errorf("--node %q: name: %w", s, err)
	}
	n := nodeSpec{name: name}
	for _, a := range strings.Split(list, ",") {
		ip := net.ParseIP(strings.TrimSpace(a))
		if ip == nil {
			return nodeSpec{}, fmt.Errorf("--node %q: %q is not an IP address", s, a)
		}
		n.ips = append(n.ips, ip)
	}
	return n, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tlsInit checks everything before writing anything, so that a refused
// run leaves DIR as it was.
func tlsInit(out io.Writer, dir string, nodes []string, days int, now time.Time) error {
	if dir == "" {
		return errors.New("--dir: missing")
	}
	if len(nodes) == 0 {
		return errors.New("--node: give at least one NAME=IP[,IP...]")
	}
	if days < 1 {
		return fmt.Errorf("--days %d: want 1 or more", days)
	}
	var specs []nodeSpec
	seen := map[string]bool{}
	for _, s := range nodes {
		n, err := parseNodeSpec(s)
		if err != nil {
			return err
		}
		if seen[n.name] {
			return fmt.Errorf("--node %q: node %s given twice", s, n.name)
		}
		seen[n.name] = true
		cert, key := pki.NodeFiles(dir, n.name)
		for _, p := range []string{cert, key} {
			if exists(p) {
				return fmt.Errorf("--node %s: %s already exists; not overwriting a node certificate (remove %s and %s first to make a new one)", n.name, p, cert, key)
			}
		}
		specs = append(specs, n)
	}
	caCert, caKey := pki.CAFiles(dir)
	var ca *pki.CA
	switch {
	case exists(caCert) && exists(caKey):
		var err error
		if ca, err = pki.LoadCA(caCert, caKey); err != nil {
			return fmt.Errorf("--dir %q: %w", dir, err)
		}
		fmt.Fprintf(out, "using the CA in %s (valid until %s)\n", caCert, ca.Cert.NotAfter.UTC().Format("2006-01-02"))
	case exists(caCert) || exists(caKey):
		return fmt.Errorf("--dir %q: has one of ca.pem and ca-key.pem but not the other; a node certificate needs the CA's key", dir)
	default:
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("--dir %q: %w", dir, err)
		}
		var err error
		if ca, err = pki.NewCA("ipvsman cluster CA", now, pki.CADays); err != nil {
			return err
		}
		kp, err := ca.KeyPEM()
		if err != nil {
			return err
		}
		if err := pki.WriteNew(caKey, kp, 0o600); err != nil {
			return err
		}
		if err := pki.WriteNew(caCert, ca.PEM, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (the CA, valid %d days)\nwrote %s (the CA's key: keep it off the directors)\n", caCert, pki.CADays, caKey)
	}
	for _, n := range specs {
		p, err := ca.Node(n.name, n.ips, now, days)
		if err != nil {
			return err
		}
		cert, key := pki.NodeFiles(dir, n.name)
		if err := pki.WriteNew(key, p.KeyPEM, 0o600); err != nil {
			return err
		}
		if err := pki.WriteNew(cert, p.CertPEM, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s and %s (node ID %s, as %s; %s, loopback; valid %d days)\n", cert, key, n.name, pki.NodeURI(n.name), ipList(n.ips), days)
	}
	fmt.Fprintf(out, "\nstart each node NAME with:\n  ipvsmand --node-id NAME --tls-cert %s --tls-key %s --tls-ca %s ...\n",
		filepath.Join(dir, "NAME.pem"), filepath.Join(dir, "NAME-key.pem"), caCert)
	fmt.Fprintf(out, "and the CLI with:\n  ipvsman --ca %s --api https://IP:7080 ...\n", caCert)
	return nil
}

func ipList(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}

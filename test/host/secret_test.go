package host

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// cliIn runs the ipvsman binary in network namespace ns ("" = this one).
func cliIn(t *testing.T, c *harness.Cluster, ns string, args ...string) harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, full := c.CLIBin, args
	if ns != "" {
		bin, full = "ip", append([]string{"netns", "exec", ns, c.CLIBin}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return harness.Result{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// TestIpvsmandRefusesSecretFilesOthersMayRead: ipvsmand does not start
// with a --token-file, a --read-token-file or a --tls-key that group or
// others may read, and says which file, its mode and the chmod; with the
// files 0600 it starts, and a reload that finds the token file readable
// again is refused: the daemon goes on with the token it had.
func TestIpvsmandRefusesSecretFilesOthersMayRead(t *testing.T) {
	c := harness.NewCluster(t)
	noRaces(t, c)
	c.UseTLS()
	n := c.Add("s1", "--gossip-profile", "local")
	readToken := filepath.Join(c.Dir, "read-token")
	if err := os.WriteFile(readToken, []byte("read-only-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := func(what, file, mode string, extra ...string) {
		t.Helper()
		n.Start(append([]string{"--bootstrap"}, extra...)...)
		if err := n.Wait(20 * time.Second); err == nil {
			t.Fatalf("%s %s: ipvsmand exited 0", what, mode)
		} else if strings.Contains(err.Error(), "still running") {
			n.Kill()
			t.Fatalf("%s %s: ipvsmand started", what, mode)
		}
		want := what + ` "` + file + `": mode ` + mode
		if lg := n.Log(); !strings.Contains(lg, want) || !strings.Contains(lg, "chmod 600 "+file) {
			t.Errorf("%s %s: the log does not say %q and chmod 600 %s: %s", what, mode, want, file, lastLine(lg))
		}
	}
	chmod := func(file string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
	}

	chmod(c.TokenFile, 0o644)
	refused("--token-file", c.TokenFile, "0644")
	chmod(c.TokenFile, 0o600)
	chmod(readToken, 0o640)
	refused("--read-token-file", readToken, "0640", "--read-token-file", readToken)
	chmod(readToken, 0o600)
	chmod(n.KeyFile, 0o644) // made by the first start
	refused("--tls-key", n.KeyFile, "0644")
	chmod(n.KeyFile, 0o600)

	n.Start("--bootstrap", "--read-token-file", readToken)
	if !n.Alive() {
		t.Fatalf("with every secret 0600 ipvsmand did not start: %s", lastLine(n.Log()))
	}
	chmod(c.TokenFile, 0o644)
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	want := `--token-file \"` + c.TokenFile + `\": mode 0644`
	harness.Eventually(t, 20*time.Second, "the refused reload in the log", func() (bool, string) {
		lg := n.Log()
		return strings.Contains(lg, "reload refused") && strings.Contains(lg, want), lastLine(lg)
	})
	if !n.Alive() {
		t.Fatal("ipvsmand exited on a reload with a token file others may read")
	}
	// The CLI would refuse the file now: the token goes on the command line.
	harness.Eventually(t, 30*time.Second, "s1 answers with the token it had", func() (bool, string) {
		r := cliIn(t, c, "", "--api", n.APIAddr, "--ca", c.CAFile(), "--token", c.Token(), "cluster", "status")
		return r.Err == nil && strings.Contains(r.Stdout, "Leader"), r.Stdout + r.Stderr
	})
}

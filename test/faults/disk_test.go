package faults

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/test/harness"
)

// TestDamagedDataDir restarts a follower on a damaged raft.db: truncated
// to half, and with the pages after its metadata overwritten, two
// scenarios of RUNS runs each.
// The node must refuse to start with an error that names the file and
// says how to recover, instead of joining the cluster with a bad log;
// wiped and started with --join, it copies the state and agrees again.
func TestDamagedDataDir(t *testing.T) {
	r := newRig(t, 3)
	damages := []struct {
		kind   string
		damage func(path string) error
	}{
		{"truncated", func(p string) error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()/2)
		}},
		{"overwritten", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			junk := make([]byte, 64<<10)
			rand.Read(junk)
			_, err = f.WriteAt(junk, 8192)
			return err
		}},
	}
	for i := 0; i < len(damages)*runs(); i++ {
		d := damages[i%len(damages)]
		w := r.begin("the damage")
		lead := r.leader()
		victim := others(r.nodes, lead)[0]
		r.crash(victim)
		if err := d.damage(filepath.Join(victim.DataDir, "raft.db")); err != nil {
			t.Fatal(err)
		}
		victim.Start()
		err := victim.Wait(30 * time.Second)
		log := victim.Log()
		if err == nil || !strings.Contains(log, "damaged raft store") || !strings.Contains(log, "--join") {
			t.Fatalf("%s raft.db: %s started or failed without naming the damage (exit %v):\n%s", d.kind, victim.ID, err, tail(log, 5))
		}
		t.Logf("%s raft.db: %s refused to start: %v: %s", d.kind, victim.ID, err, lastLine(log, "damaged raft store"))
		r.progress(w, 10, "with "+victim.ID+" refusing")
		if err := os.RemoveAll(victim.DataDir); err != nil {
			t.Fatal(err)
		}
		victim.Start("--join", r.leader().APIAddr)
		r.finish("damaged data dir ("+d.kind+")", w, time.Now())
	}
}

// TestDiskFull fills the filesystem under the leader's data dir (a small
// tmpfs mounted there) while writes flow, RUNS times, leadership handed
// back to that node before each: the leader cannot store its log and must
// stop acknowledging, another leads, nothing acknowledged is lost; with
// space back, the node catches up.
func TestDiskFull(t *testing.T) {
	r := newRig(t, 3)
	lead := r.leader()
	// Move the leader's data onto a tmpfs of its own, the node stopped.
	lead.Stop()
	moved := t.TempDir()
	mustRun(t, "cp", "-a", lead.DataDir+"/.", moved)
	mustRun(t, "mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", lead.DataDir)
	t.Cleanup(func() {
		if lead.Running() {
			lead.Kill()
		}
		_ = exec.Command("umount", "-l", lead.DataDir).Run()
	})
	mustRun(t, "cp", "-a", moved+"/.", lead.DataDir)
	lead.Start()
	r.waitVIPOnLeader()
	for range runs() {
		r.fillDisk(lead)
	}
}

// fillDisk is one run of TestDiskFull against lead, the node on the
// tmpfs: the run's window opens before the transfer that makes it leader
// again, so that the transfer's VIP move is judged with the rest.
func (r *rig) fillDisk(lead *harness.Node) {
	t := r.t
	t.Helper()
	r.start = time.Now()
	if now := r.leader(); now != lead {
		r.c.MustCLI(now, "", "cluster", "transfer", lead.ID)
	}
	logFrom := len(lead.Log())
	w := r.startWriter()
	r.progress(w, 10, "before the disk fills")

	filler := filepath.Join(lead.DataDir, "filler")
	var st unix.Statfs_t
	if err := unix.Statfs(lead.DataDir, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filler, make([]byte, st.Bavail*uint64(st.Bsize)), 0o600); err != nil && !strings.Contains(err.Error(), "no space") {
		t.Fatal(err)
	}
	t.Logf("%s: filled %s with %d bytes", lead.ID, lead.DataDir, st.Bavail*uint64(st.Bsize))
	r.progress(w, 20, "with "+lead.ID+"'s disk full")
	if log := lead.Log()[logFrom:]; !strings.Contains(log, "no space left on device") {
		t.Errorf("%s never met the full disk: its log has no \"no space left on device\"", lead.ID)
	} else {
		t.Logf("%s: %s", lead.ID, lastLine(log, "no space left on device"))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r.finish("disk full", w, time.Now())
}

// TestClockStepped steps the wall clock ten minutes forward and back
// while writes flow. Every node here shares the host's kernel and so its
// clock: the step hits all of them at once, which the one-node case is a
// part of. Raft, gossip and the leases time with the monotonic clock; the
// test shows nothing else depends on the wall clock's continuity.
func TestClockStepped(t *testing.T) {
	r := newRig(t, 3)
	step := 10 * time.Minute
	stepped := false
	t.Cleanup(func() {
		if stepped {
			stepClock(t, -step)
		}
	})
	for range runs() {
		w := r.begin("the step")
		stepClock(t, step)
		stepped = true
		r.progress(w, 20, "after stepping the clock forward")
		stepClock(t, -step)
		stepped = false
		r.progress(w, 20, "after stepping it back")
		r.finish("clock stepped", w, time.Now())
	}
}

// stepClock moves CLOCK_REALTIME by d at once, as a wrong NTP server or
// an operator's date -s would.
func stepClock(t *testing.T, d time.Duration) {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		t.Fatal(err)
	}
	ts = unix.NsecToTimespec(ts.Nano() + d.Nanoseconds())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		t.Fatalf("step the clock by %s: %v", d, err)
	}
	t.Logf("clock stepped by %s", d)
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func lastLine(log, substr string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

//go:build lab && labbench

package lab

// How bench-scale reads the directors' kernels and reaches their APIs: from
// this process, through netlink and TCP sockets opened inside each
// namespace (a socket stays in the namespace it was made in), so that a
// poll costs a system call, not a process start (0.1-0.3 s under
// emulation).

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// scKernel is one director's kernel: the reconciler's own netlink dump
// (Read: one request per service, seconds for thousands under emulation)
// for whole tables, and a bare connection for the service list and one
// service's destinations. /proc/net/ip_vs would be one read, but the
// kernel lists it a page at a time, resuming by position, and in the lab
// VM it came back short (29 or 3 of 50 services) while netlink listed all.
type scKernel struct {
	name  string
	table *director.Netlink
	conn  *ipvsnl.Conn
}

func scOpenKernel(t *testing.T, name, ns string) *scKernel {
	t.Helper()
	k := &scKernel{name: name}
	err := harness.InNamespace(ns, func() (err error) {
		if k.table, err = director.NewNetlink(); err != nil {
			return err
		}
		k.conn, err = ipvsnl.Dial()
		return err
	})
	if err != nil {
		t.Fatalf("kernel of %s: %v", ns, err)
	}
	t.Cleanup(func() {
		k.table.Close()
		k.conn.Close()
	})
	return k
}

// weight is the kernel's weight of server in svc; -1 when it holds no such
// destination.
func (k *scKernel) weight(svc fsm.ServiceKey, server string) (int, error) {
	ds, err := k.conn.Dests(ipvsnl.Service{Family: ipvsnl.AFInet, Protocol: syscall.IPPROTO_TCP, Addr: svc.Address, Port: svc.Port})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", k.name, err)
	}
	for _, d := range ds {
		if d.String() == server {
			return int(d.Weight), nil
		}
	}
	return -1, nil
}

// scDiff names the first difference between a kernel table and the
// model's in what both tools program (services, their scheduler, each
// destination's presence, forwarding method and weight), or "" when there
// is none. keepalived's tables are compared this way; ipvsman's also by
// fingerprint.
func scDiff(got, want director.Table) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d services, want %d", len(got), len(want))
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		w, g := want[k], got[k]
		if g.Dests == nil && len(w.Dests) > 0 {
			return k + ": missing"
		}
		if g.Scheduler != w.Scheduler || len(g.Dests) != len(w.Dests) {
			return fmt.Sprintf("%s: %s with %d destinations, want %s with %d", k, g.Scheduler, len(g.Dests), w.Scheduler, len(w.Dests))
		}
		for dk, wd := range w.Dests {
			gd, ok := g.Dests[dk]
			if !ok || gd.Forward != wd.Forward || gd.Weight != wd.Weight {
				return fmt.Sprintf("%s %s: %+v (present %v), want %+v", k, dk, gd, ok, wd)
			}
		}
	}
	return ""
}

// holds dumps k's whole table and says what differs from want ("" when
// nothing): by fingerprint too when exact (ipvsman's tables; keepalived
// programs what it programs its own way, e.g. flags).
func (k *scKernel) holds(want director.Table, exact bool) (string, error) {
	got, err := k.table.Read()
	if err != nil {
		return "", fmt.Errorf("%s: %w", k.name, err)
	}
	if d := scDiff(got, want); d != "" {
		return d, nil
	}
	if exact && got.Fingerprint() != want.Fingerprint() {
		return fmt.Sprintf("fingerprint %s, want %s", got.Fingerprint(), want.Fingerprint()), nil
	}
	return "", nil
}

// scWaitAll polls every kernel until it holds want, from start on, and
// returns when each did (the end of its first matching dump) and how long
// the dumps took. Each poll first counts services, cheaply: whole dumps
// are read only once the count is right.
func scWaitAll(t *testing.T, ks []*scKernel, want director.Table, exact bool, start time.Time, timeout time.Duration, alive func() error) (held, dumps []time.Duration) {
	t.Helper()
	held = make([]time.Duration, len(ks))
	done := make([]bool, len(ks))
	left := len(ks)
	var why []string
	for deadline := start.Add(timeout); left > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the kernels do not hold the configuration within %s: %s", timeout, strings.Join(why, "; "))
		}
		if err := alive(); err != nil {
			t.Fatal(err)
		}
		why = why[:0]
		for i, k := range ks {
			if done[i] {
				continue
			}
			svcs, err := k.conn.Services()
			if err != nil {
				t.Fatal(err)
			}
			if len(svcs) != len(want) {
				why = append(why, fmt.Sprintf("%s: %d services", k.name, len(svcs)))
				continue
			}
			d0 := time.Now()
			diff, err := k.holds(want, exact)
			if err != nil {
				t.Fatal(err)
			}
			dumps = append(dumps, time.Since(d0))
			if diff != "" {
				why = append(why, k.name+": "+diff)
				continue
			}
			held[i], done[i] = time.Since(start), true
			left--
		}
		time.Sleep(100 * time.Millisecond)
	}
	return held, dumps
}

// scWaitWeight polls the kernels every pause until each holds weight for
// server in svc, and returns when each first did, from start.
func scWaitWeight(ks []*scKernel, svc fsm.ServiceKey, server string, weight int, start time.Time, pause, timeout time.Duration) ([]time.Duration, error) {
	held := make([]time.Duration, len(ks))
	left := len(ks)
	for deadline := time.Now().Add(timeout); ; {
		for i, k := range ks {
			if held[i] != 0 {
				continue
			}
			w, err := k.weight(svc, server)
			if err != nil {
				return nil, err
			}
			if w == weight {
				held[i] = max(time.Since(start), time.Nanosecond) // 0 is "not yet"
				left--
			}
		}
		if left == 0 {
			return held, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s of %s: weight %d not in every kernel within %s (held: %v)", server, svc, weight, timeout, held)
		}
		time.Sleep(pause)
	}
}

// scAPI is an API client for node whose connections are made inside the
// client's namespace: the writes go the way the CLI's would, without a
// process start before each.
func scAPI(c *harness.Cluster, node *harness.Node, ns string) *api.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := harness.InNamespace(ns, func() (err error) {
			var d net.Dialer
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	tr := &http.Transport{DialContext: dial, TLSClientConfig: c.ClientTLS(), MaxIdleConnsPerHost: 2}
	return &api.Client{Base: c.BaseURL(node), Token: c.Token(), Actor: "bench-scale", HTTP: &http.Client{Transport: tr}}
}

// newMetricsRequest asks cl's node for the named series of /metrics only.
func newMetricsRequest(ctx context.Context, cl *api.Client, names ...string) (*http.Request, error) {
	q := url.Values{"name[]": names}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cl.URL()+"/metrics?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("metrics request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+cl.Token)
	return req, nil
}

func parseMetrics(t *testing.T, node string, r io.Reader) promScrape {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("%s /metrics: %v", node, err)
	}
	return mfs
}

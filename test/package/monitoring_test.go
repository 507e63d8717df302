package packagetest

// The monitoring examples (examples/monitoring/) are what a monitoring team
// loads as they are: alert rules with their unit tests, and a Grafana
// dashboard. They are checked by Prometheus' own promtool, since only the
// real parser and rule evaluator can say that an expression means what it
// should, and against docs/metrics.md, since a renamed series leaves a rule
// or a panel silently empty rather than failing anywhere else.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ipvsman/ipvsman/test/skip"
)

const (
	monitoringDir = examplesDir + "/monitoring"
	alertsFile    = "ipvsman-alerts.yml"
	alertTests    = "ipvsman-alerts.test.yml"
	dashboardFile = "ipvsman-dashboard.json"
	metricsDoc    = "../../docs/metrics.md"
)

// promtool finds Debian's promtool (package prometheus, which .ci/run
// installs); without it the rules would go unchecked, so CI fails.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		skip.Now(t, "promtool not installed (Debian: apt-get install prometheus)")
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

// TestAlertRulesPassPromtool: the rules load (check rules) and behave as
// their unit tests expect, alert by alert, labels and rendered annotations
// included (test rules).
func TestAlertRulesPassPromtool(t *testing.T) {
	runPromtool(t, monitoringDir, "check", "rules", alertsFile)
	runPromtool(t, monitoringDir, "test", "rules", alertTests)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	readYAML(t, filepath.Join(monitoringDir, alertsFile), &rf)
	if len(rf.Groups) == 0 {
		t.Fatalf("%s: no rule groups", alertsFile)
	}
	return rf
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestAlertRulesAreComplete: every rule is an alert an on-call engineer can
// act on (a pending period, a severity to route by, a summary and a
// description), the alerts the monitoring teams asked for are there, and
// each one has a unit test where it fires and one where it stays silent: a
// rule tested only for firing may fire on a healthy cluster, one tested only
// for silence may never fire.
func TestAlertRulesAreComplete(t *testing.T) {
	rf := readRules(t)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name (record %q): the file is for alerts", g.Name, r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			if r.For == "" {
				t.Errorf("%s: no for: one bad scrape would page", r.Alert)
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
		}
	}
	for _, want := range []string{
		"IpvsmanScrapeDown", "IpvsmanNoLeader", "IpvsmanKernelTablesDiffer", "IpvsmanVIPHeldByNone",
		"IpvsmanVIPHeldByMany", "IpvsmanRealServersDown", "IpvsmanServiceAllRealServersDown",
		"IpvsmanSyncUnavailable", "IpvsmanSyncMasterNotRunning", "IpvsmanReconcileFailing",
	} {
		if !slices.Contains(alerts, want) {
			t.Errorf("%s: no alert %s", alertsFile, want)
		}
	}

	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name  string `yaml:"name"`
			Cases []struct {
				Alert string `yaml:"alertname"`
				Exp   []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(monitoringDir, alertTests), &tf)
	if !slices.Equal(tf.RuleFiles, []string{alertsFile}) {
		t.Errorf("%s tests %v, want [%s]", alertTests, tf.RuleFiles, alertsFile)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tg := range tf.Tests {
		for _, c := range tg.Cases {
			if !slices.Contains(alerts, c.Alert) {
				t.Errorf("%s, %q: alert %s is not in %s", alertTests, tg.Name, c.Alert, alertsFile)
			}
			if len(c.Exp) > 0 {
				fires[c.Alert] = true
			} else {
				silent[c.Alert] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("%s: no test where %s fires", alertTests, a)
		}
		if !silent[a] {
			t.Errorf("%s: no test where %s stays silent", alertTests, a)
		}
	}
}

type dashboard struct {
	Title       string  `json:"title"`
	UID         string  `json:"uid"`
	Panels      []panel `json:"panels"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int     `json:"id"`
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Datasource *source `json:"datasource"`
	Targets    []struct {
		RefID      string  `json:"refId"`
		Expr       string  `json:"expr"`
		Datasource *source `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type source struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// query is one PromQL expression of the dashboard and where it is.
type query struct{ where, expr string }

func readDashboard(t *testing.T) []query {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(monitoringDir, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: title %q, uid %q: Grafana needs both to import it once", dashboardFile, d.Title, d.UID)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Contains(vars, "datasource") || !slices.Contains(vars, "job") {
		t.Errorf("%s: variables %v, want datasource and job", dashboardFile, vars)
	}
	var qs []query
	ids := map[int]string{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d: Grafana keeps one", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Title == "" {
				t.Errorf("panel %d: no title", p.ID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q: no query", p.Title)
			}
			for _, tg := range p.Targets {
				ds := tg.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
					t.Errorf("panel %q %s: datasource %+v, want prometheus ${datasource} (the import asks for it)", p.Title, tg.RefID, ds)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q %s: empty expression", p.Title, tg.RefID)
				}
				qs = append(qs, query{fmt.Sprintf("panel %d %q %s", p.ID, p.Title, tg.RefID), tg.Expr})
			}
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			qs = append(qs, query{fmt.Sprintf("annotation %q", a.Name), a.Expr})
		}
	}
	if len(qs) < 20 {
		t.Fatalf("%s: %d queries: the dashboard lost its panels", dashboardFile, len(qs))
	}
	return qs
}

// grafanaVars are the dashboard's variables and Grafana's own, as a query
// would be sent with them.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h", "${job}", "ipvsman", "$job", "ipvsman")

// TestDashboardQueriesParse: every query of the dashboard, its variables
// filled in as Grafana would, is a PromQL expression Prometheus' parser
// takes. promtool parses expressions only as rules (its query commands need
// a server), so they are checked as recording rules.
func TestDashboardQueriesParse(t *testing.T) {
	qs := readDashboard(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		expr := grafanaVars.Replace(q.expr)
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a variable the test does not know: %s", q.where, q.expr)
			continue
		}
		e, err := json.Marshal(expr) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "      # %s\n      - record: dashboard:query_%d\n        expr: %s\n", q.where, i, e)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard-rules.yml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "dashboard-rules.yml")
}

// documented reads docs/metrics.md's tables: each series and its labels.
func documented(t *testing.T) (series map[string][]string, types map[string]string) {
	t.Helper()
	data, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| ([a-z]+) \\|([^|]*)\\|")
	tick := regexp.MustCompile("`([^`]+)`")
	ident := regexp.MustCompile(`^[a-z_]+$`)
	series, types = map[string][]string{}, map[string]string{}
	var last []string
	for _, line := range strings.Split(string(data), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		col := m[3]
		var labels []string
		if strings.TrimSpace(col) == "same" {
			labels = last
		} else {
			// "`verdict` = `up`, `down`": the values after "=" are no labels.
			names := col
			if i := strings.Index(col, "="); i >= 0 {
				names = col[:i]
			}
			for _, tm := range tick.FindAllStringSubmatch(names, -1) {
				if ident.MatchString(tm[1]) {
					labels = append(labels, tm[1])
				}
			}
		}
		series[m[1]], types[m[1]], last = labels, m[2], labels
	}
	if len(series) < 50 {
		t.Fatalf("%s: %d series in its tables: the table format changed and this test with it", metricsDoc, len(series))
	}
	return series, types
}

var (
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	seriesRef = regexp.MustCompile(`\b((?:ipvsman|node_ipvs)_[a-z0-9_]+)\b(\{[^}]*\})?`)
	grouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	matcher   = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// TestMonitoringUsesDocumentedSeries: every series the rules and the
// dashboard name is in docs/metrics.md, and so is every label they select,
// group or match by (beside Prometheus' job, instance and le). A series that
// does not exist makes a rule that never fires and a panel that stays
// empty, which nothing else would notice.
func TestMonitoringUsesDocumentedSeries(t *testing.T) {
	series, types := documented(t)
	all := map[string]bool{"job": true, "instance": true, "le": true}
	for _, ls := range series {
		for _, l := range ls {
			all[l] = true
		}
	}
	var qs []query
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"alert " + r.Alert, r.Expr})
		}
	}
	qs = append(qs, readDashboard(t)...)

	used := map[string]bool{}
	for _, q := range qs {
		for _, m := range seriesRef.FindAllStringSubmatch(q.expr, -1) {
			name := m[1]
			if _, ok := series[name]; !ok {
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					base = strings.TrimSuffix(base, suffix)
				}
				if types[base] != "histogram" {
					t.Errorf("%s: %s is not in %s", q.where, name, metricsDoc)
					continue
				}
				name = base
			}
			used[name] = true
			if m[2] == "" {
				continue
			}
			for _, sel := range strings.Split(quoted.ReplaceAllString(strings.Trim(m[2], "{}"), `""`), ",") {
				if strings.TrimSpace(sel) == "" {
					continue
				}
				lm := matcher.FindStringSubmatch(sel)
				if lm == nil {
					t.Errorf("%s: cannot read the matcher %q", q.where, sel)
					continue
				}
				if l := lm[1]; l != "job" && l != "instance" && l != "le" && !slices.Contains(series[name], l) {
					t.Errorf("%s: %s has no label %s in %s (its labels: %v)", q.where, name, l, metricsDoc, series[name])
				}
			}
		}
		// Label values ("down", "Leader") are no label names.
		for _, m := range grouping.FindAllStringSubmatch(quoted.ReplaceAllString(q.expr, `""`), -1) {
			for _, l := range strings.Split(m[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !all[l] {
					t.Errorf("%s: label %s is not in %s", q.where, l, metricsDoc)
				}
			}
		}
	}
	// The check above passes on files that name nothing; these are the
	// series each part of the monitoring stands on.
	for _, want := range []string{
		"ipvsman_leader", "ipvsman_raft_term", "ipvsman_vip_held", "ipvsman_health_verdict",
		"ipvsman_service_connections_total", "ipvsman_backend_connections_total", "node_ipvs_backend_weight",
		"node_ipvs_backend_connections_active", "ipvsman_reconcile_duration_seconds", "ipvsman_reconcile_last_failed_ops",
		"ipvsman_resync_cpu_seconds_total", "ipvsman_resync_round_seconds", "ipvsman_sync_daemon_running", "ipvsman_info",
	} {
		if !used[want] {
			t.Errorf("neither the rules nor the dashboard use %s", want)
		}
	}
}

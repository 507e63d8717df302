package migrate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestGolden")

// goldens are realistic inputs: each imports to testdata/FILE.golden.yaml
// (the topology, as `ipvsman import --dry-run` prints it) and
// testdata/FILE.unmapped (the items not imported, one per line).
var goldens = []struct {
	format Format
	file   string
}{
	{Keepalived, "keepalived/web/keepalived.conf"},
	{Keepalived, "keepalived/group.conf"},
	{Ldirectord, "ldirectord/web.cf"},
	{Ldirectord, "ldirectord/mail.cf"},
	{Ipvsadm, "ipvsadm/save.txt"},
}

func TestGolden(t *testing.T) {
	fsys := os.DirFS("testdata")
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", g.file))
			if err != nil {
				t.Fatal(err)
			}
			if f, err := Detect(g.file, data); err != nil || f != g.format {
				t.Errorf("Detect = %q, %v; want %q", f, err, g.format)
			}
			res, err := Import(g.format, g.file, data, Options{FS: fsys})
			if err != nil {
				t.Fatal(err)
			}
			y, err := topology.MarshalYAML(res.Config)
			if err != nil {
				t.Fatal(err)
			}
			var items strings.Builder
			for _, it := range res.Unmapped {
				items.WriteString(it.String() + "\n")
			}
			golden(t, filepath.Join("testdata", g.file+".golden.yaml"), string(y))
			golden(t, filepath.Join("testdata", g.file+".unmapped"), items.String())
			// What the dry run prints must load back as the same config.
			back, err := topology.Parse("x.yaml", y)
			if err != nil {
				t.Fatalf("golden YAML does not load: %v", err)
			}
			if d := fsm.DiffConfig(res.Config, back); len(d) != 0 {
				t.Errorf("YAML round trip changed the config: %q", d)
			}
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       Format
	}{
		{"/etc/keepalived/keepalived.conf", "", Keepalived},
		{"/etc/ha.d/ldirectord.cf", "", Ldirectord},
		{"rules", "# saved\n-A -t 10.0.0.1:80 -s wlc\n", Ipvsadm},
		{"rules", "ipvsadm -A -f 1 -s rr\n", Ipvsadm},
		{"lb.cf", "checkinterval=5\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n", Ldirectord},
		{"lb.conf", "! x\nvirtual_server 10.0.0.1 80 {\n}\n", Keepalived},
		{"lb.conf", "foo {\n}\n", Keepalived},
	} {
		got, err := Detect(tc.name, []byte(tc.data))
		if err != nil || got != tc.want {
			t.Errorf("Detect(%q, %q) = %q, %v; want %q", tc.name, tc.data, got, err, tc.want)
		}
	}
	if _, err := Detect("-", []byte("hello world\n")); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Errorf("Detect of prose: %v; want an error naming --from", err)
	}
}

// TestKeepalivedIncludes: relative includes follow the including file's
// directory, nested includes too; cycles and missing files are listed.
func TestKeepalivedIncludes(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/keepalived/keepalived.conf":   {Data: []byte("include conf.d/*.conf\ninclude /etc/keepalived/self.conf\n")},
		"etc/keepalived/self.conf":         {Data: []byte("include self.conf\n")},
		"etc/keepalived/conf.d/a.conf":     {Data: []byte("include ../more/b.conf\n")},
		"etc/keepalived/more/b.conf":       {Data: []byte("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n")},
		"etc/keepalived/conf.d/z.conf.bak": {Data: []byte("garbage {")},
	}
	data := fsys["etc/keepalived/keepalived.conf"].Data
	res, err := FromKeepalived("/etc/keepalived/keepalived.conf", data, Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Config.Services["tcp:10.0.0.1:80"]; !ok {
		t.Errorf("nested include not read: %v", res.Config.SortedServiceKeys())
	}
	var got []string
	for _, it := range res.Unmapped {
		got = append(got, it.String())
	}
	want := []string{"/etc/keepalived/self.conf:1: include self.conf: /etc/keepalived/self.conf: includes itself: not included again"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	res, err = FromKeepalived("-", []byte("include x.conf\n"), Options{})
	if err != nil || len(res.Unmapped) != 1 || !strings.Contains(res.Unmapped[0].Reason, "standard input") {
		t.Errorf("include without FS: %v %v", res, err)
	}
}

// TestKeepalivedLexer: quoting, comments anywhere, braces glued to words
// and a block opened on the next line.
func TestKeepalivedLexer(t *testing.T) {
	b := newBuilder()
	r := &kaReader{b: b}
	src := "a 'b c'\"d\" #x\nblk{x \"{\" !c\n}\nnext\n{\n y\n}\n}"
	nodes := r.tree(r.lex("f", "f", []byte(src), 0, nil))
	if len(nodes) != 3 {
		t.Fatalf("got %d statements, want 3", len(nodes))
	}
	if w := nodes[0].words; len(w) != 2 || w[1] != "b cd" {
		t.Errorf("quoting: %q", w)
	}
	if n := nodes[1]; !n.block || n.key() != "blk" || len(n.children) != 1 || n.children[0].value() != "{" {
		t.Errorf("glued brace: %+v", n)
	}
	if n := nodes[2]; !n.block || n.key() != "next" || len(n.children) != 1 {
		t.Errorf("brace on next line: %+v", n)
	}
	if len(b.items) != 1 || b.items[0].Keyword != "}" {
		t.Errorf("stray brace: %v", b.items)
	}
}

// TestExamples: the samples in examples/import convert, with their
// includes, and every service keeps its real servers.
func TestExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "import")
	for _, f := range []string{"keepalived.conf", "ldirectord.cf"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		format, err := Detect(f, data)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Import(format, f, data, Options{FS: os.DirFS(dir)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Config.Services) < 3 {
			t.Errorf("%s: %d services, want 3 or more", f, len(res.Config.Services))
		}
		for k, s := range res.Config.Services {
			if len(s.Servers) == 0 {
				t.Errorf("%s: service %s lost its servers", f, k)
			}
		}
	}
}

package migrate

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/ipvsman/ipvsman/fsm"
)

// fuzzCheck: whatever the input, no panic, and a returned config
// validates and every item names a line.
func fuzzCheck(t *testing.T, res *Result, err error) {
	if err != nil {
		t.Fatalf("import failed instead of listing: %v", err)
	}
	if verr := fsm.ValidateConfig(res.Config); verr != nil {
		t.Fatalf("imported config does not validate: %v", verr)
	}
	for _, it := range res.Unmapped {
		if it.Reason == "" {
			t.Fatalf("item without a reason: %+v", it)
		}
	}
}

func seed(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
	more, _ := filepath.Glob(filepath.Join("testdata", dir, "*", "*"))
	for _, p := range append(files, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzKeepalived(f *testing.F) {
	seed(f, "keepalived")
	f.Add([]byte("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 { weight 1 }\n}\ninclude a.conf\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The input may include itself and a second file that includes it.
		fsys := fstest.MapFS{"k.conf": {Data: data}, "a.conf": {Data: []byte("include k.conf\n")}}
		res, err := FromKeepalived("k.conf", data, Options{FS: fsys})
		fuzzCheck(t, res, err)
	})
}

func FuzzLdirectord(f *testing.F) {
	seed(f, "ldirectord")
	f.Add([]byte("virtual=10.0.0.1:80\n\treal=10.0.0.2->10.0.0.9:80 gate 3 \"/\", \"ok\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := FromLdirectord("l.cf", data)
		fuzzCheck(t, res, err)
	})
}

func FuzzIpvsadm(f *testing.F) {
	seed(f, "ipvsadm")
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := FromIpvsadm("s", data)
		fuzzCheck(t, res, err)
	})
}

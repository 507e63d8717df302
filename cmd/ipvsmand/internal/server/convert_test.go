package server

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/health"
	"github.com/ipvsman/ipvsman/vip"
)

// fill sets every field of v (a pointer) to a value that is not zero, so
// that omitempty hides nothing and every field's name shows in the JSON.
func fill(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem())
	case reflect.Struct:
		switch v.Interface().(type) {
		case time.Time:
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)))
			return
		case netip.AddrPort:
			v.Set(reflect.ValueOf(netip.MustParseAddrPort("10.0.0.1:80")))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i))
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i))
		}
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	default:
		t.Fatalf("fill: %s: add its kind", v.Type())
	}
}

func encode(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The wire mirrors in cluster/api must encode exactly as the node's own
// types did before they had mirrors, so that the API does not change.
func TestWireMirrorsEncodeAlike(t *testing.T) {
	var st cluster.Status
	var rep director.Report
	var syn director.SyncReport
	var conn director.Conn
	var chk health.Status
	var vs vip.Stats
	for _, p := range []any{&st, &rep, &syn, &conn, &chk, &vs} {
		fill(t, reflect.ValueOf(p).Elem())
	}
	for _, c := range []struct {
		name      string
		node, api any
	}{
		{"status", st, wireStatus(st)},
		{"report", rep, wireReport(&rep)},
		{"sync", syn, wireSync(&syn)},
		{"connections", []director.Conn{conn}, wireConns([]director.Conn{conn})},
		{"checks", []health.Status{chk}, wireChecks([]health.Status{chk})},
		{"vips", vs, wireVIPs(vs)},
	} {
		if got, want := encode(t, c.api), encode(t, c.node); got != want {
			t.Errorf("%s: the wire type encodes as\n%s\nthe node's as\n%s", c.name, got, want)
		}
	}
}

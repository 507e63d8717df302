package fsm

import "testing"

func TestEveryOpKindHasAHandler(t *testing.T) {
	kinds := []OpKind{
		OpAddService, OpEditService, OpDeleteService, OpAddServer, OpEditServer, OpDeleteServer,
		OpClear, OpSetTimeouts, OpSetState, OpSetCheck, OpClearCheck, OpSetSync, OpSetQuorum,
	}
	for _, k := range kinds {
		if opHandlers[k] == nil {
			t.Errorf("op kind %q: no handler", k)
		}
	}
	if len(opHandlers) != len(kinds) {
		t.Errorf("%d handlers for %d kinds", len(opHandlers), len(kinds))
	}
}

// An unknown kind names the service first: a rejected command's error is
// recorded in the log's results, so its wording must not change.
func TestUnknownOpKind(t *testing.T) {
	c, err := ApplyOps(NewConfig(), []Op{addSvc(web, "rr")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  ServiceKey
		want string
	}{
		{dns, "service " + dns.String() + ": no such service"},
		{web, `op kind "bogus": unknown`},
	} {
		_, err := ApplyOps(c, []Op{{Kind: "bogus", ServiceKey: tc.key}})
		if err == nil || err.Error() != tc.want {
			t.Errorf("bogus op on %s: %v, want %q", tc.key, err, tc.want)
		}
	}
}

package fsm

import "testing"

func TestActorCanonicalForm(t *testing.T) {
	for _, tc := range []struct {
		a    Actor
		want string
	}{
		{Actor{Principal: PrincipalAdminToken}, "admin-token"},
		{Actor{Principal: PrincipalAdminToken, Claim: "alice@prod-admin"}, "admin-token (claimed alice@prod-admin)"},
		{Actor{Principal: NodeCertPrincipal("d2"), Claim: "ipvsmand@d4"}, "node-cert:d2 (claimed ipvsmand@d4)"},
		{Actor{Principal: PrincipalNodeKey, Claim: "x) (claimed y"}, "node-key (claimed x) (claimed y)"},
		// The log holds only printable text, whatever the claim.
		{Actor{Principal: PrincipalAdminToken, Claim: "mallory\u202e\x9b\xff\tx"}, `admin-token (claimed mallory\u202e\x9b\xff\tx)`},
	} {
		got := tc.a.String()
		if got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.a, got, tc.want)
			continue
		}
		back, ok := ParseActor(got)
		if !ok || back.Principal != tc.a.Principal {
			t.Errorf("ParseActor(%q) = %+v, %v", got, back, ok)
		}
	}
	if a, ok := ParseActor("admin-token (claimed x) (claimed y)"); !ok || a.Claim != "x) (claimed y" {
		t.Errorf("a claim that repeats the mark: %+v %v", a, ok)
	}
	// The leader's own actors, and those recorded before principals were,
	// name no principal.
	for _, s := range []string{"ipvsmand@n1", "alice@host", "node-cert:bad name", "", "admin-token (claimed x"} {
		if a, ok := ParseActor(s); ok {
			t.Errorf("ParseActor(%q) = %+v, want no principal", s, a)
		}
	}
	if NodeCertPrincipal("bad name") != "node-cert" {
		t.Error("a certificate name that is no node ID is left out")
	}
	if err := ValidatePrincipal("alice\u202e"); err == nil || err.Error() != `principal "alice\u202e": want admin-token, read-token, node-key or node-cert:NODE` {
		t.Errorf("ValidatePrincipal: %v", err)
	}
}

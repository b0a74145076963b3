package approval_test

import (
	"testing"

	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/authn"
)

// The public function never falls back to the claims-only Cloud Run verifier.
func TestPublicVerifier(t *testing.T) {
	d := &app.Deps{Config: app.Config{AuthMode: "cloudrun"}, Auth: authn.CloudRun{}}
	if err := approval.PublicVerifier(d, ""); err == nil {
		t.Fatal("no AUTH_AUDIENCE accepted")
	}
	d.Config.Audience = "https://approval.example"
	if err := approval.PublicVerifier(d, "/projects/1/global/backendServices/2"); err != nil {
		t.Fatal(err)
	}
	vs, ok := d.Auth.(authn.AnyOf)
	if !ok || len(vs) != 2 {
		t.Fatalf("verifier %T %v", d.Auth, d.Auth)
	}
	if _, ok := vs[0].(authn.IAP); !ok {
		t.Errorf("first verifier %T, want IAP", vs[0])
	}
	if g, ok := vs[1].(authn.GoogleIDToken); !ok || g.Audience != "https://approval.example" {
		t.Errorf("second verifier %T %v", vs[1], vs[1])
	}
	for _, v := range vs {
		if _, bad := v.(authn.CloudRun); bad {
			t.Fatal("CloudRun verifier on a public function")
		}
	}
	local := &app.Deps{Config: app.Config{AuthMode: "local"}, Auth: authn.Local{}}
	if err := approval.PublicVerifier(local, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := local.Auth.(authn.Local); !ok {
		t.Fatal("local mode lost its verifier")
	}
}

package app_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/authn/authntest"
	"airlock.dev/airlock/shared/httpapi"
)

const fnURL = "https://europe-west1-airlock.cloudfunctions.net/ExecuteQuery"

func req(headers ...string) *http.Request {
	r := httptest.NewRequest("POST", "/", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// The verifier a deployed function gets from its configuration, exercised with tokens
// signed by the fake Google and checked by the real idtoken client.
func TestVerifier(t *testing.T) {
	g := authntest.New(t)
	mine := g.IDToken(t, "dev1@example.com", fnURL)
	forged := authntest.Forge(authntest.Claims("lead1@example.com", fnURL), "")
	tcs := []struct {
		desc    string
		cfg     app.Config
		public  bool
		headers []string
		want    string // accepted as, or "" for refused
	}{
		{desc: "AUTH_MODE unset: Cloud Run's stripped token", cfg: app.Config{}, headers: []string{"Authorization", "Bearer " + authntest.Strip(mine)}, want: "dev1@example.com"},
		{desc: "AUTH_MODE unset: a signed token is verified by idtoken", cfg: app.Config{}, headers: []string{"X-Serverless-Authorization", "Bearer " + mine}, want: "dev1@example.com"},
		{desc: "AUTH_MODE unset: two identities", cfg: app.Config{}, headers: []string{"X-Serverless-Authorization", "Bearer " + authntest.Strip(mine), "Authorization", "Bearer " + forged}},
		{desc: "AUTH_MODE cloudrun with AUTH_AUDIENCE: another audience", cfg: app.Config{AuthMode: "cloudrun", Audience: "https://elsewhere"}, headers: []string{"Authorization", "Bearer " + authntest.Strip(mine)}},
		{desc: "IAP_AUDIENCE: the assertion names the person", cfg: app.Config{IAPAudience: "/projects/1/global/backendServices/2"},
			headers: []string{"X-Serverless-Authorization", "Bearer " + authntest.Strip(g.IDToken(t, "service-1@gcp-sa-iap.iam.gserviceaccount.com", fnURL)), authn.IAPHeader, g.IAPAssertion(t, "lead1@example.com", "/projects/1/global/backendServices/2")},
			want:    "lead1@example.com"},
		{desc: "public: a signed token for its audience", cfg: app.Config{Audience: fnURL}, public: true, headers: []string{"Authorization", "Bearer " + mine}, want: "dev1@example.com"},
		{desc: "public: Cloud Run's stripped form is not enough", cfg: app.Config{Audience: fnURL}, public: true, headers: []string{"Authorization", "Bearer " + authntest.Strip(mine)}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			tc.cfg.IDTokenOptions = g.ClientOptions()
			build := app.Verifier
			if tc.public {
				build = app.PublicVerifier
			}
			v, err := build(t.Context(), tc.cfg)
			if err != nil {
				t.Fatalf("when %s, building the verifier: %v", tc.desc, err)
			}
			id, err := v.Verify(t.Context(), req(tc.headers...))
			if tc.want == "" && err == nil {
				t.Fatalf("when %s, want = refused, got = accepted as %+v", tc.desc, id)
			}
			if tc.want != "" && (err != nil || id.Email != tc.want) {
				t.Fatalf("when %s, want = accepted as %s, got = %+v, %v", tc.desc, tc.want, id, err)
			}
		})
	}
	if _, err := app.Verifier(t.Context(), app.Config{AuthMode: "none"}); err == nil {
		t.Errorf("when AUTH_MODE is unknown, want = an error, got = none")
	}
	if _, err := app.PublicVerifier(t.Context(), app.Config{AuthMode: "cloudrun"}); err == nil {
		t.Errorf("when a public function has no AUTH_AUDIENCE, want = an error, got = none")
	}
	v, _ := app.PublicVerifier(t.Context(), app.Config{Audience: fnURL, IAPAudience: "/x"})
	for _, sub := range v.(authn.AnyOf) {
		if _, bad := sub.(authn.CloudRun); bad {
			t.Errorf("the public verifier includes the claims-only CloudRun verifier: %v", v)
		}
	}
}

// Identify answers a request naming two identities 401 ambiguous_identity, and one
// without a token 401 unauthenticated; neither returns an identity.
func TestIdentify(t *testing.T) {
	g := authntest.New(t)
	d := &app.Deps{Auth: authn.CloudRun{Validator: g.Validator(t)}}
	mine := authntest.Strip(g.IDToken(t, "dev1@example.com", fnURL))
	for _, tc := range []struct {
		desc     string
		headers  []string
		wantCode string
	}{
		{"two identities", []string{"X-Serverless-Authorization", "Bearer " + mine, "Authorization", "Bearer " + authntest.Forge(authntest.Claims("lead1@example.com", fnURL), "")}, "ambiguous_identity"},
		{"Authorization twice", []string{"Authorization", "Bearer " + mine, "Authorization", "Bearer " + mine}, "ambiguous_identity"},
		{"no token", nil, "unauthenticated"},
	} {
		id, err := d.Identify(t.Context(), req(tc.headers...))
		e, ok := errors.AsType[*httpapi.Error](err)
		if !ok || e.Status != http.StatusUnauthorized || e.Code != tc.wantCode || e.Message == "" || id != (authn.Identity{}) {
			t.Errorf("when %s, want = 401 %s with a message and no identity, got = %+v, %v", tc.desc, tc.wantCode, id, err)
		}
	}
}

package sweep

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/authn/authntest"
)

// sweepURL is the function's URL, the audience of the scheduler's OIDC token.
const sweepURL = "https://europe-west1-airlock.cloudfunctions.net/SweepExpired"

// TestIdentityHeaders is finding 1 of issue 11 against SweepExpired as deployed (AUTH_MODE
// cloudrun): someone who may invoke the function puts their own ID token where Cloud Run
// looks first (X-Serverless-Authorization) and the scheduler's identity in Authorization,
// which Cloud Run passes on untouched. The sweep does not run; only the token Cloud Run
// verified counts.
func TestIdentityHeaders(t *testing.T) {
	h := newHarness(t)
	g := authntest.New(t)
	var err error
	if h.h.deps.Auth, err = app.Verifier(t.Context(), app.Config{IDTokenOptions: g.ClientOptions()}); err != nil {
		t.Fatal(err)
	}
	ids := h.grants(t, "dev1@example.com")
	post := func(headers ...string) (int, string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Add(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		h.h.ServeHTTP(w, r)
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body.String())
		}
		return w.Code, errorCode(body)
	}
	mine := authntest.Strip(g.IDToken(t, "dev1@example.com", sweepURL))
	for what, theirs := range map[string]string{
		"an unsigned token":                 authntest.Forge(authntest.Claims(scheduler, sweepURL), ""),
		"a token claiming Cloud Run's mark": authntest.Forge(authntest.Claims(scheduler, sweepURL), authntest.StrippedSignature),
		"the scheduler's genuine token":     g.IDToken(t, scheduler, sweepURL),
	} {
		if code, ec := post("X-Serverless-Authorization", "Bearer "+mine, "Authorization", "Bearer "+theirs); code != http.StatusUnauthorized || ec != "ambiguous_identity" {
			t.Errorf("when dev1's token is in X-Serverless-Authorization and %s for the scheduler in Authorization, want = 401 ambiguous_identity, got = %d %s", what, code, ec)
		}
	}
	if code, ec := post("Authorization", "Bearer "+mine, "Authorization", "Bearer "+authntest.Forge(authntest.Claims(scheduler, sweepURL), "")); code != http.StatusUnauthorized || ec != "ambiguous_identity" {
		t.Errorf("when Authorization is sent twice, want = 401 ambiguous_identity, got = %d %s", code, ec)
	}
	if code, ec := post("X-Serverless-Authorization", "Bearer "+mine); code != http.StatusForbidden || ec != "not_scheduler" {
		t.Errorf("when dev1's own token is the one Cloud Run verified, want = 403 not_scheduler, got = %d %s", code, ec)
	}
	if !h.holds(t, "dev1@example.com") || len(h.logs.Payloads()) != 0 {
		t.Fatalf("after the refused runs, want = grant %v still held and nothing swept or recorded, got = held %v, %d entries", ids, h.holds(t, "dev1@example.com"), len(h.logs.Payloads()))
	}
	// The scheduler's token, as Cloud Run forwards it, runs the sweep.
	if code, ec := post("X-Serverless-Authorization", "Bearer "+authntest.Strip(g.IDToken(t, scheduler, sweepURL))); code != http.StatusOK {
		t.Fatalf("the scheduler through X-Serverless-Authorization: want = 200, got = %d %s", code, ec)
	}
	if h.holds(t, "dev1@example.com") {
		t.Errorf("after the scheduler's run, want = the expired grant revoked, got = still held")
	}
}

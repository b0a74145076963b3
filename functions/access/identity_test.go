package access_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/authn/authntest"
	"airlock.dev/airlock/shared/migrate"
)

// The function's URL: the audience of callers' ID tokens, checked by Cloud Run.
const accessURL = "https://europe-west1-airlock.cloudfunctions.net/RequestAccess"

// TestIdentityHeaders is finding 1 of issue 11 against RequestAccess as deployed
// (AUTH_MODE cloudrun): dev1, who may invoke the function, puts their own ID token where
// Cloud Run looks first (X-Serverless-Authorization, which reaches the function stripped)
// and dev2's identity in Authorization, which Cloud Run passes through untouched. On
// every path the request is refused and nothing is created in dev2's name.
func TestIdentityHeaders(t *testing.T) {
	env := apptest.New(t)
	g := authntest.New(t)
	url := env.Serve(access.New(env.Deps(access.EntryPoint, migrate.GroupRequests, apptest.WithGoogle(g)))).URL + "/"
	full := g.IDToken(t, dev1, accessURL)
	mine := authntest.Strip(full) // as Cloud Run forwards the token it verified
	const dev2 = "dev2@example.com"
	body := map[string]any{"role": "unmasked_users", "reason": "Investigating support ticket SUP-881 about a wrong e-mail", "duration": "30m"}
	pageToken := func(who string) string {
		r := env.Do("GET", url, "", nil, "Accept", "text/html", "Authorization", "Bearer "+authntest.Strip(g.IDToken(t, who, accessURL)))
		m := csrfRE.FindSubmatch(r.Body)
		if r.Status != http.StatusOK || m == nil {
			t.Fatalf("%s's page: %d %s", who, r.Status, r.Body)
		}
		return string(m[1])
	}
	dev2CSRF := pageToken(dev2)

	claims := map[string]string{
		"an unsigned token":                 authntest.Forge(authntest.Claims(dev2, accessURL), ""),
		"a token claiming Cloud Run's mark": authntest.Forge(authntest.Claims(dev2, accessURL), authntest.StrippedSignature),
		"dev2's genuine token":              g.IDToken(t, dev2, accessURL),
	}
	for what, theirs := range claims {
		two := []string{"X-Serverless-Authorization", "Bearer " + mine, "Authorization", "Bearer " + theirs}
		for _, c := range []struct {
			path   string
			method string
			body   any
			extra  []string
		}{
			{"JSON request", "POST", body, nil},
			{"web form", "POST", "csrf=" + dev2CSRF + "&role=unmasked_users&duration=30m&reason=Investigating+support+ticket+SUP-881+about+an+e-mail", []string{"Content-Type", "application/x-www-form-urlencoded"}},
			{"list", "GET", nil, []string{"Accept", "application/json"}},
			{"page", "GET", nil, []string{"Accept", "text/html"}},
		} {
			r := env.Do(c.method, url, "", c.body, append(two, c.extra...)...)
			if r.Status != http.StatusUnauthorized || r.Code() != "ambiguous_identity" {
				t.Errorf("when dev1's token is in X-Serverless-Authorization and %s for dev2 in Authorization (%s), want = 401 ambiguous_identity, got = %d %s", what, c.path, r.Status, r.Body)
			}
		}
	}
	var n int
	if err := env.Admin.QueryRow(context.Background(), `SELECT count(*) FROM airlock.access_requests`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the refused requests, want = no access request, got = %d (%v)", n, err)
	}
	for _, e := range env.AuditEvents(access.EntryPoint) {
		if e.Actor == dev2 || e.Event == audit.EventRequestCreated {
			t.Errorf("after the refused requests, want = nothing in the trail in dev2's name, got = %+v", e)
		}
	}

	// A look-alike header name, or dev1's own claims under a signature that does not
	// verify, are refused too.
	broken := full[:strings.LastIndexByte(full, '.')+1] + "AAAA"
	for _, c := range []struct {
		desc     string
		headers  []string
		wantCode string
	}{
		{"X_Serverless_Authorization beside Authorization", []string{"X_Serverless_Authorization", "Bearer " + mine, "Authorization", "Bearer " + authntest.Strip(g.IDToken(t, dev2, accessURL))}, "ambiguous_identity"},
		{"dev1's claims under a broken signature in Authorization", []string{"X-Serverless-Authorization", "Bearer " + mine, "Authorization", "Bearer " + broken}, "unauthenticated"},
	} {
		if r := env.Do("POST", url, "", body, c.headers...); r.Status != http.StatusUnauthorized || r.Code() != c.wantCode {
			t.Errorf("when %s, want = 401 %s, got = %d %s", c.desc, c.wantCode, r.Status, r.Body)
		}
	}

	// The identity Cloud Run verified is the one used: dev1's, from either header, and
	// from both when they hold the same token.
	for _, hs := range [][]string{
		{"X-Serverless-Authorization", "Bearer " + mine},
		{"Authorization", "Bearer " + mine},
		{"X-Serverless-Authorization", "Bearer " + mine, "Authorization", "Bearer " + full},
	} {
		if r := env.Do("POST", url, "", body, hs...); r.Status != http.StatusCreated {
			t.Fatalf("dev1 with headers %q: want = 201, got = %d %s", hs, r.Status, r.Body)
		}
	}
	var requester string
	var count int
	env.Admin.QueryRow(context.Background(), `SELECT min(requester), count(*) FROM airlock.access_requests`).Scan(&requester, &count)
	if requester != dev1 || count != 3 {
		t.Errorf("after dev1's own requests, want = 3 requests by %s, got = %d by %q", dev1, count, requester)
	}
}

package approval_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/authn/authntest"
	"airlock.dev/airlock/shared/migrate"
)

const (
	approvalURL = "https://europe-west1-airlock.cloudfunctions.net/ApprovalCallback" // its AUTH_AUDIENCE
	accessURL   = "https://europe-west1-airlock.cloudfunctions.net/RequestAccess"
)

// TestIdentityHeaders is finding 1 of issue 11 against ApprovalCallback, its JSON API and
// its web page's decisions, as deployed: public (allUsers), so it verifies every token
// itself. dev1 asks for access, then tries to approve their own request as lead1 by
// putting their own, genuine token in X-Serverless-Authorization and lead1's identity in
// Authorization, in every form an insider has at hand. Each attempt is refused, and the
// request stays pending.
func TestIdentityHeaders(t *testing.T) {
	env := apptest.New(t)
	g := authntest.New(t)
	accURL := env.Serve(access.New(env.Deps(access.EntryPoint, migrate.GroupRequests, apptest.WithGoogle(g)))).URL + "/"
	deps := env.Deps(approval.EntryPoint, migrate.GroupApprovals, apptest.WithGoogle(g))
	deps.Config.Audience = approvalURL
	if err := approval.PublicVerifier(deps, ""); err != nil {
		t.Fatal(err)
	}
	apURL := env.Serve(approval.New(deps).WithClock(workingHours)).URL
	bearer := func(tok string) string { return "Bearer " + tok }
	const dev1, lead1 = "dev1@example.com", "lead1@example.com"

	r := env.Do("POST", accURL, "", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "30m"},
		"Authorization", bearer(authntest.Strip(g.IDToken(t, dev1, accessURL))))
	if r.Status != http.StatusCreated {
		t.Fatalf("dev1's request: %d %s", r.Status, r.Body)
	}
	id := r.JSON()["request_id"].(string)
	page := env.Do("GET", accURL, "", nil, "Accept", "text/html", "Authorization", bearer(authntest.Strip(g.IDToken(t, lead1, accessURL))))
	m := csrfRE.FindSubmatch(page.Body)
	if m == nil {
		t.Fatalf("lead1's page has no anti-forgery token: %d %s", page.Status, page.Body)
	}
	leadCSRF := string(m[1])

	mine := g.IDToken(t, dev1, approvalURL)
	decision := map[string]any{"request_id": id, "decision": "approve", "comment": "lgtm"}
	webForm := form("csrf", leadCSRF, "request_id", id, "decision", "approve")
	paths := []struct {
		name, path string
		body       any
		ctype      string
	}{
		{"JSON API", "/", decision, "application/json"},
		{"web page", approval.WebPath, webForm, "application/x-www-form-urlencoded"},
	}
	for _, c := range []struct {
		desc     string
		headers  []string
		wantCode string
	}{
		{"an unsigned token for lead1 in Authorization", []string{"X-Serverless-Authorization", bearer(mine), "Authorization", bearer(authntest.Forge(authntest.Claims(lead1, approvalURL), ""))}, "ambiguous_identity"},
		{"lead1's claims marked as stripped by Cloud Run", []string{"X-Serverless-Authorization", bearer(mine), "Authorization", bearer(authntest.Forge(authntest.Claims(lead1, approvalURL), authntest.StrippedSignature))}, "ambiguous_identity"},
		{"lead1's genuine token for another function", []string{"X-Serverless-Authorization", bearer(mine), "Authorization", bearer(g.IDToken(t, lead1, accessURL))}, "ambiguous_identity"},
		{"lead1's genuine token for this function", []string{"X-Serverless-Authorization", bearer(mine), "Authorization", bearer(g.IDToken(t, lead1, approvalURL))}, "ambiguous_identity"},
		{"the two the other way round", []string{"X-Serverless-Authorization", bearer(authntest.Forge(authntest.Claims(lead1, approvalURL), "")), "Authorization", bearer(mine)}, "ambiguous_identity"},
		{"lead1's token stripped, alone", []string{"X-Serverless-Authorization", bearer(authntest.Strip(g.IDToken(t, lead1, approvalURL)))}, "unauthenticated"},
		{"lead1's token stripped, in Authorization", []string{"Authorization", bearer(authntest.Strip(g.IDToken(t, lead1, approvalURL)))}, "unauthenticated"},
	} {
		for _, p := range paths {
			r := env.Do("POST", apURL+p.path, "", p.body, append([]string{"Content-Type", p.ctype}, c.headers...)...)
			if r.Status != http.StatusUnauthorized || r.Code() != c.wantCode {
				t.Errorf("when dev1 sends %s (%s), want = 401 %s, got = %d %s", c.desc, p.name, c.wantCode, r.Status, r.Body)
			}
		}
	}
	// Authorization twice (apptest's Do sets each header once, so by hand).
	for _, p := range paths {
		body, _ := p.body.(string)
		if body == "" {
			b, _ := json.Marshal(p.body)
			body = string(b)
		}
		req, _ := http.NewRequest("POST", apURL+p.path, strings.NewReader(body))
		req.Header.Set("Content-Type", p.ctype)
		req.Header.Add("Authorization", bearer(mine))
		req.Header.Add("Authorization", bearer(g.IDToken(t, lead1, approvalURL)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("when dev1 sends Authorization twice (%s), want = 401, got = %d", p.name, resp.StatusCode)
		}
	}
	var status string
	var approvals int
	env.Admin.QueryRow(context.Background(), `SELECT status, (SELECT count(*) FROM airlock.approvals WHERE request_id = $1) FROM airlock.access_requests WHERE id = $1`, id).Scan(&status, &approvals)
	if status != "pending" || approvals != 0 {
		t.Fatalf("after the refused decisions, want = the request pending with no approval, got = %s with %d", status, approvals)
	}
	for _, e := range env.AuditEvents(approval.EntryPoint) {
		if e.Actor == lead1 {
			t.Errorf("after the refused decisions, want = nothing in the trail in lead1's name, got = %+v", e)
		}
	}

	// lead1 with their own token, the same one in both headers, approves: the rule is
	// one identity, not one header.
	lead := g.IDToken(t, lead1, approvalURL)
	r = env.Do("POST", apURL+approval.WebPath, "", webForm, "Content-Type", "application/x-www-form-urlencoded",
		"X-Serverless-Authorization", bearer(lead), "Authorization", bearer(lead))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "now approved") {
		t.Fatalf("lead1's own decision from the page: %d %s", r.Status, r.Body)
	}
	r = env.Do("POST", apURL+"/", "", decision, "Authorization", bearer(lead))
	var resp approval.Response
	json.Unmarshal(r.Body, &resp)
	if r.Status != http.StatusOK || !resp.Replayed || resp.Status != "approved" {
		t.Fatalf("lead1's decision again through the API: want = 200, the decision replayed, got = %d %s", r.Status, r.Body)
	}
}

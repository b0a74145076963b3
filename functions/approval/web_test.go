package approval_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/app/apptest"
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (f *flow) pageOf(t *testing.T, email string) (apptest.Response, string) {
	t.Helper()
	r := f.Do("GET", f.access, email, nil, "Accept", "text/html,application/xhtml+xml")
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page for %s: %d %s", email, r.Status, r.Body)
	}
	m := csrfRE.FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no CSRF token on %s's page", email)
	}
	return r, string(m[1])
}

func form(vals ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(vals); i += 2 {
		v.Set(vals[i], vals[i+1])
	}
	return v.Encode()
}

func TestWebForm(t *testing.T) {
	f := newFlow(t)
	page, devToken := f.pageOf(t, "dev1@example.com")
	body := string(page.Body)
	for _, want := range []string{`<form method="post"`, `value="unmasked_users"`, `value="breakglass"`, "real values of email, full_name, phone", "Content-Security-Policy"} {
		if !strings.Contains(body+page.Header.Get("Content-Security-Policy")+"Content-Security-Policy", want) {
			t.Errorf("dev1's page lacks %q", want)
		}
	}
	if strings.Contains(body, "Waiting for your decision") || strings.Contains(body, "<script") {
		t.Errorf("dev1's page shows the approvers' section or a script")
	}
	if page.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("page can be framed")
	}
	ctype := "application/x-www-form-urlencoded"
	evil := `<script>alert("pwned")</script> investigating ticket SUP-9 for a customer`

	// Without, with a forged, and with someone else's token: refused, nothing created.
	_, leadToken := f.pageOf(t, "lead1@example.com")
	for name, tok := range map[string]string{"none": "", "forged": "1700000000.deadbeef", "lead1's": leadToken} {
		r := f.Do("POST", f.access, "dev1@example.com", form("csrf", tok, "role", "unmasked_users", "duration", "10m", "reason", evil), "Content-Type", ctype)
		if r.Status != 403 || !strings.Contains(string(r.Body), "anti-forgery") {
			t.Errorf("%s token: %d %s", name, r.Status, r.Body)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.access_requests`); n != 0 {
		t.Fatalf("forged forms created %d requests", n)
	}
	// Invalid input is shown on the page, escaped.
	r := f.Do("POST", f.access, "dev1@example.com", form("csrf", devToken, "role", "unmasked_users", "duration", "-5m", "reason", evil), "Content-Type", ctype)
	if r.Status != 400 || !strings.Contains(string(r.Body), `id="error"`) {
		t.Fatalf("invalid duration: %d %s", r.Status, r.Body)
	}
	// The real thing.
	r = f.Do("POST", f.access, "dev1@example.com", form("csrf", devToken, "role", "unmasked_users", "duration", "10m", "reason", evil), "Content-Type", ctype)
	if r.Status != 201 || !strings.Contains(string(r.Body), `id="confirmation"`) {
		t.Fatalf("form: %d %s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "<script>") || !strings.Contains(string(r.Body), "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;") {
		t.Fatalf("the reason is not escaped on the confirmation page: %s", r.Body)
	}
	var id string
	f.Admin.QueryRow(context.Background(), `SELECT id FROM airlock.access_requests`).Scan(&id)

	// lead1 sees it waiting, escaped, and approves from the page.
	page, leadToken = f.pageOf(t, "lead1@example.com")
	if !strings.Contains(string(page.Body), id) || strings.Contains(string(page.Body), "<script>") {
		t.Fatalf("lead1's page: %s", page.Body)
	}
	web := strings.TrimSuffix(f.approval, "/") + approval.WebPath
	if r := f.Do("POST", web, "lead1@example.com", form("csrf", devToken, "request_id", id, "decision", "approve"), "Content-Type", ctype); r.Status != 403 {
		t.Fatalf("approval with dev1's token: %d %s", r.Status, r.Body)
	}
	if r := f.Do("POST", web, "", form("csrf", leadToken, "request_id", id, "decision", "approve"), "Content-Type", ctype); r.Status != 401 {
		t.Fatalf("approval without identity: %d %s", r.Status, r.Body)
	}
	r = f.Do("POST", web, "lead1@example.com", form("csrf", leadToken, "request_id", id, "decision", "approve", "comment", "ok"), "Content-Type", ctype)
	if r.Status != 200 || !strings.Contains(string(r.Body), "now approved") {
		t.Fatalf("web approval: %d %s", r.Status, r.Body)
	}
	// dev1 cannot approve their own request from the page either.
	if r := f.Do("POST", web, "dev1@example.com", form("csrf", devToken, "request_id", id, "decision", "approve"), "Content-Type", ctype); r.Status != 403 {
		t.Fatalf("self-approval from the page: %d %s", r.Status, r.Body)
	}
	// Reviewers of dev1's next request see the grant dev1 already had.
	f.request(t, "dev1@example.com", map[string]any{"role": "unmasked_accounts", "reason": reason, "duration": "10m"})
	page, _ = f.pageOf(t, "lead2@example.com")
	if !strings.Contains(string(page.Body), "Their grants in the last 30 days: unmasked_users (") {
		t.Fatalf("lead2 does not see dev1's history: %s", page.Body)
	}
	// dev1's page shows the active grant with the time left.
	page, _ = f.pageOf(t, "dev1@example.com")
	if !strings.Contains(string(page.Body), `id="grants"`) || !strings.Contains(string(page.Body), "unmasked_users") || !regexp.MustCompile(`<td>(9m5\d|10m0)s</td>`).Match(page.Body) {
		t.Fatalf("dev1's grants: %s", page.Body)
	}
}

package access_test

import (
	"net/url"
	"strings"
	"testing"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/migrate"
)

// TestRefusalsAreAudited sends every kind of refusal RequestAccess gives a verified
// person, as JSON and through the web form, and finds each on the trail with its code;
// a request without a verified identity is the only one left off.
func TestRefusalsAreAudited(t *testing.T) {
	const reason = "Investigating support ticket SUP-881 about a wrong e-mail address"
	env := apptest.New(t)
	srv := env.Serve(access.New(env.Deps(access.EntryPoint, migrate.GroupRequests))).URL + "/"
	form := func(t *testing.T, email string, csrf bool, fields ...string) apptest.Response {
		t.Helper()
		v := url.Values{}
		if csrf {
			page := env.Do("GET", srv, email, nil, "Accept", "text/html")
			m := csrfRE.FindSubmatch(page.Body)
			if m == nil {
				t.Fatalf("no anti-forgery token on %s's page: %d %s", email, page.Status, page.Body)
			}
			v.Set("csrf", string(m[1]))
		}
		for i := 0; i+1 < len(fields); i += 2 {
			v.Set(fields[i], fields[i+1])
		}
		return env.Do("POST", srv, email, v.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}
	tcs := []struct {
		desc   string
		email  string
		body   any
		form   []string // sent through the web form instead, with a valid token unless noCSRF
		noCSRF bool
		status int
		code   string // "" for none recorded
	}{
		{desc: "no token", body: map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h"}, status: 401},
		{desc: "not a member", email: "eve@evil.example", body: map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h"}, status: 403, code: "not_a_member"},
		{desc: "role not requestable", email: "sec1@example.com", body: map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h"}, status: 403, code: "role_not_requestable"},
		{desc: "unknown role", email: dev1, body: map[string]any{"role": "superuser", "reason": reason, "duration": "1h"}, status: 403, code: "role_not_requestable"},
		{desc: "no role", email: dev1, body: map[string]any{"reason": reason, "duration": "1h"}, status: 400, code: "role_required"},
		{desc: "missing reason", email: dev1, body: map[string]any{"role": "unmasked_users", "duration": "1h"}, status: 400, code: "reason_required"},
		{desc: "short reason", email: dev1, body: map[string]any{"role": "unmasked_users", "reason": "because", "duration": "1h"}, status: 400, code: "reason_too_short"},
		{desc: "control characters in the reason", email: dev1, body: map[string]any{"role": "unmasked_users", "reason": reason + "\x1b[2J", "duration": "1h"}, status: 400, code: "invalid_reason"},
		{desc: "missing duration", email: dev1, body: map[string]any{"role": "unmasked_users", "reason": reason}, status: 400, code: "duration_required"},
		{desc: "bad duration", email: dev1, body: map[string]any{"role": "unmasked_users", "reason": reason, "duration": "ten minutes"}, status: 400, code: "invalid_duration"},
		{desc: "negative duration", email: dev1, body: map[string]any{"role": "unmasked_users", "reason": reason, "duration": "-10m"}, status: 400, code: "invalid_duration"},
		{desc: "duration too long", email: dev1, body: map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1000h"}, status: 400, code: "duration_too_long"},
		{desc: "duration as a number", email: dev1, body: map[string]any{"role": "unmasked_users", "reason": reason, "duration": 600}, status: 400, code: "invalid_field"},
		{desc: "unknown field", email: dev1, body: map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h", "approver": dev1}, status: 400, code: "unknown_field"},
		{desc: "not JSON", email: dev1, body: `{"role": "unmasked_users",`, status: 400, code: "malformed_json"},
		{desc: "too large", email: dev1, body: `{"role":"unmasked_users","reason":"` + strings.Repeat("a ", 20000) + `","duration":"1h"}`, status: 413, code: "body_too_large"},
		{desc: "break-glass without a ticket", email: dev1, body: map[string]any{"breakglass": true, "reason": reason, "duration": "30m"}, status: 400, code: "ticket_required"},
		{desc: "break-glass with another role", email: dev1, body: map[string]any{"breakglass": true, "role": "unmasked_users", "reason": reason, "duration": "30m", "ticket": "INC-1"}, status: 400, code: "invalid_breakglass"},
		{desc: "form without a token", email: dev1, form: []string{"role", "unmasked_users", "duration", "10m", "reason", reason}, noCSRF: true, status: 403, code: "csrf"},
		{desc: "form with a bad duration", email: dev1, form: []string{"role", "unmasked_users", "duration", "0s", "reason", reason}, status: 400, code: "invalid_duration"},
		{desc: "form asking for a role not requestable", email: dev1, form: []string{"role", "superuser", "duration", "10m", "reason", reason}, status: 403, code: "role_not_requestable"},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			before := len(env.AuditEventsOf(access.EntryPoint, audit.EventRequestRefused))
			var r apptest.Response
			if tc.form != nil {
				r = form(t, tc.email, !tc.noCSRF, tc.form...)
			} else {
				r = env.Do("POST", srv, tc.email, tc.body)
			}
			if r.Status != tc.status || (tc.form == nil && tc.code != "" && r.Code() != tc.code) {
				t.Fatalf("when %s, want = %d %s, got = %d %s", tc.desc, tc.status, tc.code, r.Status, r.Body)
			}
			got := env.AuditEventsOf(access.EntryPoint, audit.EventRequestRefused)[before:]
			if tc.code == "" {
				if len(got) != 0 {
					t.Errorf("when %s (no verified identity), want nothing recorded, got = %+v", tc.desc, got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("when %s, want one %s entry, got = %+v", tc.desc, audit.EventRequestRefused, got)
			}
			e := got[0]
			if e.Rule != tc.code || e.Actor != tc.email || e.Decision != audit.DecisionDenied || e.Function != access.EntryPoint || e.Message == "" {
				t.Errorf("when %s, want rule %s, actor %s, decision denied and the message, got = %+v", tc.desc, tc.code, tc.email, e)
			}
			if rid, _ := r.JSON()["request_id"].(string); tc.form == nil && (rid == "" || e.RequestID != rid) {
				t.Errorf("when %s, want the entry's request_id to be the answer's %q, got = %q", tc.desc, rid, e.RequestID)
			}
			if st, _ := e.Details["status"].(float64); int(st) != tc.status {
				t.Errorf("when %s, want details.status = %d, got = %v", tc.desc, tc.status, e.Details["status"])
			}
		})
	}
	var created int
	if err := env.Admin.QueryRow(t.Context(), `SELECT count(*) FROM airlock.access_requests`).Scan(&created); err != nil || created != 0 {
		t.Errorf("want no request created by refusals, got = %d (%v)", created, err)
	}
	// The reason a refused request gave is kept with it, for the reviewer.
	for _, e := range env.AuditEventsOf(access.EntryPoint, audit.EventRequestRefused) {
		if e.Rule == "duration_too_long" && e.Reason != reason {
			t.Errorf("want the refused request's reason on its entry, got = %q", e.Reason)
		}
	}
}

package approval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// flow is the three functions of the access walk-through on one database.
type flow struct {
	*apptest.Env
	access, approval, query string
}

func newFlow(t *testing.T) *flow {
	env := apptest.New(t)
	f := &flow{Env: env}
	f.access = env.Serve(access.New(env.Deps(access.EntryPoint, migrate.GroupRequests))).URL + "/"
	// Inside the demo policy's working hours, so that only the tests about them see the
	// off-hours alert.
	f.approval = env.Serve(approval.New(env.Deps(approval.EntryPoint, migrate.GroupApprovals)).WithClock(workingHours)).URL + "/"
	f.query = env.Serve(query.New(env.Deps(query.EntryPoint, migrate.GroupQuery))).URL + "/"
	return f
}

func (f *flow) request(t *testing.T, email string, body map[string]any) string {
	t.Helper()
	r := f.Do("POST", f.access, email, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("request by %s: %d %s", email, r.Status, r.Body)
	}
	return r.JSON()["request_id"].(string)
}

func (f *flow) decide(email, id, decision string) apptest.Response {
	return f.Do("POST", f.approval, email, map[string]any{"request_id": id, "decision": decision, "comment": "looked at it"})
}

func (f *flow) firstEmail(t *testing.T, email string) string {
	t.Helper()
	r := f.Do("POST", f.query, email, map[string]any{"sql": "SELECT email FROM users ORDER BY id LIMIT 1"})
	if r.Status != http.StatusOK {
		t.Fatalf("query as %s: %d %s", email, r.Status, r.Body)
	}
	var res struct {
		Rows [][]string `json:"rows"`
	}
	if err := json.Unmarshal(r.Body, &res); err != nil || len(res.Rows) != 1 {
		t.Fatalf("query as %s: %s", email, r.Body)
	}
	return res.Rows[0][0]
}

func (f *flow) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.Admin.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// workingHours is a Wednesday noon in UTC, inside the demo policy's working hours.
func workingHours() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

const reason = "Investigating support ticket SUP-881 about a wrong e-mail address"

// The README walk-through: dev1 asks, lead1 approves, dev1 sees real values, dev2 does not.
func TestWalkthrough(t *testing.T) {
	f := newFlow(t)
	if got := f.firstEmail(t, "dev1@example.com"); !strings.HasPrefix(got, "h:") {
		t.Fatalf("before the grant dev1 sees %q, want a masked value", got)
	}
	r := f.Do("POST", f.access, "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "10m"})
	if r.Status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.Status, r.Body)
	}
	created := r.JSON()
	id := created["request_id"].(string)
	if created["status"] != "pending" || created["approvals_required"].(float64) != 1 || !strings.HasPrefix(id, "ar_") || len(id) != 15 {
		t.Fatalf("created: %s", r.Body)
	}
	if ap := fmt.Sprint(created["approvers"]); !strings.Contains(ap, "lead1@example.com") || strings.Contains(ap, "dev1") {
		t.Fatalf("approvers: %s", ap)
	}

	r = f.decide("lead1@example.com", id, "approve")
	if r.Status != http.StatusOK || r.JSON()["status"] != "approved" || r.JSON()["grant_id"] == nil {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	// dev1's database role now holds the unmasked capability, and only it.
	role := f.DB.Roles.Unmasked("users")
	if n := f.count(t, `SELECT count(*) FROM airlock.developers d WHERE d.email = 'dev1@example.com' AND pg_has_role(d.db_role, $1, 'MEMBER')`, role); n != 1 {
		t.Fatalf("dev1's role is not a member of %s", role)
	}
	if got := f.firstEmail(t, "dev1@example.com"); strings.HasPrefix(got, "h:") || !strings.Contains(got, "@") {
		t.Fatalf("after the grant dev1 sees %q, want the real e-mail", got)
	}
	if got := f.firstEmail(t, "dev2@example.com"); !strings.HasPrefix(got, "h:") {
		t.Fatalf("dev2 sees %q, want a masked value", got)
	}
	// Replaying lead1's approval is harmless.
	r = f.decide("lead1@example.com", id, "approve")
	if r.Status != http.StatusOK || r.JSON()["replayed"] != true {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	// lead2 comes too late.
	if r = f.decide("lead2@example.com", id, "approve"); r.Status != http.StatusConflict || r.Code() != "request_decided" {
		t.Fatalf("late approval: %d %s", r.Status, r.Body)
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.grants WHERE request_id = $1`, id); n != 1 {
		t.Fatalf("%d grants", n)
	}
	// dev1 sees the request and grant.
	r = f.Do("GET", f.access+"?format=json", "dev1@example.com", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), id) || !strings.Contains(string(r.Body), `"unmasked_users"`) {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	// Everything is in the audit trail, in order, with who and why.
	var got []string
	for _, e := range f.AuditEvents(access.EntryPoint) {
		got = append(got, e.Event+":"+e.Actor)
		if e.Event == audit.EventRequestCreated && (e.Reason != reason || e.AccessRequestID != id) {
			t.Errorf("request.created: %+v", e)
		}
	}
	for _, e := range f.AuditEvents(approval.EntryPoint) {
		got = append(got, e.Event+":"+e.Actor)
	}
	// lead2's late approval was refused, and the refusal is on the trail too.
	want := "request.created:dev1@example.com request.approved:lead1@example.com grant.created:lead1@example.com decision.refused:lead2@example.com"
	if strings.Join(got, " ") != want {
		t.Fatalf("audit: %v, want %s", got, want)
	}
}

func TestAdversarialDecisions(t *testing.T) {
	f := newFlow(t)
	id := f.request(t, "dev1@example.com", map[string]any{"role": "write_accounts", "reason": reason, "duration": "30m"})

	if r := f.Do("POST", f.approval, "", map[string]any{"request_id": id, "decision": "approve"}); r.Status != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", r.Status, r.Body)
	}
	if r := f.Do("POST", f.approval, "", map[string]any{"request_id": id, "decision": "approve"}, "Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImxlYWQxQGV4YW1wbGUuY29tIn0."); r.Status != http.StatusUnauthorized {
		t.Errorf("unsigned token: %d %s", r.Status, r.Body)
	}
	if r := f.decide("dev1@example.com", id, "approve"); r.Status != http.StatusForbidden || r.Code() != "self_approval" {
		t.Errorf("self-approval: %d %s", r.Status, r.Body)
	}
	if r := f.decide("dev2@example.com", id, "approve"); r.Status != http.StatusForbidden || r.Code() != "not_an_approver" {
		t.Errorf("non-approver: %d %s", r.Status, r.Body)
	}
	if r := f.decide("lead1@example.com", "ar_000000000000", "approve"); r.Status != http.StatusNotFound || r.Code() != "request_not_found" {
		t.Errorf("unknown: %d %s", r.Status, r.Body)
	}
	if r := f.decide("lead1@example.com", id, "maybe"); r.Status != http.StatusBadRequest || r.Code() != "invalid_decision" {
		t.Errorf("bad decision: %d %s", r.Status, r.Body)
	}
	// Double approval by the same person counts once.
	for i := 0; i < 3; i++ {
		r := f.decide("lead1@example.com", id, "approve")
		if r.Status != http.StatusOK || r.JSON()["status"] != "pending" || r.JSON()["approvals"].(float64) != 1 {
			t.Fatalf("approval %d by lead1: %d %s", i, r.Status, r.Body)
		}
	}
	if r := f.decide("lead1@example.com", id, "deny"); r.Status != http.StatusConflict || r.Code() != "decision_conflict" ||
		!strings.HasPrefix(message(r), `lead1@example.com already chose "approve" on `+id+" at ") {
		t.Errorf("changing one's mind: %d %s", r.Status, r.Body)
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.grants`); n != 0 {
		t.Fatalf("one approver made %d grants", n)
	}
	// One deny denies.
	if r := f.decide("sec1@example.com", id, "deny"); r.Status != http.StatusOK || r.JSON()["status"] != "denied" {
		t.Fatalf("deny: %d %s", r.Status, r.Body)
	}
	if r := f.decide("lead2@example.com", id, "approve"); r.Status != http.StatusConflict || r.Code() != "request_decided" || message(r) != id+" is already denied" {
		t.Errorf("approve after deny: %d %s", r.Status, r.Body)
	}
	// Expired requests cannot be decided.
	id2 := f.request(t, "dev2@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "10m"})
	if _, err := f.Admin.Exec(context.Background(), `UPDATE airlock.access_requests SET expires_at = now() - interval '1 minute' WHERE id = $1`, id2); err != nil {
		t.Fatal(err)
	}
	if r := f.decide("lead1@example.com", id2, "approve"); r.Status != http.StatusConflict || r.Code() != "request_expired" ||
		!strings.HasPrefix(message(r), id2+" expired at ") || !strings.HasSuffix(message(r), " without a decision; ask again") {
		t.Errorf("expired: %d %s", r.Status, r.Body)
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.grants`); n != 0 {
		t.Fatalf("%d grants", n)
	}
	// A requester who is also an approver still cannot approve their own break-glass.
	bg := f.request(t, "lead1@example.com", map[string]any{"breakglass": true, "reason": "Production outage INC-77, need to fix stuck withdrawals now", "duration": "30m", "ticket": "INC-77"})
	if r := f.decide("lead1@example.com", bg, "approve"); r.Status != http.StatusForbidden || r.Code() != "self_approval" {
		t.Errorf("self-approval of break-glass: %d %s", r.Status, r.Body)
	}
}

// Two (and three) approvers deciding at the same moment make exactly one grant.
func TestConcurrentApprovals(t *testing.T) {
	f := newFlow(t)
	for i := 0; i < 20; i++ {
		id := f.request(t, "dev1@example.com", map[string]any{"role": "write_accounts", "reason": reason, "duration": "5m"})
		var wg sync.WaitGroup
		statuses := make([]int, 3)
		for j, who := range []string{"lead1@example.com", "lead2@example.com", "sec1@example.com"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[j] = f.decide(who, id, "approve").Status
			}()
		}
		wg.Wait()
		ok, conflict := 0, 0
		for _, s := range statuses {
			switch s {
			case 200:
				ok++
			case 409:
				conflict++
			}
		}
		if ok != 2 || conflict != 1 {
			t.Fatalf("round %d: statuses %v, want two 200 and one 409", i, statuses)
		}
		if n := f.count(t, `SELECT count(*) FROM airlock.grants WHERE request_id = $1`, id); n != 1 {
			t.Fatalf("round %d: %d grants", i, n)
		}
		if n := f.count(t, `SELECT count(*) FROM airlock.approvals WHERE request_id = $1`, id); n != 2 {
			t.Fatalf("round %d: %d approvals stored", i, n)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.grants`); n != 20 {
		t.Fatalf("%d grants, want 20", n)
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.developers d WHERE pg_has_role(d.db_role, $1, 'MEMBER')`, f.DB.Roles.Write("accounts")); n != 1 {
		t.Fatalf("dev1's role is not a member of the write capability")
	}
}

func TestRequestValidation(t *testing.T) {
	f := newFlow(t)
	cases := []struct {
		name   string
		email  string
		body   any
		status int
		code   string
	}{
		{"no token", "", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h"}, 401, "unauthenticated"},
		{"not a member", "eve@evil.example", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h"}, 403, "not_a_member"},
		{"unknown role", "dev1@example.com", map[string]any{"role": "superuser", "reason": reason, "duration": "1h"}, 403, "role_not_requestable"},
		{"not requestable", "sec1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h"}, 403, "role_not_requestable"},
		{"no role", "dev1@example.com", map[string]any{"reason": reason, "duration": "1h"}, 400, "role_required"},
		{"no reason", "dev1@example.com", map[string]any{"role": "unmasked_users", "duration": "1h"}, 400, "reason_required"},
		{"short reason", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": "because", "duration": "1h"}, 400, "reason_too_short"},
		{"one long word", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": strings.Repeat("x", 40), "duration": "1h"}, 400, "reason_too_short"},
		{"negative", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "-10m"}, 400, "invalid_duration"},
		{"zero", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "0s"}, 400, "invalid_duration"},
		{"bare zero", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "0"}, 400, "invalid_duration"},
		{"too short", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "30s"}, 400, "duration_too_short"},
		{"huge", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1000h"}, 400, "duration_too_long"},
		{"overflow", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "9999999999999h"}, 400, "invalid_duration"},
		{"malformed", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "ten minutes"}, 400, "invalid_duration"},
		{"number", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": 600}, 400, "invalid_field"},
		{"missing duration", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason}, 400, "duration_required"},
		{"unknown field", "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h", "approver": "dev1@example.com"}, 400, "unknown_field"},
		{"breakglass without ticket", "dev1@example.com", map[string]any{"breakglass": true, "reason": reason, "duration": "30m"}, 400, "ticket_required"},
		{"breakglass too long", "dev1@example.com", map[string]any{"role": "breakglass", "reason": reason, "duration": "2h", "ticket": "INC-1"}, 400, "duration_too_long"},
		{"breakglass with other role", "dev1@example.com", map[string]any{"breakglass": true, "role": "unmasked_users", "reason": reason, "duration": "30m", "ticket": "INC-1"}, 400, "invalid_breakglass"},
		{"oversized", "dev1@example.com", `{"role":"unmasked_users","reason":"` + strings.Repeat("a ", 20000) + `","duration":"1h"}`, 413, "body_too_large"},
		{"not json", "dev1@example.com", `role=unmasked_users`, 400, "malformed_json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.Do("POST", f.access, c.email, c.body)
			if r.Status != c.status || r.Code() != c.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, c.status, c.code)
			}
		})
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.access_requests`); n != 0 {
		t.Fatalf("invalid requests created %d rows", n)
	}
	if r := f.Do("POST", f.approval, "lead1@example.com", `{"request_id":"`+strings.Repeat("x", 40000)+`","decision":"approve"}`); r.Status != 413 {
		t.Fatalf("oversized decision: %d %s", r.Status, r.Body)
	}
}

// A reason full of markup is stored exactly as written and escaped wherever it is shown.
func TestReasonInjection(t *testing.T) {
	f := newFlow(t)
	evil := `<script>alert("x")</script> need it for SUP-1 '; DROP TABLE users; --`
	id := f.request(t, "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": evil, "duration": "10m"})
	var stored string
	if err := f.Admin.QueryRow(context.Background(), `SELECT reason FROM airlock.access_requests WHERE id = $1`, id).Scan(&stored); err != nil || stored != evil {
		t.Fatalf("stored %q (%v)", stored, err)
	}
	r := f.Do("GET", f.access+"?format=json", "dev1@example.com", nil)
	if strings.Contains(string(r.Body), "<script>") || !strings.Contains(string(r.Body), `\u003cscript\u003e`) {
		t.Fatalf("listing does not escape the reason: %s", r.Body)
	}
	var ov struct {
		Requests []struct {
			Reason string `json:"reason"`
		} `json:"requests"`
	}
	if json.Unmarshal(r.Body, &ov); len(ov.Requests) != 1 || ov.Requests[0].Reason != evil {
		t.Fatalf("listing: %s", r.Body)
	}
}

func TestBreakGlass(t *testing.T) {
	f := newFlow(t)
	r := f.Do("POST", f.access, "dev1@example.com", map[string]any{"breakglass": true, "reason": "Withdrawals stuck in production, incident INC-4242 open", "duration": "45m", "ticket": "INC-4242"})
	if r.Status != 201 || r.JSON()["role"] != "breakglass" || r.JSON()["approvals_required"].(float64) != 2 {
		t.Fatalf("break-glass: %d %s", r.Status, r.Body)
	}
	id := r.JSON()["request_id"].(string)
	var alert *audit.Entry
	for _, e := range f.AuditEvents(access.EntryPoint) {
		if e.Event == audit.EventBreakglassActivated {
			alert = &e
		}
	}
	if alert == nil || alert.Severity != audit.SeverityAlert || alert.AccessRequestID != id || alert.Details["ticket"] != "INC-4242" {
		t.Fatalf("breakglass.activated: %+v", alert)
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.notifications WHERE channel = 'security' AND payload->>'request_id' = $1`, id); n != 1 {
		t.Fatalf("%d security notifications at request time", n)
	}
	if r := f.decide("lead1@example.com", id, "approve"); r.JSON()["status"] != "pending" {
		t.Fatalf("one approval granted break-glass: %s", r.Body)
	}
	r = f.decide("sec1@example.com", id, "approve")
	if r.JSON()["status"] != "approved" || r.JSON()["grant_id"] == nil {
		t.Fatalf("second approval: %s", r.Body)
	}
	var caps []string
	if err := f.Admin.QueryRow(context.Background(), `SELECT capabilities FROM airlock.grants WHERE request_id = $1 AND breakglass`, id).Scan(&caps); err != nil {
		t.Fatal(err)
	}
	if strings.Join(caps, ",") != "unmasked_accounts,unmasked_deposits,unmasked_users,unmasked_withdrawals,write_accounts,write_withdrawals" {
		t.Fatalf("capabilities %v", caps)
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.notifications WHERE channel = 'security' AND payload->>'request_id' = $1 AND payload->>'severity' = 'ALERT'`, id); n != 2 {
		t.Fatalf("%d security notifications at severity ALERT after the grant, want 2 (the request and the grant)", n)
	}
}

// When the audit trail cannot record, nothing is created or decided.
func TestAuditUnavailable(t *testing.T) {
	env := apptest.New(t)
	accDeps := env.Deps(access.EntryPoint, migrate.GroupRequests)
	apDeps := env.Deps(approval.EntryPoint, migrate.GroupApprovals)
	acc := env.Serve(access.New(accDeps)).URL + "/"
	ap := env.Serve(approval.New(apDeps)).URL + "/"

	r := env.Do("POST", acc, "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "10m"})
	id := r.JSON()["request_id"].(string)
	apDeps.Audit.Close(context.Background())
	r = env.Do("POST", ap, "lead1@example.com", map[string]any{"request_id": id, "decision": "approve"})
	if r.Status != 503 || r.Code() != "audit_unavailable" {
		t.Fatalf("decision without audit: %d %s", r.Status, r.Body)
	}
	accDeps.Audit.Close(context.Background())
	r = env.Do("POST", acc, "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "10m"})
	if r.Status != 503 || r.Code() != "audit_unavailable" {
		t.Fatalf("request without audit: %d %s", r.Status, r.Body)
	}
	var n int
	env.Admin.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM airlock.access_requests) + (SELECT count(*) FROM airlock.approvals) * 10 + (SELECT count(*) FROM airlock.grants) * 100`).Scan(&n)
	if n != 1 {
		t.Fatalf("rows left behind: %d", n)
	}
}

func TestRevoke(t *testing.T) {
	f := newFlow(t)
	id := f.request(t, "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "1h"})
	r := f.decide("lead1@example.com", id, "approve")
	gid := r.JSON()["grant_id"]
	if strings.HasPrefix(f.firstEmail(t, "dev1@example.com"), "h:") {
		t.Fatalf("grant did not unmask: %s", r.Body)
	}
	revoke := func(email string, g any) apptest.Response {
		return f.Do("POST", f.approval, email, map[string]any{"grant_id": g, "decision": "revoke"})
	}
	if r := revoke("dev2@example.com", gid); r.Status != 403 {
		t.Fatalf("dev2 revoking: %d %s", r.Status, r.Body)
	}
	if r := revoke("lead1@example.com", 999999); r.Status != 404 {
		t.Fatalf("unknown grant: %d %s", r.Status, r.Body)
	}
	if r := revoke("lead2@example.com", gid); r.Status != 200 || r.JSON()["status"] != "revoked" {
		t.Fatalf("lead2 revoking: %d %s", r.Status, r.Body)
	}
	if got := f.firstEmail(t, "dev1@example.com"); !strings.HasPrefix(got, "h:") {
		t.Fatalf("after the revocation dev1 sees %q", got)
	}
	if r := revoke("lead2@example.com", gid); r.Status != 409 || r.Code() != "grant_not_active" {
		t.Fatalf("second revocation: %d %s", r.Status, r.Body)
	}
	var revoked bool
	for _, e := range f.AuditEvents(approval.EntryPoint) {
		if e.Event == audit.EventGrantRevoked && e.Actor == "lead2@example.com" {
			revoked = true
			// Like every entry, it names the request that caused it, to join other logs.
			if len(e.RequestID) != 16 {
				t.Errorf("grant.revoked: want the revoking request's request_id, got = %q", e.RequestID)
			}
		}
	}
	if !revoked {
		t.Fatalf("no grant.revoked by lead2 in the audit trail")
	}
}

// message is the message of an error answer, for the person.
func message(r interface{ JSON() map[string]any }) string {
	e, _ := r.JSON()["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

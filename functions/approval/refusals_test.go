package approval_test

import (
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/notify"
)

// TestDecisionRefusalsAreAudited sends every kind of refusal ApprovalCallback gives a
// verified person (API, web form, revocation) and finds each on the trail with its code;
// a request without a verified identity is the only one left off.
func TestDecisionRefusalsAreAudited(t *testing.T) {
	f := newFlow(t)
	id := f.request(t, "dev1@example.com", map[string]any{"role": "write_accounts", "reason": reason, "duration": "30m"})
	done := f.request(t, "dev2@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "30m"})
	r := f.decide("lead1@example.com", done, "approve")
	grant, _ := r.JSON()["grant_id"].(float64)
	if r.Status != 200 || grant == 0 {
		t.Fatalf("approving %s: %d %s", done, r.Status, r.Body)
	}
	_, leadToken := f.pageOf(t, "lead1@example.com")
	web := strings.TrimSuffix(f.approval, "/") + approval.WebPath
	tcs := []struct {
		desc   string
		email  string
		body   any
		form   string // sent to the web page instead
		status int
		code   string // "" for none recorded
	}{
		{desc: "no token", body: map[string]any{"request_id": id, "decision": "approve"}, status: 401},
		{desc: "not a member", email: "eve@evil.example", body: map[string]any{"request_id": id, "decision": "approve"}, status: 403, code: "not_a_member"},
		{desc: "self-approval", email: "dev1@example.com", body: map[string]any{"request_id": id, "decision": "approve"}, status: 403, code: "self_approval"},
		{desc: "not an approver", email: "dev2@example.com", body: map[string]any{"request_id": id, "decision": "approve"}, status: 403, code: "not_an_approver"},
		{desc: "unknown request", email: "lead1@example.com", body: map[string]any{"request_id": "ar_000000000000", "decision": "approve"}, status: 404, code: "request_not_found"},
		{desc: "already decided", email: "lead2@example.com", body: map[string]any{"request_id": done, "decision": "deny"}, status: 409, code: "request_decided"},
		{desc: "unknown decision", email: "lead1@example.com", body: map[string]any{"request_id": id, "decision": "maybe"}, status: 400, code: "invalid_decision"},
		{desc: "no request id", email: "lead1@example.com", body: map[string]any{"decision": "approve"}, status: 400, code: "request_id_required"},
		{desc: "grant id with approve", email: "lead1@example.com", body: map[string]any{"request_id": id, "decision": "approve", "grant_id": 3}, status: 400, code: "invalid_field"},
		{desc: "unknown field", email: "lead1@example.com", body: map[string]any{"request_id": id, "decision": "approve", "as": "sec1@example.com"}, status: 400, code: "unknown_field"},
		{desc: "not JSON", email: "lead1@example.com", body: `{"request_id":`, status: 400, code: "malformed_json"},
		{desc: "revoke without a grant", email: "lead1@example.com", body: map[string]any{"decision": "revoke"}, status: 400, code: "grant_id_required"},
		{desc: "revoke an unknown grant", email: "lead1@example.com", body: map[string]any{"decision": "revoke", "grant_id": 999999}, status: 404, code: "grant_not_found"},
		{desc: "revoke another's grant", email: "dev1@example.com", body: map[string]any{"decision": "revoke", "grant_id": int64(grant)}, status: 403, code: "not_an_approver"},
		{desc: "web form without a token", email: "lead1@example.com", form: form("request_id", id, "decision", "approve"), status: 403, code: "csrf"},
		{desc: "web form with another approver's token", email: "dev1@example.com", form: form("csrf", leadToken, "request_id", id, "decision", "approve"), status: 403, code: "csrf"},
		{desc: "web form unknown decision", email: "lead1@example.com", form: form("csrf", leadToken, "request_id", id, "decision", "maybe"), status: 400, code: "invalid_decision"},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			before := len(f.Env.AuditEventsOf(approval.EntryPoint, audit.EventDecisionRefused))
			var r apptest.Response
			if tc.form != "" {
				r = f.Do("POST", web, tc.email, tc.form, "Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = f.Do("POST", f.approval, tc.email, tc.body)
			}
			if r.Status != tc.status || (tc.form == "" && tc.code != "" && r.Code() != tc.code) {
				t.Fatalf("when %s, want = %d %s, got = %d %s", tc.desc, tc.status, tc.code, r.Status, r.Body)
			}
			got := f.Env.AuditEventsOf(approval.EntryPoint, audit.EventDecisionRefused)[before:]
			if tc.code == "" {
				if len(got) != 0 {
					t.Errorf("when %s (no verified identity), want nothing recorded, got = %+v", tc.desc, got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("when %s, want one %s entry, got = %+v", tc.desc, audit.EventDecisionRefused, got)
			}
			e := got[0]
			if e.Rule != tc.code || e.Actor != tc.email || e.Function != approval.EntryPoint || e.Message == "" {
				t.Errorf("when %s, want rule %s and actor %s with the message, got = %+v", tc.desc, tc.code, tc.email, e)
			}
			if rid, _ := r.JSON()["request_id"].(string); tc.form == "" && (rid == "" || e.RequestID != rid) {
				t.Errorf("when %s, want the entry's request_id to be the answer's %q, got = %q", tc.desc, rid, e.RequestID)
			}
		})
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.approvals WHERE request_id = $1`, id); n != 0 {
		t.Errorf("want no approval stored by the refusals, got = %d", n)
	}
}

// TestSlackRefusalsAreAudited: a callback whose signature verifies is Slack's word for
// who pressed; its refusals are on the trail as that user (or the approver it maps to).
func TestSlackRefusalsAreAudited(t *testing.T) {
	f := newSlackFlow(t)
	r := f.Do("POST", f.access, "dev1@example.com", map[string]any{"role": "write_accounts", "reason": reason, "duration": "30m"})
	id, _ := r.JSON()["request_id"].(string)
	tcs := []struct {
		desc, body, actor, code string
	}{
		{"an unmapped Slack user", slackBody("U0NOBODY", notify.ActionApprove, id), "slack:U0NOBODY", "unknown_slack_user"},
		{"an unknown action", slackBody("U0LEAD1", "airlock_escalate", id), "lead1@example.com", "unknown_action"},
		{"an unknown request", slackBody("U0LEAD1", notify.ActionApprove, "ar_000000000000"), "lead1@example.com", "request_not_found"},
		{"not a block action", "payload=%7B%7D", "slack:unknown", "malformed_payload"},
	}
	for _, tc := range tcs {
		before := len(f.Env.AuditEventsOf(approval.EntryPoint, audit.EventDecisionRefused))
		now := time.Now().Unix()
		r := f.callback(t, tc.body, now, sign(signingSecret, now, tc.body))
		if r.Code() != tc.code {
			t.Errorf("when Slack sends %s, want code %s, got = %d %s", tc.desc, tc.code, r.Status, r.Body)
		}
		got := f.Env.AuditEventsOf(approval.EntryPoint, audit.EventDecisionRefused)[before:]
		if len(got) != 1 || got[0].Rule != tc.code || got[0].Actor != tc.actor || got[0].Details["via"] != "slack" {
			t.Errorf("when Slack sends %s, want one refusal by %s with rule %s via slack, got = %+v", tc.desc, tc.actor, tc.code, got)
		}
	}
	// A callback whose signature does not verify names nobody: its alert is the record.
	before := len(f.Env.AuditEventsOf(approval.EntryPoint, audit.EventDecisionRefused))
	body := slackBody("U0LEAD1", notify.ActionApprove, id)
	now := time.Now().Unix()
	if r := f.callback(t, body, now, sign("not the secret", now, body)); r.Status != 401 {
		t.Errorf("when the signature is wrong, want = 401, got = %d %s", r.Status, r.Body)
	}
	if got := f.Env.AuditEventsOf(approval.EntryPoint, audit.EventDecisionRefused)[before:]; len(got) != 0 {
		t.Errorf("when the signature is wrong, want no decision.refused entry, got = %+v", got)
	}
}

package query_test

import (
	"net/http"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/audit"
)

// TestEveryAuthenticatedRefusalIsAudited: whatever is wrong with an authenticated
// request (its envelope, its JSON, its size, its sender not being a member), it is
// answered with its own error and recorded as a denied query.attempt; one that carries
// a forbidden statement raises security.forbidden_statement too. A request with no
// verified identity stays off the record (nobody to name).
func TestEveryAuthenticatedRefusalIsAudited(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tcs := []struct {
		desc      string
		email     string
		body      string
		status    int
		code      string
		forbidden bool
	}{
		{"negative max_rows", dev1, `{"sql": "DELETE FROM trades", "max_rows": -1}`, 400, "invalid_max_rows", true},
		{"unknown format", dev1, `{"sql": "DELETE FROM trades", "format": "xml"}`, 400, "invalid_format", true},
		{"write without a reason", dev1, `{"sql": "DELETE FROM trades", "mode": "write"}`, 400, "reason_required", true},
		{"unknown field first", dev1, `{"sneaky": 1, "sql": "DELETE FROM trades"}`, 400, "", true},
		{"field of the wrong type", dev1, `{"sql": "DROP TABLE trades", "max_rows": "all"}`, 400, "", true},
		{"bad JSON", dev1, `{"sql": "DELETE FROM trades"`, 400, "malformed_json", false},
		{"too large", dev1, `{"sql": "SELECT 1", "reason": "` + strings.Repeat("x", 70<<10) + `"}`, 413, "body_too_large", false},
		{"not a member", "eve@example.com", `{"sql": "DELETE FROM trades"}`, 403, "not_a_member", true},
		{"not a member, harmless", "eve@example.com", `{"sql": "SELECT 1"}`, 403, "not_a_member", false},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			r := h.do(http.MethodPost, h.token(tc.email), []byte(tc.body))
			if r.status != tc.status || (tc.code != "" && r.err().Code != tc.code) {
				t.Fatalf("when %s, want = %d %s, got = %s", tc.desc, tc.status, tc.code, r)
			}
			rid := r.requestID()
			attempts := h.alertsOf(audit.EventQueryAttempt, rid)
			if len(attempts) != 1 {
				t.Fatalf("when %s, want = one query.attempt for request %s, got = %d", tc.desc, rid, len(attempts))
			}
			a := attempts[0]
			if a["actor"] != tc.email || a["decision"] != string(audit.DecisionDenied) || a["error_class"] != r.err().Code {
				t.Errorf("when %s, want the attempt denied, by %s, error_class %s, got = %v", tc.desc, tc.email, r.err().Code, a)
			}
			if n := len(h.alertsOf(alerts.EventForbiddenStatement, rid)); (n == 1) != tc.forbidden || n > 1 {
				t.Errorf("when %s, want forbidden_statement alert = %v, got = %d alerts", tc.desc, tc.forbidden, n)
			}
		})
	}

	before := len(h.auditEntries())
	if r := h.do(http.MethodPost, "", []byte(`{"sql": "DELETE FROM trades"}`)); r.status != http.StatusUnauthorized {
		t.Fatalf("with no token, want = 401, got = %s", r)
	}
	if after := len(h.auditEntries()); after != before {
		t.Errorf("with no verified identity, want = no audit entry, got = %d new", after-before)
	}
}

package query_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

// A statement's entries say which sensitive columns a grant let it see in clear, so that
// an evidence report can show what an unmasked grant was used for.
func TestAuditRecordsUnmaskedColumns(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const q = "SELECT id, email, country FROM users ORDER BY id LIMIT 2"
	if r := h.query(dev1, q); r.status != http.StatusOK {
		t.Fatalf("before the grant: %d %s", r.status, r.body)
	}
	id := h.grant(dev1, "unmasked_users", time.Hour, true)
	if r := h.query(dev1, q); r.status != http.StatusOK {
		t.Fatalf("under the grant: %d %s", r.status, r.body)
	}
	results := h.entriesFor(audit.EventQueryResult)
	if len(results) != 2 {
		t.Fatalf("want 2 query.result entries, got = %d", len(results))
	}
	for i, want := range []struct {
		grants   string
		unmasked any
	}{{"<nil>", nil}, {fmt.Sprint([]any{float64(id)}), []any{"users.email"}}} {
		e := results[i]
		d, _ := e["details"].(map[string]any)
		if got := fmt.Sprint(e["grant_ids"]); got != want.grants {
			t.Errorf("statement %d: want grant_ids = %s, got = %s", i+1, want.grants, got)
		}
		if fmt.Sprint(d["unmasked_columns"]) != fmt.Sprint(want.unmasked) {
			t.Errorf("statement %d: want details.unmasked_columns = %v, got = %v", i+1, want.unmasked, d["unmasked_columns"])
		}
	}
}

// ExecuteQuery fails closed when Cloud KMS cannot certify a new chain: the instance's
// first request gets 503 audit_unavailable and nothing runs.
func TestAuditFailsClosedWhenKMSIsDown(t *testing.T) {
	for _, mode := range audittest.ChainStartFailures() {
		t.Run(mode.Desc, func(t *testing.T) {
			h := newHarness(t, harnessOptions{cloud: true, auditOpts: []audit.Option{audit.WithTimeout(auditTimeout)}})
			mode.Fail(h.fake)
			r := h.query(dev1, "SELECT 1")
			if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
				t.Errorf("when %s at the first request, want 503 audit_unavailable, got = %d %s", mode.Desc, r.status, r.body)
			}
			if n := len(h.fake.Payloads()); n != 0 {
				t.Errorf("when %s, want nothing recorded, got = %d entries", mode.Desc, n)
			}
			h.fake.Recover()
			if r := h.query(dev1, "SELECT 1"); r.status != http.StatusOK {
				t.Errorf("when KMS is back, want 200, got = %d %s", r.status, r.body)
			}
		})
	}
}

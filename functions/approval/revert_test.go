package approval_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/audit"
)

// dump is every row of a table as PostgreSQL prints it, in key order: equal dumps are the
// same bytes in every column.
func (f *flow) dump(t *testing.T, table string) string {
	t.Helper()
	var s string
	if err := f.Owner.QueryRow(context.Background(), `SELECT string_agg(t::text, E'\n' ORDER BY id) FROM public.`+table+` t`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *flow) revert(who string, body map[string]any) (int, map[string]any) {
	r := f.Do("POST", f.query, who, body)
	var m map[string]any
	json.Unmarshal(r.Body, &m)
	return r.Status, m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	if r, _ := e["rule"].(string); r != "" {
		return c + "/" + r
	}
	return c
}

// TestRevertApprovedUpdate is the test: an approved UPDATE of 20 rows, reverted,
// leaves the table byte for byte as before. Around it, who may see and who may apply the
// compensating statements, and that each write and revert is in the audit trail with its
// before-images masked.
func TestRevertApprovedUpdate(t *testing.T) {
	f := newFlow(t)
	const dev1, dev2, lead1, lead2 = "dev1@example.com", "dev2@example.com", "lead1@example.com", "lead2@example.com"
	id := f.request(t, dev1, map[string]any{"role": "write_accounts", "reason": "Client 42 asks to reset balances, ticket SUP-77", "duration": "30m"})
	for _, who := range []string{lead1, lead2} {
		if r := f.decide(who, id, "approve"); r.Status != http.StatusOK {
			t.Fatalf("approval by %s: %d %s", who, r.Status, r.Body)
		}
	}

	before := f.dump(t, "accounts")
	w := f.Do("POST", f.query, dev1, query.Request{Mode: "write", Reason: "SUP-77 reset balances of 20 accounts",
		SQL: `UPDATE accounts SET balance = 1.5, updated_at = '2031-01-01 00:00:00.123456+00' WHERE id BETWEEN 101 AND 120`})
	var wr struct {
		RequestID    string `json:"request_id"`
		RowsAffected int    `json:"rows_affected"`
		Committed    bool   `json:"committed"`
	}
	if json.Unmarshal(w.Body, &wr); w.Status != http.StatusOK || wr.RowsAffected != 20 || !wr.Committed {
		t.Fatalf("the approved write: want 20 rows committed, got = %d %s", w.Status, w.Body)
	}
	written := f.dump(t, "accounts")
	if written == before {
		t.Fatal("the write changed nothing")
	}

	// The write's audit entry carries each row's key and old values, balance masked.
	var images []any
	for _, e := range f.AuditEvents(query.EntryPoint) {
		if e.Event == audit.EventQueryResult && e.RequestID == wr.RequestID {
			images, _ = e.Details["before_images"].([]any)
		}
	}
	if len(images) != 20 {
		t.Fatalf("want 20 before-images in the write's query.result, got = %d", len(images))
	}
	first, _ := json.Marshal(images[0])
	if !strings.Contains(string(first), `"key":{"id":101}`) || !strings.Contains(string(first), `"balance":"[masked]"`) || !strings.Contains(string(first), `"updated_at":"2024-`) {
		t.Errorf("want the first before-image keyed id=101 with balance masked and the old updated_at, got = %s", first)
	}

	revertOf := map[string]any{"mode": "revert", "revert": wr.RequestID, "reason": "SUP-77 was the wrong client, undo"}
	dry := map[string]any{"mode": "revert", "revert": wr.RequestID, "reason": "SUP-77 was the wrong client, undo", "dry_run": true}

	// An approver without a write grant sees the statements, masked, and cannot apply them.
	st, m := f.revert(lead1, dry)
	stmts, _ := m["statements"].([]any)
	if st != http.StatusOK || len(stmts) != 20 || m["note"] == nil || m["committed"] != false {
		t.Fatalf("when an approver dry-runs the revert, want 20 statements and a note that they did not run, got = %d %v", st, m)
	}
	if s := stmts[0].(string); !strings.Contains(s, `"balance" = [masked]`) || !strings.Contains(s, `WHERE "id" = '101'`) {
		t.Errorf("want the approver's statement with the balance masked, got = %s", s)
	}
	if st, m := f.revert(lead1, revertOf); st != http.StatusForbidden || errCode(m) != "denied/no_write_grant" {
		t.Errorf("when an approver without a write grant applies, want = 403 no_write_grant, got = %d %v", st, m)
	}
	if st, m := f.revert(dev2, dry); st != http.StatusForbidden || errCode(m) != "denied/revert_not_allowed" {
		t.Errorf("when a developer with no grant and no approver role asks, want = 403 revert_not_allowed, got = %d %v", st, m)
	}

	// The writer's dry run runs the statements and rolls them back.
	if st, m := f.revert(dev1, dry); st != http.StatusOK || m["rows_affected"] != float64(20) || m["committed"] != false {
		t.Fatalf("when dev1 dry-runs the revert, want 20 rows, not committed, got = %d %v", st, m)
	}
	if f.dump(t, "accounts") != written {
		t.Fatal("a dry-run revert changed the table")
	}

	st, m = f.revert(dev1, revertOf)
	if st != http.StatusOK || m["rows_affected"] != float64(20) || m["committed"] != true || m["reverts"] != wr.RequestID {
		t.Fatalf("when dev1 reverts, want 20 rows committed reverting %s, got = %d %v", wr.RequestID, st, m)
	}
	if after := f.dump(t, "accounts"); after != before {
		t.Fatalf("after the revert, want accounts byte for byte as before the write, got a difference:\nbefore: %.300s\nafter:  %.300s", before, after)
	}
	revertID, _ := m["request_id"].(string)

	if st, m := f.revert(dev1, revertOf); st != http.StatusConflict || errCode(m) != "denied/already_reverted" {
		t.Errorf("when reverting the same write twice, want = 409 already_reverted, got = %d %v", st, m)
	}
	// The revert is a write like any other: it too can be undone, which redoes the original.
	if st, m := f.revert(dev1, map[string]any{"mode": "revert", "revert": revertID, "reason": "it was the right client after all"}); st != http.StatusOK {
		t.Fatalf("when reverting the revert, want = 200, got = %d %v", st, m)
	}
	if f.dump(t, "accounts") != written {
		t.Error("after reverting the revert, want the table as the original write left it")
	}

	// The trail has the revert's attempt, with the masked plan as its SQL, and its outcome.
	var attempt, result *audit.Entry
	for _, e := range f.AuditEvents(query.EntryPoint) {
		if e.RequestID == revertID {
			e := e
			switch e.Event {
			case audit.EventQueryAttempt:
				attempt = &e
			case audit.EventQueryResult:
				result = &e
			}
		}
	}
	if attempt == nil || result == nil {
		t.Fatalf("want the revert's attempt and result in the trail, got attempt = %v result = %v", attempt, result)
	}
	if attempt.Mode != "revert" || attempt.Actor != dev1 || strings.Count(attempt.SQL, "UPDATE") != 20 || !strings.Contains(attempt.SQL, "[masked]") || strings.Contains(attempt.SQL, "balance\" = '") {
		t.Errorf("want the revert's attempt with mode revert and the 20 statements, balances masked, got mode = %s sql = %.200s", attempt.Mode, attempt.SQL)
	}
	if result.Details["reverts"] != wr.RequestID || result.Rows != 20 {
		t.Errorf("want the revert's result to name the write it undid and 20 rows, got = %v rows = %d", result.Details, result.Rows)
	}
	if n := f.count(t, `SELECT count(*) FROM airlock.reverts WHERE request_id = $1 AND revert_request_id = $2 AND reverted_by = $3`, wr.RequestID, revertID, dev1); n != 1 {
		t.Errorf("want the revert recorded in airlock.reverts, got %d rows", n)
	}
	_ = approval.EntryPoint
}

package query_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/audit"
)

// committedWrite runs sql as a committed write of dev1 and returns its request id.
func (h *harness) committedWrite(sql string) string {
	h.t.Helper()
	r := h.post(dev1, query.Request{SQL: sql, Mode: "write", Reason: "ticket OPS-21 correct the rows"})
	if r.status != http.StatusOK || !r.write(h.t).Committed {
		h.t.Fatalf("write %q: want = 200 committed, got = %s", sql, r)
	}
	return r.requestID()
}

func (h *harness) revertOf(rid string, dry bool) response {
	return h.post(dev1, query.Request{Mode: "revert", Revert: rid, DryRun: dry, Reason: "ticket OPS-21 undo the correction"})
}

func TestRevertRefusals(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant(dev1, "write_accounts", time.Hour, true)
	h.grant(dev1, "write_withdrawals", time.Hour, true)

	t.Run("rows changed since the write", func(t *testing.T) {
		rid := h.committedWrite(`UPDATE accounts SET currency = 'XAU' WHERE id IN (201, 202, 203)`)
		// The application changes one of the rows afterwards.
		if _, err := h.owner.Exec(context.Background(), `UPDATE public.accounts SET updated_at = now() WHERE id = 202`); err != nil {
			t.Fatal(err)
		}
		before := h.checksum("accounts")
		r := h.revertOf(rid, false)
		if r.status != http.StatusConflict || r.err().Code != "revert_conflict" || !strings.Contains(r.err().Message, "id=202") || strings.Contains(r.err().Message, "id=201") {
			t.Errorf("when a row changed since the write, want = 409 revert_conflict naming id=202 only, got = %s", r)
		}
		if h.checksum("accounts") != before {
			t.Errorf("when the revert conflicts, want nothing changed, got accounts changed")
		}
		if n := h.scalar(`SELECT count(*)::text FROM airlock.reverts`); n != "0" {
			t.Errorf("when the revert conflicts, want it not marked reverted, got %s rows", n)
		}
	})

	t.Run("an INSERT would need a DELETE", func(t *testing.T) {
		// User 3 has no BTC account in the demo data. (Withdrawals, where this test used
		// to insert, are update-only since their destination stopped being writable.)
		rid := h.committedWrite(`INSERT INTO accounts (user_id, currency, balance, updated_at) VALUES (3, 'BTC', 0.5, now())`)
		r := h.revertOf(rid, true)
		if r.status != http.StatusUnprocessableEntity || r.err().Rule != "revert_needs_delete" || !strings.Contains(r.err().Message, `DELETE FROM "accounts" WHERE "id" = '`) {
			t.Errorf("when reverting an INSERT, want = 422 revert_needs_delete showing the DELETE, got = %s", r)
		}
	})

	t.Run("no such write", func(t *testing.T) {
		r := h.revertOf("0123456789abcdef", true)
		if r.status != http.StatusNotFound || r.err().Rule != "write_not_found" {
			t.Errorf("when reverting an unknown request, want = 404 write_not_found, got = %s", r)
		}
		// A read leaves nothing to revert either.
		read := h.query(dev1, `SELECT 1`)
		if r := h.revertOf(read.requestID(), true); r.status != http.StatusNotFound {
			t.Errorf("when reverting a read, want = 404, got = %s", r)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		tcs := []struct {
			body any
			code string
		}{
			{query.Request{Mode: "revert", Reason: "ticket OPS-21 undo it"}, "revert_required"},
			{query.Request{Mode: "revert", Revert: "0123456789ABCDEF", Reason: "ticket OPS-21 undo it"}, "revert_required"},
			{query.Request{Mode: "revert", Revert: "'; DROP TABLE x", Reason: "ticket OPS-21 undo it"}, "revert_required"},
			{query.Request{Mode: "revert", Revert: "0123456789abcdef", SQL: "UPDATE accounts SET currency = 'x' WHERE id = 1", Reason: "ticket OPS-21 undo it"}, "invalid_revert"},
			{query.Request{Mode: "revert", Revert: "0123456789abcdef"}, "reason_required"},
			{query.Request{SQL: "SELECT 1", Revert: "0123456789abcdef"}, "invalid_revert"},
		}
		for _, tc := range tcs {
			r := h.post(dev1, tc.body)
			if r.status != http.StatusBadRequest || r.err().Code != tc.code {
				b, _ := json.Marshal(tc.body)
				t.Errorf("when posting %s, want = 400 %s, got = %s", b, tc.code, r)
			}
		}
	})

	t.Run("refusals are audited", func(t *testing.T) {
		var rules []string
		for _, e := range h.entriesFor(audit.EventQueryAttempt) {
			if e["mode"] == "revert" && e["decision"] == "denied" {
				rules = append(rules, e["rule"].(string))
			}
		}
		// The bad envelopes too (finding 8 of issue 11): every authenticated request is on the record.
		want := "revert_needs_delete,write_not_found,write_not_found,revert_required,revert_required,revert_required,invalid_revert,reason_required"
		if got := strings.Join(rules, ","); got != want {
			t.Errorf("want each refused revert in the trail with its rule, got = %s", got)
		}
	})
}

// TestRevertFailsClosed: a revert whose outcome the trail cannot take is rolled back.
func TestRevertFailsClosed(t *testing.T) {
	h := newHarness(t, harnessOptions{cloud: true, auditOpts: []audit.Option{audit.WithTimeout(auditTimeout)}})
	h.grant(dev1, "write_accounts", time.Hour, true)
	rid := h.committedWrite(`UPDATE accounts SET currency = 'XAG' WHERE id IN (301, 302)`)
	written := h.checksum("accounts")
	h.fake.FailEventsWith(codes.Unavailable, audit.EventQueryResult)
	r := h.revertOf(rid, false)
	h.fake.Recover()
	if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
		t.Errorf("when the revert's outcome cannot be recorded, want = 503 audit_unavailable, got = %s", r)
	}
	if h.checksum("accounts") != written {
		t.Errorf("when the revert's outcome cannot be recorded, want it rolled back, got accounts changed")
	}
	if r := h.revertOf(rid, false); r.status != http.StatusOK || !r.write(t).Committed {
		t.Errorf("after the sink recovers, want the revert = 200 committed, got = %s", r)
	}
}

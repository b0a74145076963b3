package query_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/sqlguard"
)

// multipleCommands is the server's refusal of a Parse message holding several statements:
// proof that the statement went over the extended protocol.
const multipleCommands = "cannot insert multiple commands into a prepared statement"

// TestOneStatementPerRequestWithoutTheGuard: with the guard out of the way (as if it had
// let a second statement through), every path that sends a developer's SQL to the
// server (reads, EXPLAIN, writes, dry runs, reverts) sends it over the extended protocol,
// so the server itself refuses a string of several statements, and nothing changes.
func TestOneStatementPerRequestWithoutTheGuard(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant(dev1, "write_accounts", time.Hour, true)
	h.grant(dev1, "write_withdrawals", time.Hour, true)
	ctx := context.Background()
	handler := query.New(h.deps)
	const reason = "ticket OPS-7: protocol test"

	cases := []struct {
		desc string
		req  query.Request
		dec  sqlguard.Decision
	}{
		{"read with a second write", query.Request{},
			sqlguard.Decision{Kind: "select", Statement: `SELECT 1; UPDATE accounts SET balance = 0 WHERE id = 1`}},
		{"read that commits and writes", query.Request{},
			sqlguard.Decision{Kind: "select", Statement: `SELECT 1; COMMIT; UPDATE accounts SET balance = 0 WHERE id = 1`}},
		{"EXPLAIN with a second write", query.Request{},
			sqlguard.Decision{Kind: "explain", Statement: `EXPLAIN SELECT 1; COMMIT; UPDATE accounts SET balance = 0 WHERE id = 1`}},
		{"write of two UPDATEs", query.Request{Mode: "write", Reason: reason},
			sqlguard.Decision{Kind: "update", Target: "accounts", Statement: `UPDATE accounts SET balance = 0 WHERE id = 1; UPDATE accounts SET balance = 0 WHERE id = 2`}},
		{"write that commits and writes again", query.Request{Mode: "write", Reason: reason},
			sqlguard.Decision{Kind: "update", Target: "accounts", Statement: `UPDATE accounts SET balance = 0 WHERE id = 1; COMMIT; UPDATE withdrawals SET status = 'sent' WHERE id = 1`}},
		{"write that escapes its transaction", query.Request{Mode: "write", Reason: reason},
			sqlguard.Decision{Kind: "update", Target: "accounts", Statement: `UPDATE accounts SET balance = 0 WHERE id = 1; ROLLBACK; BEGIN; UPDATE accounts SET balance = 0 WHERE id = 2`}},
		{"dry run of two UPDATEs", query.Request{Mode: "write", DryRun: true, Reason: reason},
			sqlguard.Decision{Kind: "update", Target: "accounts", Statement: `UPDATE accounts SET balance = 0 WHERE id = 1; UPDATE accounts SET balance = 0 WHERE id = 2`}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			before := h.tableChecksums()
			dec := tc.dec
			dec.Allowed = true
			if dec.Target != "" {
				dec.Tables = []string{dec.Target}
			}
			w := handler.Unguarded(ctx, dev1, tc.req, &dec)
			r := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
			if r.status != http.StatusBadRequest || !strings.Contains(r.err().Message, multipleCommands) {
				t.Errorf("when the guard lets %q through, want = 400 with the server's %q, got = %s", dec.Statement, multipleCommands, r)
			}
			if after := h.tableChecksums(); !sameMaps(before, after) {
				t.Errorf("when the guard lets %q through, want every table unchanged, got a different checksum", dec.Statement)
			}
		})
	}

	t.Run("revert of two UPDATEs", func(t *testing.T) {
		before := h.tableChecksums()
		w := handler.UnguardedRevert(ctx, dev1, "accounts",
			`UPDATE accounts SET balance = 0 WHERE id = 1; UPDATE accounts SET balance = 0 WHERE id = 2`)
		r := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
		if r.status != http.StatusBadRequest || !strings.Contains(r.err().Message, multipleCommands) {
			t.Errorf("when a revert's statement holds two UPDATEs, want = 400 with the server's %q, got = %s", multipleCommands, r)
		}
		if after := h.tableChecksums(); !sameMaps(before, after) {
			t.Errorf("when a revert's statement holds two UPDATEs, want every table unchanged, got a different checksum")
		}
	})

	// The same layer runs a single statement: the refusals above are not a broken path.
	t.Run("one statement still runs", func(t *testing.T) {
		dec := sqlguard.Decision{Allowed: true, Kind: "update", Target: "accounts", Tables: []string{"accounts"},
			Statement: `UPDATE accounts SET balance = 7 WHERE id = 5`}
		w := handler.Unguarded(ctx, dev1, query.Request{Mode: "write", Reason: reason}, &dec)
		if w.Code != http.StatusOK || h.scalar(`SELECT balance::text FROM public.accounts WHERE id = 5`) != "7.00000000" {
			t.Errorf("when the layer runs one UPDATE, want = 200 and the balance 7, got = %d %s", w.Code, w.Body)
		}
		dec = sqlguard.Decision{Allowed: true, Kind: "select", Statement: `SELECT 41 + 1`}
		w = handler.Unguarded(ctx, dev1, query.Request{}, &dec)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"rows":[[42]]`) {
			t.Errorf("when the layer runs one SELECT, want = 200 with rows [[42]], got = %d %s", w.Code, w.Body)
		}
	})
}

func sameMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

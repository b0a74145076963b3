package query_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/migrate"
)

// TestReadStoppedByRevocationSaysSo: an approver revokes a grant while a read runs under
// it; the read is stopped, and the answer says the grant was revoked, by whom and when
// (403 grant_revoked), not that a connection was lost; the outcome is audited so. The
// test holds a lock the read waits for, so the revocation comes while it runs.
func TestReadStoppedByRevocationSaysSo(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: policyVariant(t, "lock_timeout: 3s", "lock_timeout: 5m", "statement_timeout: 30s", "statement_timeout: 5m")})
	ctx := context.Background()
	id := h.grant(dev1, "unmasked_users", time.Hour, true)

	// Revocation as ApprovalCallback does it: grants.Store.Revoke, as the approvals group.
	pool, err := db.Open(ctx, db.Config{URL: h.d.URL(migrate.GroupApprovals)})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := grants.New(pool, h.d.Roles.Group(migrate.GroupApprovals))
	rec, err := audit.NewFileRecorder(ctx, filepath.Join(t.TempDir(), "approvals.jsonl"),
		audit.WithFunction("ApprovalCallback"), audit.WithSigner(audittest.NewLocalSigner(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())

	for _, mode := range []string{"read", "dry-run write"} {
		t.Run(mode, func(t *testing.T) {
			req := query.Request{SQL: `SELECT email FROM users WHERE id = 1`}
			if mode != "read" {
				id = h.grant(dev1, "write_accounts", time.Hour, true)
				req = query.Request{SQL: `UPDATE accounts SET updated_at = now() WHERE id = 1`, Mode: "write", DryRun: true, Reason: "ticket OPS-5: revocation test"}
			}
			tx, err := h.owner.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `LOCK TABLE public.users, public.accounts IN ACCESS EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
			done := make(chan response, 1)
			go func() { done <- h.post(dev1, req) }()
			h.waitForBackend(ctx, done)

			revoked := make(chan error, 1)
			go func() { // another goroutine, as another function instance would
				_, err := store.Revoke(ctx, id, "lead1@example.com", rec, "ApprovalCallback", "0123456789abcdef")
				revoked <- err
			}()
			r := <-done
			if err := <-revoked; err != nil {
				t.Fatalf("revoking grant %d: %v", id, err)
			}
			tx.Rollback(ctx)

			if r.status != http.StatusForbidden || r.err().Code != "grant_revoked" {
				t.Fatalf("when the grant of a running %s is revoked, want = 403 grant_revoked, got = %s", mode, r)
			}
			endedAt := h.scalar(`SELECT to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM airlock.grants WHERE id = $1`, id)
			msg := r.err().Message
			for _, part := range []string{"grant " + h.scalar(`SELECT $1::bigint::text`, id), "lead1@example.com", endedAt} {
				if !strings.Contains(msg, part) {
					t.Errorf("when the grant of a running %s is revoked, want the message to name %q, got = %q", mode, part, msg)
				}
			}
			var rid struct {
				RequestID string `json:"request_id"`
			}
			json.Unmarshal(r.body, &rid)
			var audited bool
			for _, e := range h.entriesFor("query.result") {
				audited = audited || e["request_id"] == rid.RequestID && e["error_class"] == "grant_revoked"
			}
			if !audited {
				t.Errorf("when a %s is stopped by a revocation, want its query.result audited with error_class grant_revoked, got none", mode)
			}
		})
	}

	// A read that fails for another reason while grants are held is not called revoked.
	h.grant(dev1, "unmasked_users", time.Hour, true)
	if r := h.query(dev1, `SELECT 1/0`); r.err().Code == "grant_revoked" {
		t.Errorf("when a read fails by itself under a live grant, want its own error, got = %s", r)
	}
}

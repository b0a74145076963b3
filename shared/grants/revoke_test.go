package grants

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/migrate"
)

// spyRecorder runs before on each entry, then records it with the real recorder
// unless before failed.
type spyRecorder struct {
	Recorder
	before func(e audit.Entry) error
}

func (s *spyRecorder) Record(ctx context.Context, e audit.Entry) error {
	if err := s.before(e); err != nil {
		return err
	}
	return s.Recorder.Record(ctx, e)
}

// approvalsStore is the store ApprovalCallback revokes with, as the approvals group.
func approvalsStore(t *testing.T, e *env) *Store {
	t.Helper()
	pool, err := db.Open(context.Background(), db.Config{URL: e.d.URL(migrate.GroupApprovals)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return New(pool, e.d.Roles.Group(migrate.GroupApprovals))
}

// TestRevokeAuditsBeforeCommit: grant.revoked is recorded while the revocation is not
// yet committed (another connection still sees the grant active); when the trail cannot
// confirm it, nothing is revoked and the error says the trail is unavailable; without a
// recorder, Revoke refuses.
func TestRevokeAuditsBeforeCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	store := approvalsStore(t, e)
	const dev = "dev3@example.com"
	id := e.grant(t, dev, "write_accounts", time.Hour)
	e.sync(t, dev)

	t.Run("no recorder", func(t *testing.T) {
		if _, err := store.Revoke(ctx, id, "lead1@example.com", nil, "ApprovalCallback", "r1"); err == nil {
			t.Error("when revoking without a recorder, want an error, got = nil")
		}
		if st, _ := e.status(t, id); st != StatusActive {
			t.Errorf("when revoking without a recorder, want the grant active, got = %s", st)
		}
	})

	t.Run("trail down", func(t *testing.T) {
		down := &spyRecorder{Recorder: e.recorder(t), before: func(audit.Entry) error {
			return fmt.Errorf("writing the entry: %w", audit.ErrUnavailable)
		}}
		rv, err := store.Revoke(ctx, id, "lead1@example.com", down, "ApprovalCallback", "r2")
		if !errors.Is(err, audit.ErrUnavailable) || rv != nil {
			t.Fatalf("when the trail is down, want no revocation and an error wrapping audit.ErrUnavailable, got = %+v, %v", rv, err)
		}
		if st, by := e.status(t, id); st != StatusActive || by != "" {
			t.Errorf("when the trail is down, want the grant active and not ended, got = %s ended by %q", st, by)
		}
		if !e.holds(t, dev, "write_accounts") {
			t.Error("when the trail is down, want the developer to keep the capability (the revocation rolled back), got = not held")
		}
		if n := e.entries(t, audit.EventGrantRevoked)[id]; n != 0 {
			t.Errorf("when the trail is down, want no grant.revoked entry, got = %d", n)
		}
	})

	t.Run("recorded before commit", func(t *testing.T) {
		var seen []string
		spy := &spyRecorder{Recorder: e.recorder(t), before: func(en audit.Entry) error {
			st, _ := e.status(t, id) // another connection: only what is committed
			seen = append(seen, en.Event+" while "+st)
			return nil
		}}
		rv, err := store.Revoke(ctx, id, "lead1@example.com", spy, "ApprovalCallback", "r3")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{audit.EventGrantRevoked + " while " + StatusActive}; fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("want the entries recorded before COMMIT, got = %q, want = %q", seen, want)
		}
		if st, by := e.status(t, id); st != StatusRevoked || by != "lead1@example.com" || rv.Grant.Status != StatusRevoked {
			t.Errorf("after the revocation, want the grant revoked by lead1, got = %s by %q (returned %s)", st, by, rv.Grant.Status)
		}
		if n := e.entries(t, audit.EventGrantRevoked)[id]; n != 1 {
			t.Errorf("want 1 grant.revoked entry, got = %d", n)
		}
	})
}

// TestCreate: a grant created in a transaction that rolls back leaves no grant and no
// capability; committed, it is active, its fields filled, and the role holds it.
func TestCreate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	store := approvalsStore(t, e)
	const dev = "dev4@example.com"
	boom := errors.New("the audit hook failed")
	newGrant := func() *Grant {
		return &Grant{Grantee: dev, Role: "unmasked_users", Capabilities: []string{"unmasked_users"}}
	}

	g := newGrant()
	err := db.InRole(ctx, store.pool, store.role, func(tx pgx.Tx) error {
		if _, err := Create(ctx, tx, g, time.Hour); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want the transaction to fail with %v, got = %v", boom, err)
	}
	var n int
	if err := e.admin.QueryRow(ctx, `SELECT count(*) FROM airlock.grants WHERE grantee = $1`, dev).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 || e.holds(t, dev, "unmasked_users") {
		t.Errorf("after a rolled-back creation, want no grant and no capability, got = %d grants, held %v", n, e.holds(t, dev, "unmasked_users"))
	}

	g = newGrant()
	var dbRole string
	err = db.InRole(ctx, store.pool, store.role, func(tx pgx.Tx) (err error) {
		dbRole, err = Create(ctx, tx, g, time.Hour)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if g.ID == 0 || g.Status != StatusActive || g.ExpiresAt.Sub(g.StartsAt) != time.Hour || dbRole == "" {
		t.Errorf("after Create, want id, status active, one hour and the database role filled, got = %+v, role %q", g, dbRole)
	}
	var request *string
	if err := e.admin.QueryRow(ctx, `SELECT request_id FROM airlock.grants WHERE id = $1`, g.ID).Scan(&request); err != nil {
		t.Fatal(err)
	}
	if request != nil {
		t.Errorf("a grant no request asked for: want request_id NULL, got = %q", *request)
	}
	if !e.holds(t, dev, "unmasked_users") {
		t.Error("after a committed creation, want the developer's role to hold the capability, got = not held")
	}

	grantee, role, err := store.Owner(ctx, g.ID)
	if err != nil || grantee != dev || role != "unmasked_users" {
		t.Errorf("Owner(%d) = %q, %q, %v; want %q, unmasked_users", g.ID, grantee, role, err, dev)
	}
	if _, _, err := store.Owner(ctx, g.ID+1000); !errors.Is(err, ErrNotFound) {
		t.Errorf("Owner of a grant that does not exist: want ErrNotFound, got = %v", err)
	}
}

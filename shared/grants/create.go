package grants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/db"
)

// ErrNotFound is returned by Store.Owner for a grant that does not exist.
var ErrNotFound = errors.New("grants: no such grant")

// Create inserts g, starting now and lasting d, inside tx (the transaction of the
// approval that reaches the threshold), and makes g.Grantee's database role hold exactly
// the capabilities of their active grants, this one included (airlock.sync_developer).
// It fills g's ID, StartsAt, ExpiresAt and Status, and returns the grantee's database
// role. Nothing of it is visible before tx commits, and nothing of it remains if tx
// rolls back.
func Create(ctx context.Context, tx pgx.Tx, g *Grant, d time.Duration) (dbRole string, err error) {
	var request *string // NULL, not '', for a grant no request asked for
	if g.RequestID != "" {
		request = &g.RequestID
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO airlock.grants (request_id, grantee, role, breakglass, capabilities, starts_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6::double precision / 1e9))
		RETURNING id, starts_at, expires_at, status`,
		request, g.Grantee, g.Role, g.BreakGlass, g.Capabilities, int64(d)).Scan(&g.ID, &g.StartsAt, &g.ExpiresAt, &g.Status)
	if err != nil {
		return "", fmt.Errorf("grants: creating %s's grant of %s: %w", g.Grantee, g.Role, err)
	}
	if err := tx.QueryRow(ctx, `SELECT airlock.sync_developer($1)`, g.Grantee).Scan(&dbRole); err != nil {
		return "", fmt.Errorf("grants: giving %s the capabilities of grant %d: %w", g.Grantee, g.ID, err)
	}
	return dbRole, nil
}

// Recent lists email's grants that started within the last 30 days, newest first (at
// most 200), inside tx. A grant past expires_at that the sweeper has not marked yet is
// listed as expired.
func Recent(ctx context.Context, tx pgx.Tx, email string) ([]Grant, error) {
	rows, err := tx.Query(ctx, `
		SELECT id, coalesce(request_id, ''), grantee, role, breakglass, capabilities, starts_at, expires_at,
		       CASE WHEN status = 'active' AND expires_at <= now() THEN 'expired' ELSE status END
		  FROM airlock.grants
		 WHERE grantee = $1 AND starts_at > now() - interval '30 days'
		 ORDER BY starts_at DESC LIMIT 200`, email)
	if err != nil {
		return nil, fmt.Errorf("grants: loading %s's recent grants: %w", email, err)
	}
	out, err := pgx.CollectRows(rows, scanGrant)
	if err != nil {
		return nil, fmt.Errorf("grants: loading %s's recent grants: %w", email, err)
	}
	return out, nil
}

// History summarises, for reviewers, email's grants of the last 30 days, newest first
// (at most 20), inside tx: "role (YYYY-MM-DD, status)", the date the grant started, in UTC.
func History(ctx context.Context, tx pgx.Tx, email string) ([]string, error) {
	rows, err := tx.Query(ctx, `
		SELECT role || ' (' || to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ', ' || status || ')'
		  FROM airlock.grants
		 WHERE grantee = $1 AND starts_at > now() - interval '30 days'
		 ORDER BY starts_at DESC LIMIT 20`, email)
	if err != nil {
		return nil, fmt.Errorf("grants: loading %s's history: %w", email, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("grants: loading %s's history: %w", email, err)
	}
	return out, nil
}

// Owner returns the grantee and role of a grant, whatever its status, for deciding who
// may revoke it. It returns an error wrapping ErrNotFound when there is no such grant.
func (s *Store) Owner(ctx context.Context, grantID int64) (grantee, role string, err error) {
	err = db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT grantee, role FROM airlock.grants WHERE id = $1`, grantID).Scan(&grantee, &role)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", fmt.Errorf("%w: grant %d", ErrNotFound, grantID)
	}
	if err != nil {
		return "", "", fmt.Errorf("grants: loading grant %d: %w", grantID, err)
	}
	return grantee, role, nil
}

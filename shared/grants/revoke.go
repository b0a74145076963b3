package grants

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
)

// ErrNotActive is returned by Revoke for a grant that does not exist or has already ended.
var ErrNotActive = errors.New("grants: no such active grant")

// Revocation is what Revoke did.
type Revocation struct {
	Grant      Grant `json:"grant"`
	Terminated int   `json:"terminated_sessions"`
}

// Revoke ends an active grant now, on behalf of by (an approver's or the grantee's
// e-mail): the grant is marked revoked with ended_at and ended_by, the developer's role
// loses its capabilities, every session running under it is terminated, and rec records
// session.terminated (when sessions were ended) and grant.revoked, as function, for the
// request rid, all in one transaction and the entries before COMMIT. Sessions are
// terminated again after COMMIT, so that none started under the grant while the
// revocation was being committed survives it.
//
// It returns ErrNotActive when the grant does not exist or has already ended. When rec
// cannot confirm an entry, the revocation is rolled back and the error wraps
// audit.ErrUnavailable; the sessions stay terminated. When only the second round of
// terminations fails, the revocation is committed: Revoke returns it with the error.
func (s *Store) Revoke(ctx context.Context, grantID int64, by string, rec Recorder, function, rid string) (*Revocation, error) {
	if rec == nil {
		return nil, errors.New("grants: a revocation needs an audit recorder")
	}
	var (
		rv       *Revocation
		auditErr error
	)
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			UPDATE airlock.grants g SET status = 'revoked', ended_at = now(), ended_by = $2
			 WHERE g.id = $1 AND g.status = 'active'
			RETURNING `+grantColumnsG, grantID, by)
		if err != nil {
			return fmt.Errorf("grants: loading grant %d: %w", grantID, err)
		}
		found, err := pgx.CollectRows(rows, scanGrant)
		if err != nil {
			return fmt.Errorf("grants: loading grant %d: %w", grantID, err)
		}
		if len(found) == 0 {
			return ErrNotActive
		}
		g := found[0]
		counts, err := endAccess(ctx, tx, found)
		if err != nil {
			return err
		}
		rv = &Revocation{Grant: g, Terminated: counts[0]}
		if err := recordEnd(ctx, rec, &g, counts[0], audit.EventGrantRevoked, by, function, rid); err != nil {
			auditErr = err
			return err
		}
		return nil
	})
	if auditErr != nil {
		return nil, fmt.Errorf("grants: grant %d was not revoked: %w", grantID, auditErr)
	}
	if err != nil {
		return nil, err
	}
	err = db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT airlock.terminate_grant_sessions($1)`, []int64{grantID}).Scan(&n); err != nil {
			return err
		}
		rv.Terminated += n
		return nil
	})
	if err != nil {
		// Committed: the grant is revoked and its role synced; report, do not undo.
		return rv, fmt.Errorf("grants: grant %d revoked, but ending late sessions failed: %w", grantID, err)
	}
	rv.Terminated += s.endOnReplica(ctx, grantID)
	return rv, nil
}

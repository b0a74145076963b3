package grants

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/db"
)

// WithReplica makes s end, on the read replica too, the sessions running under each
// grant it expires (Sweep) or revokes (Revoke), after ending them on the primary: the
// query function runs reads on the replica when there is one, and terminating backends
// on the primary does not reach another instance's. It returns s.
//
// The replica has the primary's roles and functions (replication copies them), so the
// same airlock.terminate_grant_sessions ends them there, as the same group role.
func (s *Store) WithReplica(replica *db.Pool) *Store {
	s.replica = replica
	return s
}

// endOnReplica ends the replica's sessions running under grant id and returns how many
// it ended. The grant's end is already committed on the primary, and the reads still
// running on the replica end at the grant's expiry anyway (the query function holds every
// request to it); so a failure here is logged, not returned.
func (s *Store) endOnReplica(ctx context.Context, id int64) int {
	if s.replica == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var n int
	err := db.InRole(ctx, s.replica, s.role, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT airlock.terminate_grant_sessions($1)`, []int64{id}).Scan(&n)
	})
	if err != nil {
		slog.ErrorContext(ctx, "grants: ending sessions on the read replica", "grant_id", id, "error", err)
		return 0
	}
	return n
}

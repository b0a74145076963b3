// Package grants is Airlock's store of grants, the time-limited capabilities approvals
// create, kept in the airlock schema. It is the one writer of airlock.grants (Create,
// Revoke, Sweep) and the functions' one caller of airlock.sync_developer. The database is
// the source of truth: a developer's database role holds exactly the capability roles of
// their active, unexpired grants, and this package keeps it that way whenever a grant
// starts or ends, or it notices one that has run out before the sweeper did.
package grants

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/db"
)

// Grant statuses.
const (
	StatusActive  = "active"
	StatusExpired = "expired"
	StatusRevoked = "revoked"
)

// A Grant is one approved, time-limited role.
type Grant struct {
	ID           int64     `json:"grant_id"`
	RequestID    string    `json:"request_id,omitempty"`
	Grantee      string    `json:"grantee"`
	Role         string    `json:"role"`
	BreakGlass   bool      `json:"breakglass"`
	Capabilities []string  `json:"capabilities"`
	StartsAt     time.Time `json:"starts_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	Status       string    `json:"status"`
}

// A Session is what the query function needs to know about a developer right now.
type Session struct {
	Email  string
	DBRole string    // the developer's database role, which the query runs as
	Now    time.Time // the database's clock, which decides expiry
	Grants []Grant   // active and unexpired at Now
}

// Roles lists the role names of the session's grants.
func (s *Session) Roles() []string {
	out := make([]string, len(s.Grants))
	for i, g := range s.Grants {
		out[i] = g.Role
	}
	return out
}

// IDs lists the ids of the session's grants.
func (s *Session) IDs() []int64 {
	out := make([]int64, len(s.Grants))
	for i, g := range s.Grants {
		out[i] = g.ID
	}
	return out
}

// Deadline is the earliest expiry among the session's grants, or the zero time when it
// holds none: no statement may outlive the access it relies on.
func (s *Session) Deadline() time.Time {
	var d time.Time
	for _, g := range s.Grants {
		if d.IsZero() || g.ExpiresAt.Before(d) {
			d = g.ExpiresAt
		}
	}
	return d
}

// A Store reads and writes grants as one function's database group role.
type Store struct {
	pool    *db.Pool
	role    string
	replica *db.Pool // where reads run too, when there is a replica (replica.go)
}

// New returns a Store that acts as role (the calling function's group role).
func New(pool *db.Pool, role string) *Store { return &Store{pool: pool, role: role} }

// Session loads the developer's database role and active grants. When a grant has
// expired but is still marked active, or the developer has no role yet, it first brings
// the database role's memberships in line, so the database never honours an expired grant
// even when the sweeper is late.
func (s *Store) Session(ctx context.Context, email string) (*Session, error) {
	sess := &Session{Email: email}
	stale, err := s.load(ctx, sess)
	if err != nil {
		return nil, err
	}
	if sess.DBRole != "" && !stale {
		return sess, nil
	}
	err = db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT airlock.sync_developer($1)`, email).Scan(&sess.DBRole); err != nil {
			return fmt.Errorf("grants: syncing %s's database role: %w", email, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// load reads the developer and their grants in one round trip: it runs on every query.
func (s *Store) load(ctx context.Context, sess *Session) (stale bool, err error) {
	var all []Grant
	b := &pgx.Batch{}
	b.Queue("BEGIN READ ONLY")
	b.Queue("SET LOCAL ROLE " + pgx.Identifier{s.role}.Sanitize())
	b.Queue(`SELECT now(), coalesce((SELECT db_role FROM airlock.developers WHERE email = $1), '')`, sess.Email).
		QueryRow(func(row pgx.Row) error { return row.Scan(&sess.Now, &sess.DBRole) })
	b.Queue(`
		SELECT id, coalesce(request_id, ''), grantee, role, breakglass, capabilities, starts_at, expires_at, status
		  FROM airlock.grants
		 WHERE grantee = $1 AND status = 'active' AND starts_at <= now()
		 ORDER BY expires_at, id`, sess.Email).
		Query(func(rows pgx.Rows) error {
			var err error
			all, err = pgx.CollectRows(rows, scanGrant)
			return err
		})
	b.Queue("COMMIT")
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("grants: loading %s's grants: %w", sess.Email, err)
	}
	for _, g := range all {
		if g.ExpiresAt.After(sess.Now) {
			sess.Grants = append(sess.Grants, g)
		} else {
			stale = true
		}
	}
	return stale, nil
}

func scanGrant(row pgx.CollectableRow) (Grant, error) {
	var g Grant
	err := row.Scan(&g.ID, &g.RequestID, &g.Grantee, &g.Role, &g.BreakGlass, &g.Capabilities, &g.StartsAt, &g.ExpiresAt, &g.Status)
	return g, err
}

// An Ending is a grant that is no longer in force, with who ended it and when.
type Ending struct {
	Grant
	EndedBy string     // who revoked it, or the sweeper; "" while it is past expires_at but not yet marked
	EndedAt *time.Time // when it was marked revoked or expired; nil while not yet marked
}

// Ended returns those of the grants ids of email that are no longer in force (revoked,
// expired, or past expires_at), in the order they ended. A statement stopped by the end
// of a grant asks it why: it first resyncs email's role, which waits for a transaction
// ending one of email's grants to finish (that transaction holds the same per-developer
// lock from before it stops any session until it commits, see endAccess), so the answer
// sees the revocation or expiry that stopped the statement.
func (s *Store) Ended(ctx context.Context, email string, ids []int64) ([]Ending, error) {
	var out []Ending
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT airlock.sync_developer($1)`, email); err != nil {
			return err
		}
		// A new statement, so a new snapshot: it sees what the transaction waited for committed.
		rows, err := tx.Query(ctx, `
			SELECT `+grantColumnsG+`, coalesce(g.ended_by, ''), g.ended_at
			  FROM airlock.grants g
			 WHERE g.id = ANY ($1) AND (g.status <> 'active' OR g.expires_at <= now())
			 ORDER BY coalesce(g.ended_at, g.expires_at), g.id`, ids)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Ending, error) {
			var e Ending
			err := row.Scan(&e.ID, &e.RequestID, &e.Grantee, &e.Role, &e.BreakGlass, &e.Capabilities, &e.StartsAt, &e.ExpiresAt, &e.Status, &e.EndedBy, &e.EndedAt)
			return e, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("grants: loading ended grants of %s: %w", email, err)
	}
	return out, nil
}

// LastEnded returns the most recently ended (or run-out) grant of email, so that a
// refusal can say when access ended. It returns nil when there is none.
func (s *Store) LastEnded(ctx context.Context, email string) (*Grant, error) {
	var g *Grant
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, coalesce(request_id, ''), grantee, role, breakglass, capabilities, starts_at, expires_at, status
			  FROM airlock.grants
			 WHERE grantee = $1 AND (status <> 'active' OR expires_at <= now())
			 ORDER BY coalesce(ended_at, expires_at) DESC
			 LIMIT 1`, email)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, scanGrant)
		if err != nil {
			return err
		}
		if len(found) == 1 {
			g = &found[0]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("grants: loading last grant: %w", err)
	}
	return g, nil
}

package grants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/outbox"
)

// EventGrantExpiring is the event of the notification (not an audit entry) that a
// grant ends within ReminderWindow.
const EventGrantExpiring = "grant.expiring"

// Sweep defaults.
const (
	DefaultSweepBatch = 500              // grants (and reminders) per run
	ReminderWindow    = 10 * time.Minute // developers are reminded once this long before a grant ends
	SweeperActor      = "sweeper"        // ended_by of grants the sweeper expires
)

// A Recorder writes audit entries; *audit.Recorder is one.
type Recorder interface {
	Record(ctx context.Context, e audit.Entry) error
}

// SweepOptions configures one Sweep run.
type SweepOptions struct {
	Audit     Recorder // required: every expiry is recorded before it is committed
	Batch     int      // at most this many grants and reminders each; DefaultSweepBatch if 0
	Function  string   // audit entries' function, e.g. SweepExpired
	RequestID string   // audit entries' request id

	// beforeCommit, for tests, runs inside each grant's transaction just before COMMIT.
	beforeCommit func(ctx context.Context, tx pgx.Tx, g Grant) error
}

// SweepResult counts what one run did. Remaining is how many grants were still due when
// the run finished (left for the next run, or being handled by a concurrent one).
type SweepResult struct {
	ExpiredGrants      int `json:"expired_grants"`
	TerminatedSessions int `json:"terminated_sessions"`
	Reminders          int `json:"reminders"`
	Remaining          int `json:"remaining"`
}

// Sweep ends the grants that have run out (past expires_at) and reminds developers whose
// grant ends within ReminderWindow, once. Pending requests past their deadline are the
// requests package's (requests.Store.Expire).
//
// Each grant is expired in its own transaction: lock it (FOR UPDATE SKIP LOCKED, so
// concurrent sweepers share the work and never expire a grant twice), mark it expired,
// bring the developer's database role in line (airlock.sync_developer), end every backend
// still running under it (airlock.terminate_grant_sessions — a side effect that does not
// wait for COMMIT; ending it again on a rerun is harmless), record the audit entries, and
// commit. A crash at any point leaves the grant fully active or fully expired.
//
// When the audit trail fails, the grant's transaction is rolled back (so nothing is
// marked expired without its entry) and the run stops with an error wrapping
// audit.ErrUnavailable. Access still ends: the sessions were already terminated, and the
// developer's role is resynced in a transaction of its own, which drops the capability
// because sync_developer ignores grants past expires_at whatever their status.
//
// The result is returned with the error, counting what was done before it.
func (s *Store) Sweep(ctx context.Context, opts SweepOptions) (SweepResult, error) {
	var res SweepResult
	if opts.Audit == nil {
		return res, errors.New("grants: sweep needs an audit recorder")
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultSweepBatch
	}
	for res.ExpiredGrants < opts.Batch {
		g, n, err := s.expireOne(ctx, opts)
		if err != nil {
			return res, err
		}
		if g == nil {
			break
		}
		res.ExpiredGrants++
		res.TerminatedSessions += n
	}
	var err error
	if res.Reminders, err = s.remind(ctx, opts); err != nil {
		return res, err
	}
	err = db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM airlock.grants WHERE status = 'active' AND expires_at <= now()`).Scan(&res.Remaining)
	})
	if err != nil {
		return res, fmt.Errorf("grants: counting what remains due: %w", err)
	}
	return res, nil
}

// expireOne expires the next due grant nobody else is working on. It returns nil when
// there is none.
func (s *Store) expireOne(ctx context.Context, opts SweepOptions) (*Grant, int, error) {
	var (
		g          *Grant
		terminated int
		auditErr   error
	)
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		// Lock and mark in one statement; SKIP LOCKED leaves grants another sweeper holds.
		rows, err := tx.Query(ctx, `
			UPDATE airlock.grants g
			   SET status = 'expired', ended_at = now(), ended_by = $1
			  FROM (SELECT id FROM airlock.grants
			         WHERE status = 'active' AND expires_at <= now()
			         ORDER BY expires_at, id
			         LIMIT 1
			           FOR UPDATE SKIP LOCKED) due
			 WHERE g.id = due.id
			RETURNING `+grantColumnsG, SweeperActor)
		if err != nil {
			return fmt.Errorf("grants: expiring grants: %w", err)
		}
		found, err := pgx.CollectRows(rows, scanGrant)
		if err != nil {
			return fmt.Errorf("grants: expiring grants: %w", err)
		}
		if len(found) == 0 {
			return nil
		}
		g = &found[0]
		n, err := endAccess(ctx, tx, g)
		if err != nil {
			return err
		}
		terminated = n
		if err := recordEnd(ctx, opts.Audit, g, n, audit.EventGrantExpired, SweeperActor, opts.Function, opts.RequestID); err != nil {
			auditErr = err
			return err
		}
		if opts.beforeCommit != nil {
			if err := opts.beforeCommit(ctx, tx, *g); err != nil {
				return err
			}
		}
		return nil
	})
	if auditErr != nil {
		s.resync(ctx, g.Grantee)
		return nil, 0, fmt.Errorf("grants: grant %d was not marked expired: %w", g.ID, auditErr)
	}
	if err != nil {
		return nil, 0, err
	}
	if g != nil {
		terminated += s.endOnReplica(ctx, g.ID)
	}
	return g, terminated, nil
}

// endAccess brings g's grantee's role in line with g (already marked ended in tx), then
// terminates the sessions running under g, in that order and in one round trip:
// sync_developer takes the grantee's lock, held until tx ends, before any session is
// stopped, so a stopped statement can wait on that lock and then see why (Store.Ended).
func endAccess(ctx context.Context, tx pgx.Tx, g *Grant) (int, error) {
	var n int
	b := &pgx.Batch{}
	b.Queue(`SELECT airlock.sync_developer($1)`, g.Grantee)
	b.Queue(`SELECT airlock.terminate_grant_sessions($1)`, []int64{g.ID}).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("grants: ending access of grant %d: %w", g.ID, err)
	}
	return n, nil
}

// recordEnd writes session.terminated (when sessions were ended) and then the grant's
// own event. Both come before COMMIT: the first describes what has already happened, the
// second what is about to be committed.
func recordEnd(ctx context.Context, rec Recorder, g *Grant, terminated int, event, by, function, rid string) error {
	if terminated > 0 {
		err := rec.Record(ctx, audit.Entry{
			Event:           audit.EventSessionTerminated,
			Severity:        audit.SeverityNotice,
			Actor:           by,
			Function:        function,
			RequestID:       rid,
			GrantIDs:        []int64{g.ID},
			AccessRequestID: g.RequestID,
			Message:         fmt.Sprintf("ended %d session(s) of %s running under grant %d", terminated, g.Grantee, g.ID),
			Details:         map[string]any{"grantee": g.Grantee, "sessions": terminated, "reason": event},
		})
		if err != nil {
			return err
		}
	}
	return rec.Record(ctx, audit.Entry{
		Event:           event,
		Severity:        audit.SeverityNotice,
		Actor:           by,
		Function:        function,
		RequestID:       rid,
		GrantIDs:        []int64{g.ID},
		AccessRequestID: g.RequestID,
		Message:         fmt.Sprintf("grant %d (%s) of %s %s", g.ID, g.Role, g.Grantee, g.Status),
		Details: map[string]any{
			"grantee":             g.Grantee,
			"role":                g.Role,
			"capabilities":        g.Capabilities,
			"breakglass":          g.BreakGlass,
			"expires_at":          g.ExpiresAt.UTC().Format(time.RFC3339),
			"terminated_sessions": terminated,
		},
	})
}

// resync brings email's role in line in a transaction of its own, best effort: it runs
// only after a failure, when the grant's own transaction was rolled back.
func (s *Store) resync(ctx context.Context, email string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT airlock.sync_developer($1)`, email)
		return err
	})
}

// remind tells developers whose grant ends within ReminderWindow, once per grant.
// Reminders are notifications, not audited actions: they go out in one transaction.
func (s *Store) remind(ctx context.Context, opts SweepOptions) (int, error) {
	n := 0
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH due AS (
				SELECT id FROM airlock.grants
				 WHERE status = 'active' AND reminded_at IS NULL
				   AND starts_at <= now() AND expires_at > now() AND expires_at <= now() + $1 * interval '1 second'
				 ORDER BY expires_at, id
				 LIMIT $2
				   FOR UPDATE SKIP LOCKED)
			UPDATE airlock.grants g SET reminded_at = now()
			  FROM due WHERE g.id = due.id
			RETURNING `+grantColumnsG, int64(ReminderWindow/time.Second), opts.Batch)
		if err != nil {
			return fmt.Errorf("grants: finding grants to remind: %w", err)
		}
		due, err := pgx.CollectRows(rows, scanGrant)
		if err != nil {
			return fmt.Errorf("grants: finding grants to remind: %w", err)
		}
		for _, g := range due {
			left := time.Until(g.ExpiresAt).Round(time.Minute)
			if left < time.Minute {
				left = time.Minute
			}
			err := outbox.Enqueue(ctx, tx, outbox.Message{
				Channel: outbox.ChannelRequester, Recipient: g.Grantee, Event: EventGrantExpiring,
				Text: fmt.Sprintf("Your grant %d (%s) ends at %s, in about %s; running statements will be stopped then. Request access again if you need more time.",
					g.ID, g.Role, g.ExpiresAt.UTC().Format(time.RFC3339), left),
				RequestID: g.RequestID, Role: g.Role, GrantID: g.ID, Status: g.Status,
				ExpiresAt: g.ExpiresAt.UTC().Format(time.RFC3339),
			})
			if err != nil {
				return err
			}
		}
		n = len(due)
		return nil
	})
	return n, err
}

// grantColumnsG are the columns scanGrant reads, of airlock.grants aliased g.
const grantColumnsG = `g.id, coalesce(g.request_id, ''), g.grantee, g.role, g.breakglass, g.capabilities, g.starts_at, g.expires_at, g.status`

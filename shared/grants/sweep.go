package grants

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
	DefaultSweepTx    = 100              // grants expired per transaction
	ReminderWindow    = 10 * time.Minute // developers are reminded once this long before a grant ends
	SweeperActor      = "sweeper"        // ended_by of grants the sweeper expires
)

// A Recorder writes audit entries; *audit.Recorder is one.
type Recorder interface {
	Record(ctx context.Context, e audit.Entry) error
}

// SweepOptions configures one Sweep run.
type SweepOptions struct {
	Audit Recorder // required: every expiry is recorded before it is committed
	Batch int      // at most this many grants, requests and reminders each; DefaultSweepBatch if 0
	// TxSize is how many grants are expired in one transaction; DefaultSweepTx if 0.
	// Larger spreads the cost of a transaction over more grants, but each grantee's
	// lock (taken by sync_developer) is held until the whole transaction commits, its
	// audit entries written one by one before: a developer's own query waits that long.
	TxSize    int
	Function  string // audit entries' function, e.g. SweepExpired
	RequestID string // audit entries' request id

	// beforeCommit, for tests, runs inside each transaction just before COMMIT, with
	// the grants it expires.
	beforeCommit func(ctx context.Context, tx pgx.Tx, gs []Grant) error
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
// Grants are expired TxSize at a time, each group in one transaction: lock them (FOR
// UPDATE SKIP LOCKED, so concurrent sweepers share the work and never expire a grant
// twice), mark them expired, bring each grantee's database role in line
// (airlock.sync_developer, grantees in sorted order so that concurrent sweepers take
// their locks in the same order), end every backend still running under each grant
// (airlock.terminate_grant_sessions — a side effect that does not wait for COMMIT; ending
// it again on a rerun is harmless), record every grant's audit entries, and commit. A
// crash at any point leaves each grant of the group fully active or fully expired; a
// grant whose entries were written but whose COMMIT was lost gets them again when a
// later run expires it (at least once).
//
// When the audit trail fails, the transaction is rolled back (so nothing is marked
// expired without its entry) and the run stops with an error wrapping
// audit.ErrUnavailable. Access still ends: the sessions were already terminated, and the
// developers' roles are resynced in a transaction of their own, which drops the
// capabilities because sync_developer ignores grants past expires_at whatever their
// status.
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
	if opts.TxSize <= 0 {
		opts.TxSize = DefaultSweepTx
	}
	for res.ExpiredGrants < opts.Batch {
		gs, n, err := s.expireSome(ctx, opts, min(opts.TxSize, opts.Batch-res.ExpiredGrants))
		if err != nil {
			return res, err
		}
		if len(gs) == 0 {
			break
		}
		res.ExpiredGrants += len(gs)
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

// expireSome expires, in one transaction, up to limit due grants nobody else is working
// on, and returns them (none when there is none) with the number of sessions ended.
func (s *Store) expireSome(ctx context.Context, opts SweepOptions, limit int) ([]Grant, int, error) {
	var (
		gs         []Grant
		terminated int
		auditErr   error
		reached    int // grants whose entries were written or being written when the trail failed
	)
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		// Lock and mark in one statement; SKIP LOCKED leaves grants another sweeper holds.
		rows, err := tx.Query(ctx, `
			UPDATE airlock.grants g
			   SET status = 'expired', ended_at = now(), ended_by = $1
			  FROM (SELECT id FROM airlock.grants
			         WHERE status = 'active' AND expires_at <= now()
			         ORDER BY expires_at, id
			         LIMIT $2
			           FOR UPDATE SKIP LOCKED) due
			 WHERE g.id = due.id
			RETURNING `+grantColumnsG, SweeperActor, limit)
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
		// RETURNING has no order; the trail follows the order grants fell due.
		slices.SortFunc(found, func(a, b Grant) int {
			return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), cmp.Compare(a.ID, b.ID))
		})
		gs = found
		counts, err := endAccess(ctx, tx, gs)
		if err != nil {
			return err
		}
		for i := range gs {
			terminated += counts[i]
			reached = i + 1
			if err := recordEnd(ctx, opts.Audit, &gs[i], counts[i], audit.EventGrantExpired, SweeperActor, opts.Function, opts.RequestID); err != nil {
				auditErr = err
				return err
			}
		}
		if opts.beforeCommit != nil {
			if err := opts.beforeCommit(ctx, tx, gs); err != nil {
				return err
			}
		}
		return nil
	})
	if auditErr != nil {
		// The grants the run reached lose their capabilities now; the rest of the
		// group is left as it was before the run, for the next one (their sessions
		// were ended, which a rerun does again anyway).
		for _, email := range grantees(gs[:reached]) {
			s.resync(ctx, email)
		}
		return nil, 0, fmt.Errorf("grants: grant %d was not marked expired, nor %d other(s) of its transaction: %w", gs[reached-1].ID, len(gs)-1, auditErr)
	}
	if err != nil {
		return nil, 0, err
	}
	for _, g := range gs {
		terminated += s.endOnReplica(ctx, g.ID)
	}
	return gs, terminated, nil
}

// grantees returns the distinct grantees of gs, sorted: the order in which every
// transaction that syncs several developers takes their locks.
func grantees(gs []Grant) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.Grantee)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// endAccess brings the grantees' roles in line with gs (already marked ended in tx),
// then terminates the sessions running under each grant, in that order: sync_developer
// takes each grantee's lock, held until tx ends, before any session is stopped, so a
// stopped statement can wait on that lock and then see why (Store.Ended). It returns the
// number of sessions ended under each grant.
//
// The syncs and a look for the grants' sessions (application_name is visible to every
// role) travel in one round trip; terminate_grant_sessions, which scans the backends
// once per call, runs only for the grants that showed a session, in a second one. A
// session that starts after the look started after the syncs too, and waits on its
// grantee's lock until tx commits the grant's end.
func endAccess(ctx context.Context, tx pgx.Tx, gs []Grant) ([]int, error) {
	fail := func(err error) ([]int, error) {
		if len(gs) == 1 {
			return nil, fmt.Errorf("grants: ending access of grant %d: %w", gs[0].ID, err)
		}
		return nil, fmt.Errorf("grants: ending access of %d grants from %d: %w", len(gs), gs[0].ID, err)
	}
	ids := make([]int64, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	b := &pgx.Batch{}
	for _, email := range grantees(gs) {
		b.Queue(`SELECT airlock.sync_developer($1)`, email)
	}
	// The same reading of application_name as terminate_grant_sessions, without its
	// cast to bigint, which a stray label of too many digits would make fail.
	var live []int64
	b.Queue(`
		SELECT coalesce(array_agg(DISTINCT g::numeric::bigint), '{}')
		  FROM pg_stat_activity a,
		       unnest(string_to_array(substring(a.application_name FROM ' g=([0-9,]+)'), ',')) AS g
		 WHERE a.datname = current_database()
		   AND a.application_name LIKE 'airlock r=%'
		   AND g <> '' AND g::numeric = ANY ($1::bigint[]::numeric[])`, ids).QueryRow(func(row pgx.Row) error { return row.Scan(&live) })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fail(err)
	}
	counts := make([]int, len(gs))
	if len(live) == 0 {
		return counts, nil
	}
	b = &pgx.Batch{}
	for i, g := range gs {
		if slices.Contains(live, g.ID) {
			b.Queue(`SELECT airlock.terminate_grant_sessions($1)`, []int64{g.ID}).QueryRow(func(row pgx.Row) error { return row.Scan(&counts[i]) })
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fail(err)
	}
	return counts, nil
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

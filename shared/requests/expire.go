package requests

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/outbox"
)

// EventRequestExpired is recorded, and told to the requester, when a pending request
// passes its deadline undecided.
const EventRequestExpired = "request.expired"

// A Recorder writes audit entries; *audit.Recorder is one.
type Recorder interface {
	Record(ctx context.Context, e audit.Entry) error
}

// ExpireOptions configures one Expire run.
type ExpireOptions struct {
	Audit     Recorder // required: every expiry is recorded before it is committed
	Batch     int      // at most this many requests; grants.DefaultSweepBatch if 0
	Function  string   // audit entries' function, e.g. SweepExpired
	RequestID string   // audit entries' request id
}

// Expire marks expired the pending requests past their deadline, oldest deadline first,
// each in its own transaction with its audit entry (recorded before COMMIT) and the
// requester's notification. Each request is locked FOR UPDATE SKIP LOCKED, so concurrent
// runs share the work and a decision being made on a request waits or is waited for.
// The actor of the entries is grants.SweeperActor.
//
// It returns how many it expired and how many were still due when it finished (left for
// the next run, or being handled by a concurrent one). When the audit trail fails, that
// request's transaction is rolled back, the run stops, and the error wraps
// audit.ErrUnavailable; expired counts what was done before it.
func (s *Store) Expire(ctx context.Context, opts ExpireOptions) (expired, remaining int, err error) {
	if opts.Audit == nil {
		return 0, 0, errors.New("requests: expiring requests needs an audit recorder")
	}
	if opts.Batch <= 0 {
		opts.Batch = grants.DefaultSweepBatch
	}
	for expired < opts.Batch {
		done, err := s.expireOne(ctx, opts)
		if err != nil {
			return expired, 0, err
		}
		if done {
			break
		}
		expired++
	}
	err = db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM airlock.access_requests WHERE status = 'pending' AND expires_at <= now()`).Scan(&remaining)
	})
	if err != nil {
		return expired, 0, fmt.Errorf("requests: counting the requests still due: %w", err)
	}
	return expired, remaining, nil
}

// expireOne expires the next due request nobody else is working on. It returns true
// when there is none.
func (s *Store) expireOne(ctx context.Context, opts ExpireOptions) (none bool, err error) {
	err = db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		var id, requester, role string
		var created, expires time.Time
		err := tx.QueryRow(ctx, `
			WITH due AS (
				SELECT id FROM airlock.access_requests
				 WHERE status = 'pending' AND expires_at <= now()
				 ORDER BY expires_at, id
				 LIMIT 1
				   FOR UPDATE SKIP LOCKED)
			UPDATE airlock.access_requests r
			   SET status = 'expired', decided_at = now(), notified_expiry = true
			  FROM due WHERE r.id = due.id
			RETURNING r.id, r.requester, r.role, r.created_at, r.expires_at`).Scan(&id, &requester, &role, &created, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			none = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("requests: expiring pending requests: %w", err)
		}
		text := fmt.Sprintf("Your request %s for %s expired at %s without enough approvals. Ask again if you still need it.",
			id, role, expires.UTC().Format(time.RFC3339))
		if err := outbox.Enqueue(ctx, tx, outbox.Message{
			Channel: outbox.ChannelRequester, Recipient: requester, Event: EventRequestExpired, Text: text,
			RequestID: id, Requester: requester, Role: role, Status: StatusExpired,
			ExpiresAt: expires.UTC().Format(time.RFC3339),
		}); err != nil {
			return err
		}
		return opts.Audit.Record(ctx, audit.Entry{
			Event:           EventRequestExpired,
			Actor:           grants.SweeperActor,
			Function:        opts.Function,
			RequestID:       opts.RequestID,
			AccessRequestID: id,
			Decision:        audit.DecisionDenied,
			Message:         fmt.Sprintf("request %s of %s for %s expired undecided", id, requester, role),
			Details:         map[string]any{"requester": requester, "role": role, "created_at": created.UTC().Format(time.RFC3339), "expires_at": expires.UTC().Format(time.RFC3339)},
		})
	})
	return none, err
}

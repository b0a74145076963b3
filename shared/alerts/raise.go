package alerts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/notify"
)

// maxMessageSQL bounds the statement quoted in a Slack message; the audit entry has it all.
const maxMessageSQL = 500

// Message is the security channel's notification of the alert entry e.
func Message(e audit.Entry) notify.Message {
	sql := e.SQL
	if len(sql) > maxMessageSQL {
		cut := maxMessageSQL
		for cut > 0 && sql[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
			cut--
		}
		sql = sql[:cut] + " …"
	}
	return notify.Message{
		Channel: notify.ChannelSecurity, Event: e.Event, Severity: string(e.Severity), Text: e.Message,
		Actor: e.Actor, Tables: e.Tables, Columns: e.MaskedColumns, SQL: sql, Rows: e.Rows,
		RequestID: e.AccessRequestID, AuditRequestID: e.RequestID, Key: key(e),
	}
}

// key is what makes two alerts "the same" for NotifyEvery: the event, the person and,
// for masked access, the columns.
func key(e audit.Entry) string {
	parts := []string{e.Event, strings.ToLower(e.Actor)}
	if e.Event == EventMaskedColumnAccess {
		cols := slices.Clone(e.MaskedColumns)
		slices.Sort(cols)
		parts = append(parts, strings.Join(cols, ","))
	}
	return strings.Join(parts, "|")
}

// Queue puts the security channel's message for the alert entry e into the outbox, in
// tx, unless the same alert was queued within its kind's NotifyEvery. It reports whether
// it queued one. tx must act as a role that may write airlock.notifications.
func Queue(ctx context.Context, tx pgx.Tx, e audit.Entry) (bool, error) {
	k, ok := Lookup(e.Event)
	if !ok {
		return false, fmt.Errorf("alerts: %q is not an alert", e.Event)
	}
	m := Message(e)
	if k.NotifyEvery > 0 {
		// Serialise instances deciding about the same key, so a repeat is sent once.
		var recent bool
		err := tx.QueryRow(ctx, `
			SELECT pg_advisory_xact_lock(hashtext('airlock.alert:' || $1)) IS NULL
			    OR EXISTS (SELECT 1 FROM airlock.notifications
			                WHERE channel = 'security' AND payload->>'key' = $1
			                  AND created_at > now() - make_interval(secs => $2))`,
			m.Key, k.NotifyEvery.Seconds()).Scan(&recent)
		if err != nil {
			return false, fmt.Errorf("alerts: checking for a recent %s message: %w", e.Event, err)
		}
		if recent {
			return false, nil
		}
	}
	if err := notify.Enqueue(ctx, tx, m); err != nil {
		return false, err
	}
	return true, nil
}

// A Raiser raises alerts for one function: it records each in the audit trail and queues
// its message for the security channel.
type Raiser struct {
	Audit *audit.Recorder
	Pool  *db.Pool
	Role  string // the function's group role, which may write the outbox
}

// Raise records the alert entries es (made by this package's constructors), in order,
// then queues their messages: in tx when tx is not nil (the transaction of the action
// the alerts report, so that a message exists exactly when the action commits),
// otherwise in one transaction of its own. It returns how many messages it queued
// (repeats within a kind's NotifyEvery are not).
//
// When the trail cannot confirm an entry, Raise returns an error wrapping
// audit.ErrUnavailable and queues nothing: the caller must not go on with the action.
// An error queueing is returned too, after every entry is recorded; the caller decides
// whether that should stop the action.
func (r *Raiser) Raise(ctx context.Context, tx pgx.Tx, es ...audit.Entry) (queued int, err error) {
	for _, e := range es {
		if _, ok := Lookup(e.Event); !ok {
			return 0, fmt.Errorf("alerts: %q is not an alert", e.Event)
		}
	}
	for _, e := range es {
		if err := r.Audit.Record(ctx, e); err != nil {
			return 0, err
		}
	}
	queue := func(tx pgx.Tx) error {
		for _, e := range es {
			q, err := Queue(ctx, tx, e)
			if err != nil {
				return err
			}
			if q {
				queued++
			}
		}
		return nil
	}
	if len(es) == 0 {
		return 0, nil
	}
	if tx != nil {
		return queued, queue(tx)
	}
	if err := db.InRole(ctx, r.Pool, r.Role, queue); err != nil {
		return 0, err
	}
	return queued, nil
}

// CountDenial records one refused query of actor (rule is why) and returns how many
// refusals actor has had within window, this one included. Counts live in the database,
// not in the instance, because a burst may be spread over many instances.
func (r *Raiser) CountDenial(ctx context.Context, actor, rule string, window time.Duration) (int, error) {
	var n int
	err := db.InRole(ctx, r.Pool, r.Role, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock(hashtext('airlock.denials:' || $1))`, actor)
		b.Queue(`DELETE FROM airlock.denials WHERE actor = $1 AND at <= now() - make_interval(secs => $2)`, actor, window.Seconds())
		b.Queue(`INSERT INTO airlock.denials (actor, rule) VALUES ($1, $2)`, actor, rule)
		b.Queue(`SELECT count(*) FROM airlock.denials WHERE actor = $1`, actor).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("alerts: counting %s's refusals: %w", actor, err)
	}
	return n, nil
}

// BurstReached reports whether the n-th refusal within the window raises a burst alert:
// at the policy's count and at every multiple of it, so a long probe keeps showing.
func BurstReached(n, count int) bool { return count > 0 && n >= count && n%count == 0 }

package alerts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/outbox"
)

// maxMessageSQL bounds the statement quoted in a Slack message; the audit entry has it all.
const maxMessageSQL = 500

// Message is the security channel's notification of the alert entry e.
func Message(e audit.Entry) outbox.Message {
	sql := e.SQL
	if len(sql) > maxMessageSQL {
		cut := maxMessageSQL
		for cut > 0 && sql[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
			cut--
		}
		sql = sql[:cut] + " …"
	}
	return outbox.Message{
		Channel: outbox.ChannelSecurity, Event: e.Event, Severity: string(e.Severity), Text: e.Message,
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

// limitKey is what NotifyLimit counts by: the kind and the person, however the
// e-mail's case is spelled.
func limitKey(e audit.Entry) string {
	return e.Event + "|" + strings.ToLower(strings.TrimSpace(e.Actor))
}

// queue puts the security channel's messages for the alert entries es into the outbox,
// in tx, except those whose kind's NotifyEvery says the same alert was queued recently. It
// returns how many it queued. tx must act as a role that may write airlock.notifications.
func queue(ctx context.Context, tx pgx.Tx, es ...audit.Entry) (int, error) {
	b := &pgx.Batch{}
	var queued int
	if err := queueInto(b, es, &queued); err != nil {
		return 0, err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("alerts: queueing security messages: %w", err)
	}
	return queued, nil
}

// queueInto adds to b what queues the messages of es, counting into queued those that
// are queued: a repeatable kind's message only if the same alert (by key) was not queued
// within its NotifyEvery, and a limited kind's only within its NotifyLimit for the
// person, both decided by the outbox among instances.
func queueInto(b *pgx.Batch, es []audit.Entry, queued *int) error {
	for _, e := range es {
		k, ok := Lookup(e.Event)
		if !ok {
			return fmt.Errorf("alerts: %q is not an alert", e.Event)
		}
		var lim outbox.Limit
		if k.NotifyLimit.Max > 0 {
			lim = outbox.Limit{Key: limitKey(e), Max: k.NotifyLimit.Max, Window: k.NotifyLimit.Per}
		}
		if err := outbox.QueueLimited(b, Message(e), k.NotifyEvery, lim, queued); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
	}
	return nil
}

// A Raiser raises alerts for one function: it records each in the audit trail and queues
// its message for the security channel.
type Raiser struct {
	Audit *audit.Recorder
	Pool  *db.Pool
	Role  string // the function's group role, which may write the outbox

	// recent remembers when this instance last queued each repeatable alert's key, so a
	// repeat within its NotifyEvery costs no trip to the database; the outbox still
	// decides among instances. Guarded by mu.
	mu     sync.Mutex
	recent map[string]time.Time
}

// maxRecent bounds Raiser.recent; past it, keys older than an hour are forgotten.
const maxRecent = 4096

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
	if tx != nil {
		return queue(ctx, tx, es...)
	}
	now := time.Now()
	if es = r.unsent(es, now); len(es) == 0 {
		return 0, nil
	}
	// One round trip: this runs before a developer's query.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL ROLE " + pgx.Identifier{r.Role}.Sanitize())
	if err := queueInto(b, es, &queued); err != nil {
		return 0, err
	}
	b.Queue("COMMIT")
	if err := r.Pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("alerts: queueing security messages: %w", err)
	}
	r.remember(es, now)
	return queued, nil
}

// unsent drops from es the repeatable alerts this instance queued within their
// NotifyEvery.
func (r *Raiser) unsent(es []audit.Entry, now time.Time) []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Entry
	for _, e := range es {
		k, _ := Lookup(e.Event)
		if t, ok := r.recent[key(e)]; ok && k.NotifyEvery > 0 && now.Sub(t) < k.NotifyEvery {
			continue
		}
		out = append(out, e)
	}
	return out
}

// remember notes the repeatable alerts of es as queued (by this instance or, the outbox
// said, another) at now.
func (r *Raiser) remember(es []audit.Entry, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recent == nil {
		r.recent = map[string]time.Time{}
	}
	if len(r.recent) >= maxRecent {
		for k, t := range r.recent {
			if now.Sub(t) >= time.Hour {
				delete(r.recent, k)
			}
		}
	}
	for _, e := range es {
		if k, _ := Lookup(e.Event); k.NotifyEvery > 0 && len(r.recent) < maxRecent {
			r.recent[key(e)] = now
		}
	}
}

// CountDenial records one refused query of actor (rule is why) and returns how many
// refusals actor has had within window, this one included. Counts live in the database,
// not in the instance, because a burst may be spread over many instances.
func (r *Raiser) CountDenial(ctx context.Context, actor, rule string, window time.Duration) (int, error) {
	var n int
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL ROLE " + pgx.Identifier{r.Role}.Sanitize())
	b.Queue(`SELECT pg_advisory_xact_lock(hashtext('airlock.denials:' || $1))`, actor)
	b.Queue(`DELETE FROM airlock.denials WHERE actor = $1 AND at <= now() - make_interval(secs => $2)`, actor, window.Seconds())
	b.Queue(`INSERT INTO airlock.denials (actor, rule) VALUES ($1, $2)`, actor, rule)
	b.Queue(`SELECT count(*) FROM airlock.denials WHERE actor = $1`, actor).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
	b.Queue("COMMIT")
	err := r.Pool.SendBatch(ctx, b).Close()
	if err != nil {
		return 0, fmt.Errorf("alerts: counting %s's refusals: %w", actor, err)
	}
	return n, nil
}

// BurstReached reports whether the n-th refusal within the window raises a burst alert:
// at the policy's count and at every multiple of it, so a long probe keeps showing.
func BurstReached(n, count int) bool { return count > 0 && n >= count && n%count == 0 }

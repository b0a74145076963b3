// Package outbox is the one writer of airlock.notifications, the transactional outbox of
// Airlock's notifications. A change that must be announced queues its Message inside
// its own transaction, so that the notification exists exactly when the change is
// committed; package notify delivers the rows after the commit. Nothing here sends
// anything, so a function that only queues (the sweeper) links no sender.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Channels a notification goes to.
const (
	ChannelApprovers = "approvers" // the approvers' Slack channel: new requests, with buttons
	ChannelRequester = "requester" // the person who asked: their request was decided
	ChannelSecurity  = "security"  // the security channel: break-glass and every security alert
)

// A Message is one notification, stored as the payload of an outbox row.
type Message struct {
	Channel   string `json:"channel"`
	Recipient string `json:"recipient,omitempty"` // e-mail address, for ChannelRequester
	Event     string `json:"event"`               // audit event it reports, e.g. request.created
	Text      string `json:"text"`                // plain text, for the log and the file sink

	RequestID  string   `json:"request_id,omitempty"`
	Requester  string   `json:"requester,omitempty"`
	Role       string   `json:"role,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Ticket     string   `json:"ticket,omitempty"`
	Duration   string   `json:"duration,omitempty"`
	Tables     []string `json:"tables,omitempty"`
	BreakGlass bool     `json:"breakglass,omitempty"`
	Status     string   `json:"status,omitempty"`
	DecidedBy  string   `json:"decided_by,omitempty"`
	GrantID    int64    `json:"grant_id,omitempty"`
	ExpiresAt  string   `json:"expires_at,omitempty"`
	History    []string `json:"requester_grants_30d,omitempty"` // for reviewers

	// Actions asks for Approve and Deny buttons whose value is RequestID.
	Actions bool `json:"actions,omitempty"`

	// Security alerts (package alerts) also say who did what, how bad it is, and
	// which audit entries to look at.
	Severity       string   `json:"severity,omitempty"` // ALERT or WARNING
	Actor          string   `json:"actor,omitempty"`
	Columns        []string `json:"columns,omitempty"`
	SQL            string   `json:"sql,omitempty"`
	Rows           int64    `json:"rows,omitempty"`
	AuditRequestID string   `json:"audit_request_id,omitempty"` // the request_id of the audit entries
	// Key identifies the message's subject (an alert's person and columns, say), so
	// that Queue can leave out a repeat (see Queue's every).
	Key string `json:"key,omitempty"`

	// Set by QueueLimited: how many messages of the same limit key the window before
	// this one held back, and since when; or, on the message that reaches the limit,
	// until when the next ones are held back (RFC 3339, UTC).
	Held      int    `json:"held,omitempty"`
	HeldSince string `json:"held_since,omitempty"`
	HeldUntil string `json:"held_until,omitempty"`
}

// A Limit caps a channel's messages that share a limit Key (an alert's kind and
// person, say): at most Max within Window, the window starting at the first message
// queued after the last window ended. Messages past Max are held back, not queued.
// The zero Limit holds nothing back.
type Limit struct {
	Key    string
	Max    int
	Window time.Duration
}

// Enqueue inserts ms into the outbox inside tx, in one round trip, so that the
// notifications exist exactly when the change they report is committed (and not at all
// if tx rolls back). tx must act as a role that may write airlock.notifications.
func Enqueue(ctx context.Context, tx pgx.Tx, ms ...Message) error {
	b := &pgx.Batch{}
	for _, m := range ms {
		if err := Queue(b, m, 0, nil); err != nil {
			return err
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("outbox: queueing %s: %w", events(ms), err)
	}
	return nil
}

// Queue adds to b what inserts m into the outbox, for a caller that sends other
// statements in the same round trip (its own BEGIN, SET LOCAL ROLE and COMMIT, say).
// b must run in one transaction.
//
// When every is positive, m is a repeatable message: it is inserted only if no message
// of its channel with its Key was queued within every. The check runs under a
// transaction-scoped advisory lock on the Key, so transactions queuing the same Key at
// once insert it once. Each row inserted adds one to *inserted, when inserted is not nil.
func Queue(b *pgx.Batch, m Message, every time.Duration, inserted *int) error {
	return QueueLimited(b, m, every, Limit{}, inserted)
}

// QueueLimited is Queue, with m also counted against lim (when lim.Max is positive):
// it is inserted only if, besides not being a repeat within every, fewer than lim.Max
// messages of its channel and lim.Key were queued in the current window. The count
// lives in airlock.notification_limits, whose row for the key the statement updates in
// place, so transactions counting the same key at once are serialised by its row lock
// and never both take the last place. The first message queued after a window that
// held some back says how many (Message.Held and its text); the one that reaches the
// limit says until when the rest are held back. A repeat left out by every is neither
// queued nor counted. A transaction that rolls back takes its count with it.
func QueueLimited(b *pgx.Batch, m Message, every time.Duration, lim Limit, inserted *int) error {
	payload, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("outbox: encoding the %s message: %w", m.Event, err)
	}
	var recipient *string // NULL, not '', for a message to a channel
	if m.Recipient != "" {
		recipient = &m.Recipient
	}
	count := func(tag pgconn.CommandTag) error {
		if inserted != nil {
			*inserted += int(tag.RowsAffected())
		}
		return nil
	}
	if lim.Max > 0 && (lim.Key == "" || lim.Window <= 0) {
		return fmt.Errorf("outbox: the limited %s message needs a limit key and window", m.Event)
	}
	if every <= 0 && lim.Max <= 0 {
		b.Queue(`INSERT INTO airlock.notifications (channel, recipient, payload) VALUES ($1, $2, $3)`,
			m.Channel, recipient, string(payload)).Exec(count)
		return nil
	}
	if every > 0 {
		if m.Key == "" {
			return fmt.Errorf("outbox: the repeatable %s message has no key", m.Event)
		}
		// The lock's name is shared with instances of older releases: keep it.
		b.Queue(`SELECT pg_advisory_xact_lock(hashtext('airlock.alert:' || $1))`, m.Key)
	}
	if lim.Max > 0 {
		b.Queue(limitedInsert, m.Channel, recipient, string(payload), m.Key, every.Seconds(),
			lim.Key, lim.Max, lim.Window.Seconds(), short(lim.Window)).Exec(count)
		return nil
	}
	b.Queue(`
		INSERT INTO airlock.notifications (channel, recipient, payload)
		SELECT $1, $2, $3
		 WHERE NOT EXISTS (SELECT 1 FROM airlock.notifications
		                    WHERE channel = $1 AND payload->>'key' = $4
		                      AND created_at > now() - make_interval(secs => $5))`,
		m.Channel, recipient, string(payload), m.Key, every.Seconds()).Exec(count)
	return nil
}

// limitedInsert inserts a message ($1 channel, $2 recipient, $3 payload) unless it
// repeats key $4 within $5 seconds (when $5 is positive) or its limit key $6 has had $7
// messages within the window of $8 seconds ($9 says it for people). In the row's
// update every column reads the row as it was; "expired" is
// l.window_start <= now() - window.
const limitedInsert = `
	WITH fresh AS (
		SELECT $5::float8 <= 0 OR NOT EXISTS (
			SELECT 1 FROM airlock.notifications
			 WHERE channel = $1 AND payload->>'key' = $4 AND created_at > now() - make_interval(secs => $5)) AS ok
	), counted AS (
		INSERT INTO airlock.notification_limits AS l (channel, key)
		SELECT $1, $6 FROM fresh WHERE ok
		ON CONFLICT (channel, key) DO UPDATE SET
			window_start   = CASE WHEN l.window_start <= now() - make_interval(secs => $8) THEN now() ELSE l.window_start END,
			sent           = CASE WHEN l.window_start <= now() - make_interval(secs => $8) THEN 1 ELSE least(l.sent + 1, $7) END,
			held           = CASE WHEN l.window_start <= now() - make_interval(secs => $8) THEN 0
			                      WHEN l.sent < $7 THEN l.held ELSE l.held + 1 END,
			passed         = l.window_start <= now() - make_interval(secs => $8) OR l.sent < $7,
			reported       = CASE WHEN l.window_start <= now() - make_interval(secs => $8) THEN l.held ELSE 0 END,
			reported_since = CASE WHEN l.window_start <= now() - make_interval(secs => $8) AND l.held > 0 THEN l.window_start END
		RETURNING passed, sent, reported, reported_since, window_start + make_interval(secs => $8) AS window_end
	), stamped AS (
		SELECT c.*, to_char(c.reported_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since,
		       to_char(c.window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS until
		  FROM counted c WHERE c.passed
	)
	INSERT INTO airlock.notifications (channel, recipient, payload)
	SELECT $1, $2, jsonb_set($3::jsonb, '{text}', to_jsonb(($3::jsonb->>'text')
	         || CASE WHEN s.reported > 0 THEN format(' (%s more like this were held back since %s.)', s.reported, s.since) ELSE '' END
	         || CASE WHEN s.sent >= $7 THEN format(' (Limit of %s per %s reached: more like this are held back until %s.)', $7, $9::text, s.until) ELSE '' END))
	       || CASE WHEN s.reported > 0 THEN jsonb_build_object('held', s.reported, 'held_since', s.since) ELSE '{}'::jsonb END
	       || CASE WHEN s.sent >= $7 THEN jsonb_build_object('held_until', s.until) ELSE '{}'::jsonb END
	  FROM stamped s`

// short says d without trailing zero units: 10m, 1h, 1h30m.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// events names the events of ms, for an error.
func events(ms []Message) string {
	switch len(ms) {
	case 0:
		return "no notification"
	case 1:
		return ms[0].Event + " notification"
	}
	return fmt.Sprintf("%d notifications (%s, …)", len(ms), ms[0].Event)
}

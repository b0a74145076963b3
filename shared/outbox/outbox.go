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
	if every <= 0 {
		b.Queue(`INSERT INTO airlock.notifications (channel, recipient, payload) VALUES ($1, $2, $3)`,
			m.Channel, recipient, string(payload)).Exec(count)
		return nil
	}
	if m.Key == "" {
		return fmt.Errorf("outbox: the repeatable %s message has no key", m.Event)
	}
	// The lock's name is shared with instances of older releases: keep it.
	b.Queue(`SELECT pg_advisory_xact_lock(hashtext('airlock.alert:' || $1))`, m.Key)
	b.Queue(`
		INSERT INTO airlock.notifications (channel, recipient, payload)
		SELECT $1, $2, $3
		 WHERE NOT EXISTS (SELECT 1 FROM airlock.notifications
		                    WHERE channel = $1 AND payload->>'key' = $4
		                      AND created_at > now() - make_interval(secs => $5))`,
		m.Channel, recipient, string(payload), m.Key, every.Seconds()).Exec(count)
	return nil
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

// Package notify delivers Airlock's notifications through an outbox: the transaction that
// creates or decides a request inserts rows into airlock.notifications, and a Sender
// delivers them after the commit (Slack incoming webhooks whose URLs live in Secret
// Manager, or a local JSON-lines file). A delivery that fails is retried with backoff and,
// if it still fails, logged and left in the outbox: a notification never loses the request
// or the grant it is about, and the request never waits for Slack.
package notify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
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
	// Key identifies the alert's subject (person and columns, say) so that a repeat
	// within the alert's NotifyEvery is not sent again.
	Key string `json:"key,omitempty"`
}

// Enqueue inserts m into the outbox inside tx, so that the notification exists exactly
// when the change it reports is committed.
func Enqueue(ctx context.Context, tx pgx.Tx, m Message) error {
	payload, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("notify: encoding %s notification: %w", m.Event, err)
	}
	var recipient *string
	if m.Recipient != "" {
		recipient = &m.Recipient
	}
	if _, err := tx.Exec(ctx, `INSERT INTO airlock.notifications (channel, recipient, payload) VALUES ($1, $2, $3)`,
		m.Channel, recipient, string(payload)); err != nil {
		return fmt.Errorf("notify: queueing %s notification: %w", m.Event, err)
	}
	return nil
}

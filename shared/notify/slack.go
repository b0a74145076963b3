package notify

import (
	"fmt"
	"strings"

	"airlock.dev/airlock/shared/outbox"
)

// Slack Block Kit action ids of the approval buttons; ApprovalCallback's Slack
// interaction handler reads them.
const (
	ActionApprove = "airlock_approve"
	ActionDeny    = "airlock_deny"
)

// SlackMessage renders m as a Slack message: a text fallback, a section with the
// request's details and, for approvers, Approve and Deny buttons whose value is the
// request id. Slack mrkdwn control characters in user-supplied text are escaped.
func SlackMessage(m outbox.Message) map[string]any {
	text := esc(m.Text)
	if m.Channel == outbox.ChannelRequester && m.Recipient != "" {
		text = "For " + esc(m.Recipient) + ": " + text
	}
	switch {
	case m.BreakGlass || m.Severity == "ALERT":
		text = ":rotating_light: " + text
	case m.Severity == "WARNING":
		text = ":warning: " + text
	}
	blocks := []any{
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text}},
	}
	var fields []any
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, map[string]any{"type": "mrkdwn", "text": fmt.Sprintf("*%s*\n%s", k, esc(v))})
		}
	}
	add("Request", m.RequestID)
	add("Requester", m.Requester)
	add("Role", m.Role)
	add("Tables", strings.Join(m.Tables, ", "))
	add("Duration", m.Duration)
	add("Ticket", m.Ticket)
	add("Reason", m.Reason)
	add("Who", m.Actor)
	add("Columns", strings.Join(m.Columns, ", "))
	if m.Rows > 0 {
		add("Rows", fmt.Sprint(m.Rows))
	}
	add("Audit request id", m.AuditRequestID)
	if m.Actions {
		h := "none"
		if len(m.History) > 0 {
			h = strings.Join(m.History, "; ")
		}
		add("Grants in the last 30 days", h)
	}
	if len(fields) > 0 {
		if len(fields) > 10 { // Slack's limit per section
			fields = fields[:10]
		}
		blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
	}
	if m.SQL != "" {
		// A code block cannot be closed early from inside: Slack ends it only at ```.
		sql := strings.ReplaceAll(m.SQL, "```", "` ` `")
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "```" + esc(sql) + "```"}})
	}
	if m.Actions && m.RequestID != "" {
		blocks = append(blocks, map[string]any{
			"type":     "actions",
			"block_id": "airlock_decision",
			"elements": []any{
				map[string]any{"type": "button", "action_id": ActionApprove, "style": "primary", "value": m.RequestID,
					"text": map[string]any{"type": "plain_text", "text": "Approve"}},
				map[string]any{"type": "button", "action_id": ActionDeny, "style": "danger", "value": m.RequestID,
					"text": map[string]any{"type": "plain_text", "text": "Deny"}},
			},
		})
	}
	return map[string]any{"text": text, "blocks": blocks}
}

// esc escapes the three characters Slack's mrkdwn treats as control characters.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Package alerts is the one place Airlock's security alerts are defined: their event
// names, severities, the fields each one always carries, and who raises them ([Kinds]).
// Terraform's log-based metrics and alert policies are tested against this list, and the
// README's table is generated from the same facts, so a name never drifts.
//
// An alert is two things. First an audit entry, recorded like every other (before the
// action it reports is committed, so an alert the trail cannot take stops the action);
// its severity, ALERT or WARNING, is what log-based metrics count. Then a message to the
// security channel (Slack), queued in the notification outbox in the same transaction as
// the action, so it exists exactly when the action does.
//
// The constructors ([ForbiddenStatement], [MaskedColumnAccess], …) turn the entry of the
// action (actor, request id, SQL, grants) into the alert's entry; use them rather than
// filling an [audit.Entry] by hand, so the fields stay the documented ones.
package alerts

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/policy"
)

// The alert events. Names never change meaning; Terraform's metrics filter on them.
const (
	EventDeniedBurst         = "security.denied_burst"
	EventMaskedColumnAccess  = "security.masked_column_access"
	EventForbiddenStatement  = "security.forbidden_statement"
	EventBreakglassActivated = audit.EventBreakglassActivated
	EventBreakglassWrite     = "breakglass.write"
	EventBulkWrite           = "security.bulk_write"
	EventOffHoursApproval    = "security.off_hours_approval"
	EventSlackReplay         = "security.slack_replay"
	// EventAuditUnavailable is not an audit entry (the trail is what failed): the
	// function writes it to its own log, which Cloud Logging keeps in _Default.
	EventAuditUnavailable = "audit.unavailable"
)

// Where an alert is written.
const (
	SourceAudit        = "audit"         // the airlock-audit log, in the locked bucket
	SourceFunctionLogs = "function_logs" // the function's own stdout/stderr
)

// A Kind describes one alert.
type Kind struct {
	Event       string
	Severity    audit.Severity // ALERT (a person should look now) or WARNING (worth counting)
	Source      string         // SourceAudit or SourceFunctionLogs
	RaisedBy    string         // the function that raises it
	When        string         // when it is raised, for the README
	Description string         // one sentence, used for the Terraform metric
	// Fields are the entry fields (besides seq, chain, prev_hash, hash, time, event and
	// severity) that every alert of this kind carries; "details.x" names a details key.
	Fields []string
	// NotifyEvery limits the security channel to one message per person and subject
	// (the same columns, say) within this long; 0 sends every one. The audit entry is
	// written every time whatever this says.
	NotifyEvery time.Duration
	// NotifyLimit caps the security channel's messages of this kind about one person
	// (their e-mail compared without case; the statement, columns or request do not
	// matter): at most Max within Per, the first message after a window that held some
	// back saying how many. The audit entry, and so the metric, is written every time.
	// Kinds that report an attempt, refused or harmless, have a limit (5 in 10 minutes): an insider
	// can repeat those at will and would otherwise bury the channel. Kinds that report
	// something that happened (break-glass opened, a write committed, an approval given)
	// have none: each is a change a person must look at, and none can be made at will
	// without a grant or an approver.
	NotifyLimit Rate
}

// A Rate is at most Max within Per; the zero Rate is no limit.
type Rate struct {
	Max int
	Per time.Duration
}

// The security channel's limit per person and kind, for the kinds that report
// attempts: five messages in ten minutes show a pattern; the rest are on the trail.
const (
	perPersonMax    = 5
	perPersonWindow = 10 * time.Minute
)

// Kinds lists every alert, in the order of the README's table.
func Kinds() []Kind {
	return []Kind{
		{
			Event: EventForbiddenStatement, Severity: audit.SeverityAlert, Source: SourceAudit, RaisedBy: "ExecuteQuery",
			When:        "a request holds DELETE, TRUNCATE, MERGE, DDL or a role change anywhere (also inside EXPLAIN, a CTE or a second statement); it is refused",
			Description: "An attempt at DELETE, TRUNCATE, DDL or a role change, which Airlock never allows.",
			Fields:      []string{"actor", "function", "request_id", "sql", "decision", "rule", "message", "details.forbidden"},
			NotifyLimit: Rate{perPersonMax, perPersonWindow},
		},
		{
			Event: EventDeniedBurst, Severity: audit.SeverityWarning, Source: SourceAudit, RaisedBy: "ExecuteQuery",
			When:        "a person's refused queries within `alerts.denied_burst.window` reach `alerts.denied_burst.count`, and again at every further multiple of it",
			Description: "A burst of denied queries from one person: probing for what the guard lets through.",
			Fields:      []string{"actor", "function", "request_id", "rule", "message", "details.denied", "details.window"},
			NotifyLimit: Rate{perPersonMax, perPersonWindow},
		},
		{
			Event: EventMaskedColumnAccess, Severity: audit.SeverityWarning, Source: SourceAudit, RaisedBy: "ExecuteQuery",
			When:        "a query reads, filters, sorts or groups by a sensitive column the person may only see masked (the database masks it; the attempt is still worth knowing)",
			Description: "A query touched a column the person may only see masked.",
			Fields:      []string{"actor", "function", "request_id", "sql", "decision", "tables", "masked_columns", "message"},
			NotifyLimit: Rate{perPersonMax, perPersonWindow},
			NotifyEvery: time.Hour,
		},
		{
			Event: EventBreakglassActivated, Severity: audit.SeverityAlert, Source: SourceAudit, RaisedBy: "RequestAccess",
			When:        "someone asks for break-glass access (the request, before any approval)",
			Description: "Break-glass access was activated.",
			Fields:      []string{"actor", "function", "request_id", "access_request_id", "reason", "message", "details.ticket"},
		},
		{
			Event: EventBreakglassWrite, Severity: audit.SeverityAlert, Source: SourceAudit, RaisedBy: "ExecuteQuery",
			When:        "a write is committed under a break-glass grant",
			Description: "A write was made under break-glass access.",
			Fields:      []string{"actor", "function", "request_id", "grant_ids", "sql", "tables", "rows", "message", "details.target", "details.breakglass_grants"},
		},
		{
			Event: EventBulkWrite, Severity: audit.SeverityAlert, Source: SourceAudit, RaisedBy: "ExecuteQuery",
			When:        "a committed write changes more rows than `alerts.bulk_write_rows`",
			Description: "A write touched more rows than the policy's bulk-write threshold.",
			Fields:      []string{"actor", "function", "request_id", "grant_ids", "sql", "tables", "rows", "message", "details.target", "details.threshold"},
		},
		{
			Event: EventOffHoursApproval, Severity: audit.SeverityWarning, Source: SourceAudit, RaisedBy: "ApprovalCallback",
			When:        "an approver approves a request outside `alerts.working_hours` (only when the policy sets them)",
			Description: "An access request was approved outside working hours.",
			Fields:      []string{"actor", "function", "request_id", "access_request_id", "message", "details.requester", "details.role", "details.local_time"},
		},
		{
			Event: EventSlackReplay, Severity: audit.SeverityAlert, Source: SourceAudit, RaisedBy: "ApprovalCallback",
			When:        "a Slack callback whose signature verifies arrives again, however its signature or timestamp is spelled; it is refused (401 `replayed`)",
			Description: "A signed Slack callback was received a second time: someone is replaying a captured approval.",
			Fields:      []string{"actor", "function", "request_id", "decision", "message", "details.slack_user"},
			NotifyLimit: Rate{perPersonMax, perPersonWindow},
			NotifyEvery: time.Hour,
		},
		{
			Event: EventAuditUnavailable, Severity: audit.SeverityAlert, Source: SourceFunctionLogs, RaisedBy: "every function",
			When:        "the audit trail cannot confirm an entry, so the function refuses to act (503 audit_unavailable)",
			Description: "A function could not write the audit log and refused to act. Airlock is down until this is fixed.",
			Fields:      []string{"function", "request_id", "message"},
		},
	}
}

// Lookup returns the kind of an alert event.
func Lookup(event string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.Event == event {
			return k, true
		}
	}
	return Kind{}, false
}

// derive makes the alert's entry from the action's: same actor, request, statement and
// grants, the alert's event and severity, and a details map of its own.
func derive(event string, base audit.Entry, message string, details map[string]any) audit.Entry {
	k, ok := Lookup(event)
	if !ok {
		panic("alerts: unknown event " + event) // a programming error: the constants are above
	}
	e := base
	e.Event, e.Severity, e.Message = event, k.Severity, message
	e.Details = maps.Clone(details)
	return e
}

// ForbiddenStatement is the alert for a request holding what Airlock never allows;
// forbidden is sqlguard's Decision.Forbidden (delete, truncate, merge, ddl, privilege).
func ForbiddenStatement(base audit.Entry, forbidden string) audit.Entry {
	what := map[string]string{"delete": "a DELETE", "truncate": "a TRUNCATE", "merge": "a MERGE", "ddl": "a schema change", "privilege": "a privilege or role change"}[forbidden]
	if what == "" {
		what = forbidden
	}
	return derive(EventForbiddenStatement, base, fmt.Sprintf("%s tried %s, which Airlock never allows; it was refused (rule %s)", base.Actor, what, base.Rule),
		map[string]any{"forbidden": forbidden})
}

// MaskedColumnAccess is the alert for a query reaching base.MaskedColumns.
func MaskedColumnAccess(base audit.Entry) audit.Entry {
	return derive(EventMaskedColumnAccess, base, fmt.Sprintf("%s's query touched %s, which they may only see masked", base.Actor, strings.Join(base.MaskedColumns, ", ")), nil)
}

// DeniedBurst is the alert for denied refusals of one person within window.
func DeniedBurst(base audit.Entry, denied int, window time.Duration) audit.Entry {
	e := derive(EventDeniedBurst, base, fmt.Sprintf("%s had %d queries refused within %s", base.Actor, denied, window),
		map[string]any{"denied": denied, "window": window.String()})
	e.SQL, e.Fingerprint, e.Tables, e.MaskedColumns = "", "", nil, nil // the burst, not this one statement
	return e
}

// BreakglassWrite is the alert for a committed write of rows rows of target under the
// break-glass grants bg.
func BreakglassWrite(base audit.Entry, target string, rows int64, bg []int64) audit.Entry {
	e := derive(EventBreakglassWrite, base, fmt.Sprintf("%s changed %d rows of %s under break-glass", base.Actor, rows, target),
		map[string]any{"target": target, "breakglass_grants": bg})
	e.Rows = rows
	return e
}

// BulkWrite is the alert for a committed write of rows rows of target, more than threshold.
func BulkWrite(base audit.Entry, target string, rows int64, threshold int) audit.Entry {
	e := derive(EventBulkWrite, base, fmt.Sprintf("%s changed %d rows of %s in one write; the alert threshold is %d", base.Actor, rows, target, threshold),
		map[string]any{"target": target, "threshold": threshold})
	e.Rows = rows
	return e
}

// OffHoursApproval is the alert for an approval by base.Actor of requester's request for
// role at, outside the policy's working hours wh.
func OffHoursApproval(base audit.Entry, requester, role string, at time.Time, wh *policy.WorkingHours) audit.Entry {
	local := at.In(wh.Location).Format("Mon 15:04 MST")
	return derive(EventOffHoursApproval, base, fmt.Sprintf("%s approved %s's request for %s at %s, outside working hours", base.Actor, requester, role, local),
		map[string]any{"requester": requester, "role": role, "local_time": local})
}

// BreakglassActivated is the alert for a break-glass request (base is its
// request.created entry) for incident ticket.
func BreakglassActivated(base audit.Entry, ticket string) audit.Entry {
	details := maps.Clone(base.Details)
	if details == nil {
		details = map[string]any{}
	}
	details["ticket"] = ticket
	return derive(EventBreakglassActivated, base, fmt.Sprintf("%s opened break-glass for incident %s", base.Actor, ticket), details)
}

// SlackReplay is the alert for a Slack callback received again: base is the refusal's
// entry, whose actor is the approver slackUser maps to (or "slack:" and the user id when
// the policy maps it to nobody).
func SlackReplay(base audit.Entry, slackUser string) audit.Entry {
	return derive(EventSlackReplay, base, fmt.Sprintf("a signed Slack callback from %s (%s) was received again and refused: someone holding a copy of it is replaying it", slackUser, base.Actor),
		map[string]any{"slack_user": slackUser})
}

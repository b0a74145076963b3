// Package query is the ExecuteQuery function: developers send one SQL statement, and it
// runs only if the policy and their active grants allow it, as their own database role,
// in a transaction the database itself keeps read-only or bounded, with every attempt
// and outcome in the audit trail before the answer is sent.
package query

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/sqlguard"
)

// EntryPoint is the function's name in Cloud Functions.
const EntryPoint = "ExecuteQuery"

// maxBody bounds the request body; the guard refuses SQL over 16 KiB anyway.
const maxBody = 64 << 10

var entry = app.NewEntry(EntryPoint, migrate.GroupQuery, func(deps *app.Deps) (http.Handler, error) { return New(deps), nil })

// ExecuteQuery is the Cloud Functions entry point. Its dependencies are built from the
// environment on the first request.
func ExecuteQuery(w http.ResponseWriter, r *http.Request) { entry.ServeHTTP(w, r) }

// A Handler serves ExecuteQuery.
type Handler struct {
	deps   *app.Deps
	grants *grants.Store
	schema *schema
	alerts *alerts.Raiser
	notify *notify.Sender
	mux    *httpapi.Mux
	// Developers' statements pass these gates (slots.go); Airlock's own queries do not.
	primaryGate, replicaGate *gate
}

// New returns the handler for built dependencies.
func New(deps *app.Deps) *Handler {
	h := &Handler{
		deps:        deps,
		grants:      grants.New(deps.Pool, deps.Role()),
		schema:      &schema{},
		alerts:      &alerts.Raiser{Audit: deps.Audit, Pool: deps.Pool, Role: deps.Role()},
		notify:      notify.New(deps.Pool, deps.Role(), deps.Config.Notify, nil, deps.Log),
		mux:         httpapi.NewMux(),
		primaryGate: newGate(deps.Pool, reservedConns),
	}
	if deps.Replica != nil {
		h.replicaGate = newGate(deps.Replica, 0) // only statements use the replica
	}
	h.mux.Handle("POST /{$}", deps.Handle(h.serveQuery))
	h.mux.Handle("GET /schema", deps.Handle(h.describeTables))        // and HEAD: describe.go
	h.mux.Handle("GET /schema/{$}", deps.Handle(h.describeTables))    // as before patterns
	h.mux.Handle("GET /schema/{table}", deps.Handle(h.describeTable)) // and HEAD
	return h
}

// WithNotifier replaces the notification sender (tests, or a sender with other targets).
func (h *Handler) WithNotifier(s *notify.Sender) *Handler {
	h.notify = s
	return h
}

// Request is the body of a query, or of a revert (mode "revert", with Revert naming
// the request id of the committed write to undo, and no SQL).
type Request struct {
	SQL     string `json:"sql"`
	Mode    string `json:"mode"`
	DryRun  bool   `json:"dry_run"`
	MaxRows int    `json:"max_rows"`
	Format  string `json:"format"`
	Reason  string `json:"reason"`
	Revert  string `json:"revert"`

	// mode is Mode, parsed once (validate, lenient): the guard's mode for a statement.
	// A revert is a write, and says so in reverts.
	mode    sqlguard.Mode
	reverts bool
}

// parseMode reads a request's mode: "" is a read, and a revert is a write.
func parseMode(s string) (mode sqlguard.Mode, reverts, ok bool) {
	switch s {
	case "", "read":
		return sqlguard.Read, false, true
	case "write":
		return sqlguard.Write, false, true
	case "revert":
		return sqlguard.Write, true, true
	}
	return sqlguard.Read, false, false
}

// A call is one decoded request on its way through serve: who asks, what they asked,
// what was decided about it and, for a revert, the plan. Its methods run it (run.go,
// revert.go) and describe it to the audit trail.
type call struct {
	h       *Handler
	rid     string
	sess    *grants.Session
	req     *Request
	v       *verdict
	plan    *revertPlan
	started time.Time
	// queued counts the security messages a committed write queued (recordCommit), to
	// deliver once it has committed.
	queued int
}

// A verdict is what was decided about a request: the guard's Decision for a statement.
// A revert's comes from its planner (planRevert): a Decision that only describes the
// plan (Kind "revert", Tables, Target, and the masked statements as Statement), allowed
// or not, and when not, the refusal, whose rules are the query package's, not the guard's.
type verdict struct {
	*sqlguard.Decision
	refused *revertRefusal // a revert's refusal; nil for statements and planned reverts
}

func (v *verdict) allowed() bool { return v.Allowed && v.refused == nil }

// rule is the id of the rule that refused the request: one of sqlguard.AllRules, or of
// the revert rules (revert.go).
func (v *verdict) rule() string {
	if v.refused != nil {
		return v.refused.rule
	}
	return v.Rule
}

func (v *verdict) message() string {
	if v.refused != nil {
		return v.refused.message
	}
	return v.Message
}

// A commitHook runs inside a write's transaction just before COMMIT, with what the write
// did; an error rolls the write back.
type commitHook func(ctx context.Context, tx pgx.Tx, res *result) error

// ServeHTTP routes POST / (a query), GET /schema and GET /schema/{table} (descriptions).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// serveQuery is serve, with Retry-After on the answers that ask to come back shortly.
func (h *Handler) serveQuery(w http.ResponseWriter, r *http.Request, rid string) error {
	err := h.serve(w, r, rid)
	if c := errorClass(err); c == "too_many_statements" || c == "busy" {
		w.Header().Set("Retry-After", retryAfter)
	}
	return err
}

// serve is the story of one query: authenticate, decode, decide, audit, execute, audit,
// respond. It returns an error only before it has answered.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	id, err := h.deps.Authenticate(ctx, r)
	if err != nil {
		if id.Email != "" { // verified, but not a member: refused, and on the record
			return h.refuseUnread(ctx, rid, id.Email, peek(r), err)
		}
		return err // no verified identity: nobody to put on the record
	}
	req, err := h.decode(w, r)
	if err != nil {
		return h.refuseUnread(ctx, rid, id.Email, req, err)
	}
	sess, err := h.grants.Session(ctx, id.Email)
	if err != nil {
		return &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "database_unavailable", Message: "the database could not be reached to check your grants; nothing ran", Err: err}
	}
	c := &call{h: h, rid: rid, sess: sess, req: req}
	if err := c.decide(ctx); err != nil {
		return err
	}

	attempt := c.entry(audit.EventQueryAttempt)
	if !c.v.allowed() {
		attempt.Decision, attempt.Rule, attempt.Message = audit.DecisionDenied, c.v.rule(), c.v.message()
		attempt.Severity = audit.SeverityNotice
		if c.v.Forbidden != "" {
			attempt.Severity = audit.SeverityAlert
		}
	} else {
		attempt.Decision = audit.DecisionAllowed
	}
	if err := h.deps.Audit.Record(ctx, attempt); err != nil {
		return h.auditUnavailable(rid, err)
	}
	if err := h.alertOnAttempt(ctx, attempt, c.v); err != nil {
		return err
	}
	if !c.v.allowed() {
		return c.refusal(ctx)
	}

	c.started = time.Now()
	res, err := c.execute(ctx, c.recordCommit)
	if err == nil {
		err = afterExpiry(sess, res)
	}
	if err != nil {
		err = h.explainFailure(ctx, sess, err)
		outcome := c.outcome(nil)
		outcome.Decision, outcome.ErrorClass = audit.DecisionError, errorClass(err)
		outcome.Message = err.Error()
		if rerr := h.deps.Audit.Record(ctx, outcome); rerr != nil {
			if errorClass(err) == "audit_unavailable" {
				return err // write already refused, and alerted, for the same trail failure
			}
			return h.auditUnavailable(rid, rerr)
		}
		return err
	}
	// A committed write recorded its outcome before COMMIT (recordCommit); everything
	// else records it here, before answering.
	if res.write == nil || !res.write.Committed {
		if err := h.deps.Audit.Record(ctx, c.outcome(res)); err != nil {
			return h.auditUnavailable(rid, err)
		}
	}
	if c.queued > 0 {
		h.deliver(ctx)
	}
	h.annotateMasked(sess.Email, res.columns)
	res.requestID = rid
	res.duration = time.Since(c.started)
	res.until = sess.Deadline()
	return render(w, req.Format, res)
}

// outcome is the audit record of what the call's execution produced: res, or an error
// the caller fills in when res is nil.
func (c *call) outcome(res *result) audit.Entry {
	e := c.entry(audit.EventQueryResult)
	e.DurationMS = time.Since(c.started).Milliseconds()
	if res == nil {
		return e
	}
	e.Decision = audit.DecisionAllowed
	e.Rows, e.Bytes = res.rowCount(), res.bytes
	if res.write != nil {
		e.Details["committed"], e.Details["dry_run"] = res.write.Committed, res.write.DryRun
	}
	maps.Copy(e.Details, res.details)
	return e
}

// recordCommit is a write's commit hook: its outcome, with each changed row's key and
// values before the write (masked where sensitive), is audited and the alerts it calls
// for are raised inside its transaction, so a write the trail cannot record is rolled
// back.
func (c *call) recordCommit(ctx context.Context, tx pgx.Tx, res *result) error {
	outcome := c.outcome(res)
	if err := c.h.deps.Audit.Record(ctx, outcome); err != nil {
		return c.h.auditUnavailable(c.rid, err)
	}
	queued, err := c.h.alertOnWrite(ctx, tx, outcome, c.sess, c.v.Target, res.write.RowsAffected)
	switch {
	case errors.Is(err, audit.ErrUnavailable):
		return c.h.auditUnavailable(c.rid, err)
	case err != nil:
		return dbError(err)
	}
	c.queued = queued
	return nil
}

// decide is the guard's verdict on a statement, or the planner's on a revert with the
// plan it would run. The error is for failures to reach the database, not refusals.
func (c *call) decide(ctx context.Context) error {
	if c.req.reverts {
		return c.planRevert(ctx)
	}
	h := c.h
	if err := h.schema.load(ctx, h.deps.Pool, h.deps.Policy); err != nil {
		return err
	}
	c.v = &verdict{Decision: h.schema.checker().Check(c.req.SQL, h.deps.Policy.Permissions(c.req.mode, c.sess.Roles()))}
	return nil
}

// execute runs what was decided; commit is a write's commit hook.
func (c *call) execute(ctx context.Context, commit commitHook) (*result, error) {
	switch {
	case c.req.reverts:
		return c.revert(ctx, commit)
	case c.req.mode == sqlguard.Write:
		return c.write(ctx, commit)
	}
	return c.read(ctx)
}

// decode reads and checks the envelope. When it fails, the Request it returns, if any,
// is what could be read of the body (leniently), for the audit entry of the refusal.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request) (*Request, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, httpapi.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", maxBody)
	}
	if err != nil {
		return nil, httpapi.Errorf(http.StatusBadRequest, "malformed_json", "the body could not be read: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	req, err := h.validate(w, r)
	if err != nil {
		if req == nil {
			req = lenient(body)
		}
		return req, err
	}
	return req, nil
}

// lenient reads what it can of a body that failed to decode (unknown fields, a field of
// the wrong type): the SQL, to be audited and checked for forbidden statements.
func lenient(body []byte) *Request {
	var loose struct {
		SQL  any `json:"sql"`
		Mode any `json:"mode"`
	}
	if json.Unmarshal(body, &loose) != nil {
		return nil
	}
	req := &Request{}
	req.SQL, _ = loose.SQL.(string)
	req.Mode, _ = loose.Mode.(string)
	req.mode, req.reverts, _ = parseMode(req.Mode) // an unknown mode is checked as a read
	return req
}

// peek reads the body of a request that is refused before it is decoded, for its audit
// entry; nil when it is not a readable envelope.
func peek(r *http.Request) *Request {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil
	}
	return lenient(body)
}

// refuseUnread records the refusal (cause) of a verified person's request that was not
// decided because it could not be read or may not be made, with what could be read of it
// (req may be nil), and raises security.forbidden_statement when its SQL is a forbidden
// statement: every authenticated request is on the record, whatever is wrong with it.
func (h *Handler) refuseUnread(ctx context.Context, rid, email string, req *Request, cause error) error {
	if req == nil {
		req = &Request{}
	}
	entry := audit.Entry{
		Event: audit.EventQueryAttempt, Actor: email, Function: EntryPoint, RequestID: rid,
		SQL: req.SQL, Mode: req.Mode, Reason: req.Reason,
		Decision: audit.DecisionDenied, Rule: errorClass(cause), ErrorClass: errorClass(cause),
		Message: cause.Error(), Severity: audit.SeverityNotice,
	}
	var forbidden string
	if strings.TrimSpace(req.SQL) != "" && h.schema.load(ctx, h.deps.Pool, h.deps.Policy) == nil {
		mode := req.mode
		if req.reverts {
			mode = sqlguard.Read // a revert takes no SQL: what it was sent is checked as a read
		}
		dec := h.schema.checker().Check(req.SQL, h.deps.Policy.Permissions(mode, nil))
		entry.Fingerprint, entry.Tables, forbidden = dec.Fingerprint, dec.Tables, dec.Forbidden
	}
	if forbidden != "" {
		entry.Severity = audit.SeverityAlert
	}
	if err := h.deps.Audit.Record(ctx, entry); err != nil {
		return h.auditUnavailable(rid, err)
	}
	if forbidden != "" {
		queued, err := h.alerts.Raise(ctx, nil, alerts.ForbiddenStatement(entry, forbidden))
		if errors.Is(err, audit.ErrUnavailable) {
			return h.auditUnavailable(rid, err)
		}
		if err != nil {
			h.logError(ctx, rid, "raising the forbidden-statement alert", err)
		}
		if queued > 0 {
			h.deliver(ctx)
		}
	}
	return cause
}

// validate decodes the envelope and checks its fields.
func (h *Handler) validate(w http.ResponseWriter, r *http.Request) (*Request, error) {
	var req Request
	if err := httpapi.DecodeJSON(w, r, maxBody, &req); err != nil {
		return nil, err
	}
	lim := h.deps.Policy.Limits
	var ok bool
	if req.mode, req.reverts, ok = parseMode(req.Mode); !ok {
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_mode", "mode must be \"read\", \"write\" or \"revert\", not %q", req.Mode)
	}
	if req.Mode == "" {
		req.Mode = "read"
	}
	switch {
	case req.reverts && req.SQL != "":
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_revert", "a revert takes no \"sql\": Airlock writes the compensating statements from what the write changed")
	case req.reverts && !isRequestID(req.Revert):
		return &req, httpapi.Errorf(http.StatusBadRequest, "revert_required", "mode \"revert\" needs \"revert\": the request_id (16 hex digits) of the write to undo, not %q", req.Revert)
	case !req.reverts && req.Revert != "":
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_revert", "\"revert\" is only for mode \"revert\"")
	case !req.reverts && strings.TrimSpace(req.SQL) == "":
		return &req, httpapi.Errorf(http.StatusBadRequest, "sql_required", "the field \"sql\" is required")
	}
	switch req.Format {
	case "":
		req.Format = "json"
	case "json", "table", "csv":
	default:
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_format", "format must be \"json\", \"table\" or \"csv\", not %q", req.Format)
	}
	switch {
	case req.MaxRows == 0:
		req.MaxRows = lim.DefaultMaxRows
	case req.MaxRows < 0 || req.MaxRows > lim.MaxRows:
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_max_rows", "max_rows must be between 1 and %d", lim.MaxRows)
	}
	if req.mode == sqlguard.Write && len(strings.TrimSpace(req.Reason)) < 10 {
		return &req, httpapi.Errorf(http.StatusBadRequest, "reason_required", "a %s needs a reason of at least 10 characters saying why (a ticket or the client's request)", req.Mode)
	}
	if req.mode == sqlguard.Read && req.DryRun {
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_dry_run", "dry_run applies to writes only")
	}
	return &req, nil
}

// refusal turns a denial into a 403 that says what to do about it.
func (c *call) refusal(ctx context.Context) error {
	v := c.v
	e := &httpapi.Error{Status: http.StatusForbidden, Code: "denied", Rule: v.rule(), Message: v.message(), Position: v.Position,
		GrantRole: c.h.refusalRole(c.sess.Email, v)}
	switch v.rule() {
	case sqlguard.RuleInputTooLarge:
		e.Status = http.StatusRequestEntityTooLarge
	case sqlguard.RuleParseError, sqlguard.RuleEmptyStatement:
		e.Status, e.Code = http.StatusBadRequest, "invalid_sql"
	case ruleWriteNotFound:
		e.Status = http.StatusNotFound
	case ruleAlreadyReverted:
		e.Status = http.StatusConflict
	case ruleRevertNeedsDel, ruleRevertCannot:
		e.Status = http.StatusUnprocessableEntity
	case sqlguard.RuleNoWriteGrant, sqlguard.RuleWriteOperationNotGranted:
		if g, err := c.h.grants.LastEnded(ctx, c.sess.Email); err == nil && g != nil && len(g.Capabilities) > 0 && hasWrite(g) {
			e.Code = "grant_expired"
			e.Message = fmt.Sprintf("%s Your grant %d (%s) ended at %s.", v.message(), g.ID, g.Role, g.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	return e
}

// afterExpiry refuses to hand over a read's rows once a grant it ran under has ended,
// however recently they were computed.
func afterExpiry(sess *grants.Session, res *result) error {
	if g := sess.Deadline(); res.write == nil && !g.IsZero() && !time.Now().Before(g) {
		return grantExpired(g, "it ended before the answer could be sent, so the rows are withheld")
	}
	return nil
}

// isRequestID reports whether s has the shape of the request ids Airlock hands out
// (httpapi.NewRequestID: 16 lower-case hex digits).
func isRequestID(s string) bool {
	return len(s) == 16 && strings.Trim(s, "0123456789abcdef") == ""
}

func hasWrite(g *grants.Grant) bool {
	for _, c := range g.Capabilities {
		if strings.HasPrefix(c, "write_") {
			return true
		}
	}
	return false
}

// explainFailure says "your grant was revoked" or "your grant expired" when a statement
// was ended because the grant it ran under ended, rather than a bare connection error.
func (h *Handler) explainFailure(ctx context.Context, sess *grants.Session, err error) error {
	if e, ok := errors.AsType[*httpapi.Error](err); ok && e.Code != "connection_lost" && e.Code != "timeout" {
		return err
	}
	if e := h.revoked(ctx, sess); e != nil {
		return e
	}
	if d := sess.Deadline(); !d.IsZero() && !time.Now().Before(d.Add(-time.Second)) {
		return httpapi.Errorf(http.StatusForbidden, "grant_expired", "your grant ended at %s and the statement running under it was stopped", d.UTC().Format(time.RFC3339))
	}
	return err
}

// entry is the audit record of the call, as far as it is known before it runs.
func (c *call) entry(event string) audit.Entry {
	req, v, sess := c.req, c.v, c.sess
	details := map[string]any{"kind": v.Kind, "dry_run": req.DryRun}
	if req.Revert != "" {
		details["reverts"] = req.Revert
	}
	if cols := c.h.unmaskedColumns(sess, req.mode, v.Columns); len(cols) > 0 {
		details["unmasked_columns"] = cols // what a grant let this statement see in clear
	}
	return audit.Entry{
		Event:         event,
		Actor:         sess.Email,
		Function:      EntryPoint,
		RequestID:     c.rid,
		GrantIDs:      sess.IDs(),
		SQL:           cmp.Or(req.SQL, v.Statement), // a revert's SQL is the masked plan
		Fingerprint:   v.Fingerprint,
		Mode:          req.Mode,
		Tables:        v.Tables,
		MaskedColumns: v.MaskedColumns,
		Reason:        req.Reason,
		Details:       details,
	}
}

// unmaskedColumns lists the sensitive "table.column" pairs among cols that the session
// sees in clear because of a grant: what an unmasked grant was used for, for the audit
// trail and the evidence reports built from it.
func (h *Handler) unmaskedColumns(sess *grants.Session, mode sqlguard.Mode, cols []string) []string {
	unmasked := h.deps.Policy.Permissions(mode, sess.Roles()).Unmasked
	var out []string
	for _, c := range cols {
		table, col, ok := strings.Cut(c, ".")
		if !ok || !unmasked[table] {
			continue
		}
		if t, ok := h.deps.Policy.Table(table); ok {
			if _, sensitive := t.Masked[col]; sensitive {
				out = append(out, c)
			}
		}
	}
	return out
}

// alertOnAttempt raises, before anything runs, the alerts an attempt calls for: a
// forbidden statement, sensitive columns the person may only see masked, a burst of
// refusals. Like any entry, an alert the trail cannot take stops the request.
func (h *Handler) alertOnAttempt(ctx context.Context, attempt audit.Entry, v *verdict) error {
	var raise []audit.Entry
	if v.Forbidden != "" {
		raise = append(raise, alerts.ForbiddenStatement(attempt, v.Forbidden))
	}
	if len(v.MaskedColumns) > 0 {
		raise = append(raise, alerts.MaskedColumnAccess(attempt))
	}
	if !v.allowed() {
		burst := h.deps.Policy.Alerts
		n, err := h.alerts.CountDenial(ctx, attempt.Actor, v.rule(), burst.DeniedBurstWindow)
		switch {
		case err != nil:
			// The refusal itself is recorded; only the burst count is missing.
			h.logError(ctx, attempt.RequestID, "counting refusals", err)
		case alerts.BurstReached(n, burst.DeniedBurstCount):
			raise = append(raise, alerts.DeniedBurst(attempt, n, burst.DeniedBurstWindow))
		}
	}
	queued, err := h.alerts.Raise(ctx, nil, raise...)
	if errors.Is(err, audit.ErrUnavailable) {
		return h.auditUnavailable(attempt.RequestID, err)
	}
	if err != nil {
		h.logError(ctx, attempt.RequestID, "raising alerts", err)
	}
	if queued > 0 {
		h.deliver(ctx)
	}
	return nil
}

// alertOnWrite raises, inside the write's transaction and before COMMIT, the alerts a
// committed write calls for: more rows than the bulk threshold, and any write under
// break-glass. It returns how many security messages it queued.
func (h *Handler) alertOnWrite(ctx context.Context, tx pgx.Tx, outcome audit.Entry, sess *grants.Session, target string, rows int64) (int, error) {
	var raise []audit.Entry
	if th := h.deps.Policy.Alerts.BulkWriteRows; th > 0 && rows > int64(th) {
		raise = append(raise, alerts.BulkWrite(outcome, target, rows, th))
	}
	var bg []int64
	for _, g := range sess.Grants {
		if g.BreakGlass && slices.Contains(g.Capabilities, "write_"+target) {
			bg = append(bg, g.ID)
		}
	}
	if len(bg) > 0 {
		raise = append(raise, alerts.BreakglassWrite(outcome, target, rows, bg))
	}
	return h.alerts.Raise(ctx, tx, raise...)
}

// deliver sends queued security messages now, within a short deadline: a function
// instance gets no CPU after answering. What fails stays in the outbox, and the sweeper
// delivers it within a minute.
func (h *Handler) deliver(ctx context.Context) { h.notify.FlushWithin(ctx, 2*time.Second, 10) }

// logError keeps in the function's log a failure the answer does not report.
func (h *Handler) logError(ctx context.Context, rid, what string, err error) {
	h.deps.Log.ErrorContext(ctx, "query: "+what+": "+err.Error(), "function", EntryPoint, "request_id", rid, "error", err.Error())
}

// auditUnavailable refuses the request because the trail could not record it (cause);
// deps logs the audit.unavailable alert.
func (h *Handler) auditUnavailable(rid string, cause error) error {
	return h.deps.AuditUnavailable(rid, cause, "the audit trail could not confirm the record of this request, so nothing ran; try again shortly")
}

func errorClass(err error) string {
	if e, ok := errors.AsType[*httpapi.Error](err); ok {
		return e.Code
	}
	return "internal"
}

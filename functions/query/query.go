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
}

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
	dec, plan, err := h.decide(ctx, sess, req)
	if err != nil {
		return err
	}

	attempt := h.entry(audit.EventQueryAttempt, rid, sess, req, dec)
	if !dec.Allowed {
		attempt.Decision, attempt.Rule, attempt.Message = audit.DecisionDenied, dec.Rule, dec.Message
		attempt.Severity = audit.SeverityNotice
		if dec.Forbidden != "" {
			attempt.Severity = audit.SeverityAlert
		}
	} else {
		attempt.Decision = audit.DecisionAllowed
	}
	if err := h.deps.Audit.Record(ctx, attempt); err != nil {
		return h.auditUnavailable(rid, err)
	}
	if err := h.alertOnAttempt(ctx, attempt, dec); err != nil {
		return err
	}
	if !dec.Allowed {
		return h.refusal(ctx, sess, dec)
	}

	started := time.Now()
	res, err := h.execute(ctx, rid, sess, req, dec, plan)
	if err == nil {
		err = afterExpiry(sess, res)
	}
	outcome := h.entry(audit.EventQueryResult, rid, sess, req, dec)
	outcome.DurationMS = time.Since(started).Milliseconds()
	if err != nil {
		err = h.explainFailure(ctx, sess, err)
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
	outcome.Decision = audit.DecisionAllowed
	outcome.Rows, outcome.Bytes = res.rowCount(), res.bytes
	if res.write != nil {
		outcome.Details["committed"], outcome.Details["dry_run"] = res.write.Committed, res.write.DryRun
	}
	// A committed write recorded its outcome before COMMIT (see write); everything else
	// records it here, before answering.
	if res.write == nil || !res.write.Committed {
		if err := h.deps.Audit.Record(ctx, outcome); err != nil {
			return h.auditUnavailable(rid, err)
		}
	}
	h.annotateMasked(sess.Email, res.columns)
	res.requestID = rid
	res.duration = time.Since(started)
	res.until = sess.Deadline()
	return render(w, req.Format, res)
}

// decide is the guard's verdict on a statement, or the verdict on a revert with the plan
// it would run. The error is for failures to reach the database, not refusals.
func (h *Handler) decide(ctx context.Context, sess *grants.Session, req *Request) (*sqlguard.Decision, *revertPlan, error) {
	if req.Mode == "revert" {
		return h.planRevert(ctx, sess, req)
	}
	mode := sqlguard.Read
	if req.Mode == "write" {
		mode = sqlguard.Write
	}
	if err := h.schema.load(ctx, h.deps.Pool, h.deps.Policy); err != nil {
		return nil, nil, err
	}
	return h.schema.checker().Check(req.SQL, h.deps.Policy.Permissions(mode, sess.Roles())), nil, nil
}

// execute runs what was decided.
func (h *Handler) execute(ctx context.Context, rid string, sess *grants.Session, req *Request, dec *sqlguard.Decision, plan *revertPlan) (*result, error) {
	switch req.Mode {
	case "write":
		return h.write(ctx, rid, sess, req, dec)
	case "revert":
		return h.revert(ctx, rid, sess, req, dec, plan)
	}
	return h.read(ctx, rid, sess, req, dec)
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
		mode := sqlguard.Read
		if req.Mode == "write" {
			mode = sqlguard.Write
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
	switch req.Mode {
	case "":
		req.Mode = "read"
	case "read", "write", "revert":
	default:
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_mode", "mode must be \"read\", \"write\" or \"revert\", not %q", req.Mode)
	}
	switch {
	case req.Mode == "revert" && req.SQL != "":
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_revert", "a revert takes no \"sql\": Airlock writes the compensating statements from what the write changed")
	case req.Mode == "revert" && !isRequestID(req.Revert):
		return &req, httpapi.Errorf(http.StatusBadRequest, "revert_required", "mode \"revert\" needs \"revert\": the request_id (16 hex digits) of the write to undo, not %q", req.Revert)
	case req.Mode != "revert" && req.Revert != "":
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_revert", "\"revert\" is only for mode \"revert\"")
	case req.Mode != "revert" && strings.TrimSpace(req.SQL) == "":
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
	if req.Mode != "read" && len(strings.TrimSpace(req.Reason)) < 10 {
		return &req, httpapi.Errorf(http.StatusBadRequest, "reason_required", "a %s needs a reason of at least 10 characters saying why (a ticket or the client's request)", req.Mode)
	}
	if req.Mode == "read" && req.DryRun {
		return &req, httpapi.Errorf(http.StatusBadRequest, "invalid_dry_run", "dry_run applies to writes only")
	}
	return &req, nil
}

// refusal turns a guard denial into a 403 that says what to do about it.
func (h *Handler) refusal(ctx context.Context, sess *grants.Session, dec *sqlguard.Decision) error {
	e := &httpapi.Error{Status: http.StatusForbidden, Code: "denied", Rule: dec.Rule, Message: dec.Message, Position: dec.Position,
		GrantRole: h.refusalRole(sess.Email, dec)}
	switch dec.Rule {
	case "input_too_large":
		e.Status = http.StatusRequestEntityTooLarge
	case "parse_error", "empty_statement":
		e.Status, e.Code = http.StatusBadRequest, "invalid_sql"
	case ruleWriteNotFound:
		e.Status = http.StatusNotFound
	case ruleAlreadyReverted:
		e.Status = http.StatusConflict
	case ruleRevertNeedsDel, ruleRevertCannot:
		e.Status = http.StatusUnprocessableEntity
	case "no_write_grant", "write_operation_not_granted":
		if g, err := h.grants.LastEnded(ctx, sess.Email); err == nil && g != nil && len(g.Capabilities) > 0 && hasWrite(g) {
			e.Code = "grant_expired"
			e.Message = fmt.Sprintf("%s Your grant %d (%s) ended at %s.", dec.Message, g.ID, g.Role, g.ExpiresAt.UTC().Format(time.RFC3339))
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

func (h *Handler) entry(event, rid string, sess *grants.Session, req *Request, dec *sqlguard.Decision) audit.Entry {
	details := map[string]any{"kind": dec.Kind, "dry_run": req.DryRun}
	if req.Revert != "" {
		details["reverts"] = req.Revert
	}
	if cols := h.unmaskedColumns(sess, req.Mode, dec.Columns); len(cols) > 0 {
		details["unmasked_columns"] = cols // what a grant let this statement see in clear
	}
	return audit.Entry{
		Event:         event,
		Actor:         sess.Email,
		Function:      EntryPoint,
		RequestID:     rid,
		GrantIDs:      sess.IDs(),
		SQL:           cmp.Or(req.SQL, dec.Statement), // a revert's SQL is the masked plan
		Fingerprint:   dec.Fingerprint,
		Mode:          req.Mode,
		Tables:        dec.Tables,
		MaskedColumns: dec.MaskedColumns,
		Reason:        req.Reason,
		Details:       details,
	}
}

// unmaskedColumns lists the sensitive "table.column" pairs among cols that the session
// sees in clear because of a grant: what an unmasked grant was used for, for the audit
// trail and the evidence reports built from it.
func (h *Handler) unmaskedColumns(sess *grants.Session, mode string, cols []string) []string {
	m := sqlguard.Read
	if mode != "read" {
		m = sqlguard.Write
	}
	unmasked := h.deps.Policy.Permissions(m, sess.Roles()).Unmasked
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
func (h *Handler) alertOnAttempt(ctx context.Context, attempt audit.Entry, dec *sqlguard.Decision) error {
	var raise []audit.Entry
	if dec.Forbidden != "" {
		raise = append(raise, alerts.ForbiddenStatement(attempt, dec.Forbidden))
	}
	if len(dec.MaskedColumns) > 0 {
		raise = append(raise, alerts.MaskedColumnAccess(attempt))
	}
	if !dec.Allowed {
		burst := h.deps.Policy.Alerts
		n, err := h.alerts.CountDenial(ctx, attempt.Actor, dec.Rule, burst.DeniedBurstWindow)
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

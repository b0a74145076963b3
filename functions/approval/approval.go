// Package approval is the ApprovalCallback function: approvers approve or deny access
// requests, and the approval that reaches a role's threshold creates the grant and gives
// the developer's database role its capabilities, in one transaction. It is the one
// function deployed without IAM invocation (Slack must reach it), so it verifies every
// caller itself: a fully verified Google ID token (or Identity-Aware Proxy assertion), or,
// on /slack/interactions, Slack's request signature.
package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	"airlock.dev/airlock/shared/requests"
)

// EntryPoint is the function's name in Cloud Functions.
const EntryPoint = "ApprovalCallback"

const maxBody = 16 << 10

var entry = app.NewEntry(EntryPoint, migrate.GroupApprovals, func(deps *app.Deps) (http.Handler, error) {
	if err := PublicVerifier(deps, deps.Config.IAPAudience); err != nil {
		return nil, err
	}
	return New(deps), nil
})

// ApprovalCallback is the Cloud Functions entry point. Its dependencies are built from
// the environment on the first request.
func ApprovalCallback(w http.ResponseWriter, r *http.Request) { entry.ServeHTTP(w, r) }

// PublicVerifier replaces deps.Auth, for a function nobody has authenticated upstream:
// outside AUTH_MODE=local it verifies Google ID tokens for AUTH_AUDIENCE in full (never
// the claims-only CloudRun verifier), and IAP assertions when iapAudience is set (see
// app.PublicVerifier).
func PublicVerifier(deps *app.Deps, iapAudience string) error {
	if deps.Config.AuthMode == "local" {
		return nil
	}
	c := deps.Config
	c.IAPAudience = iapAudience
	v, err := app.PublicVerifier(context.Background(), c)
	if err != nil {
		return fmt.Errorf("approval: %w", err)
	}
	deps.Auth = v
	return nil
}

// A Handler serves ApprovalCallback.
type Handler struct {
	deps   *app.Deps
	store  *requests.Store
	notify *notify.Sender
	alerts *alerts.Raiser
	slack  slackConfig
	web    webConfig
	now    func() time.Time // decides "outside working hours"
	mux    *httpapi.Mux
}

// New returns the handler for built dependencies.
func New(deps *app.Deps) *Handler {
	c := deps.Config
	secrets := &notify.SecretManager{}
	h := &Handler{
		deps:   deps,
		store:  requests.New(deps.Pool, deps.Role(), deps.Policy),
		notify: notify.New(deps.Pool, deps.Role(), c.Notify, nil, deps.Log),
		alerts: &alerts.Raiser{Audit: deps.Audit, Pool: deps.Pool, Role: deps.Role()},
		slack:  slackConfig{secrets: secrets, name: c.SlackSigningSecretName},
		web:    webConfig{backURL: c.RequestAccessURL, csrfSecret: c.CSRFSecretName, secrets: secrets},
		now:    time.Now,
		mux:    httpapi.NewMux(),
	}
	h.mux.Handle("POST /{$}", deps.Handle(h.serve))
	h.mux.Handle("POST "+SlackPath, deps.Handle(h.serveSlack))
	h.mux.Handle("POST "+WebPath, deps.Handle(h.serveWeb))
	return h
}

// WithClock replaces the clock that decides whether an approval falls outside the
// policy's working hours (tests).
func (h *Handler) WithClock(now func() time.Time) *Handler {
	h.now = now
	return h
}

// WithNotifier replaces the notification sender (tests, or a sender with other targets).
func (h *Handler) WithNotifier(s *notify.Sender) *Handler {
	h.notify = s
	return h
}

// deliver sends the notifications the committed transaction queued. It runs after the
// commit and before the answer (a function instance gets no CPU after answering), within
// a short deadline; whatever fails stays in the outbox for a later flush.
func (h *Handler) deliver(ctx context.Context) { h.notify.FlushWithin(ctx, 5*time.Second, 20) }

// Request is the body of a decision.
type Request struct {
	RequestID string `json:"request_id"`
	GrantID   int64  `json:"grant_id"`
	Decision  string `json:"decision"`
	Comment   string `json:"comment"`
}

// Response is the answer to a decision.
type Response struct {
	RequestID         string     `json:"request_id"`
	Status            string     `json:"status"`
	Decision          string     `json:"decision"`
	Approvals         int        `json:"approvals"`
	ApprovalsRequired int        `json:"approvals_required"`
	Replayed          bool       `json:"replayed,omitempty"`
	GrantID           int64      `json:"grant_id,omitempty"`
	GrantExpiresAt    *time.Time `json:"grant_expires_at,omitempty"`
}

// ServeHTTP routes POST / (a decision as JSON), POST /slack/interactions (Slack's
// buttons) and POST /web/decide (the web page's buttons).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// serve is the story of one decision: authenticate, decode, decide and audit in one
// transaction, respond.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	id, err := h.deps.Authenticate(ctx, r)
	if err != nil {
		return h.refuse(ctx, rid, id.Email, "api", nil, err)
	}
	var body Request
	if err := httpapi.DecodeJSON(w, r, maxBody, &body); err != nil {
		return h.refuse(ctx, rid, id.Email, "api", &body, err)
	}
	if body.Decision == "revoke" {
		return h.refuse(ctx, rid, id.Email, "api", &body, h.revoke(w, r, rid, id.Email, &body))
	}
	d := requests.Decision{RequestID: strings.TrimSpace(body.RequestID), Approver: id.Email, Decision: body.Decision, Comment: strings.TrimSpace(body.Comment), Via: "api"}
	if err := validate(d, body.GrantID); err != nil {
		return h.refuse(ctx, rid, id.Email, "api", &body, err)
	}
	out, err := h.Decide(ctx, rid, d)
	if err != nil {
		return h.refuse(ctx, rid, id.Email, "api", &body, err)
	}
	httpapi.WriteJSON(w, http.StatusOK, response(out, d.Decision))
	return nil
}

// refuse records decision.refused for a request from a verified actor (an approver's
// token, or a Slack user whose callback's signature verified) that was refused with
// cause (body: what was read of it), and returns cause, or audit_unavailable when the
// trail cannot take the record. A nil cause, a request with no verified actor (401),
// and audit_unavailable itself pass through unrecorded.
func (h *Handler) refuse(ctx context.Context, rid, actor, via string, body *Request, cause error) error {
	if cause == nil || actor == "" {
		return cause
	}
	e, ok := errors.AsType[*httpapi.Error](cause)
	if !ok {
		e = &httpapi.Error{Status: http.StatusInternalServerError, Code: "internal", Message: cause.Error()}
	}
	if e.Code == "audit_unavailable" {
		return cause
	}
	if body == nil {
		body = &Request{}
	}
	entry := audit.Entry{
		Event: audit.EventDecisionRefused, Actor: actor, Function: EntryPoint, RequestID: rid,
		Decision: audit.DecisionDenied, Rule: e.Code, ErrorClass: e.Code, Message: e.Message, Reason: body.Comment,
		Severity: audit.SeverityNotice,
		Details:  map[string]any{"status": e.Status, "via": via, "decision": body.Decision},
	}
	if id := strings.TrimSpace(body.RequestID); id != "" && len(id) <= 64 {
		entry.AccessRequestID = id
	}
	if body.GrantID != 0 {
		entry.Details["grant_id"] = fmt.Sprint(body.GrantID)
	}
	switch {
	case e.Status >= 500:
		entry.Decision, entry.Severity = audit.DecisionError, audit.SeverityWarning
	case e.Status == http.StatusForbidden:
		entry.Severity = audit.SeverityWarning // deciding what they may not: self-approval, not an approver
	}
	if err := h.deps.Audit.Record(ctx, entry); err != nil {
		return h.deps.AuditUnavailable(rid, err, "the audit trail could not confirm the record of this refusal; nothing changed")
	}
	return cause
}

func validate(d requests.Decision, grantID int64) error {
	switch {
	case grantID != 0:
		return httpapi.Errorf(http.StatusBadRequest, "invalid_field", "grant_id goes with decision \"revoke\" only")
	case d.RequestID == "":
		return httpapi.Errorf(http.StatusBadRequest, "request_id_required", "the field \"request_id\" is required")
	case len(d.RequestID) > 64:
		return httpapi.Errorf(http.StatusBadRequest, "invalid_request_id", "request_id is too long")
	case d.Decision != requests.Approve && d.Decision != requests.Deny:
		return httpapi.Errorf(http.StatusBadRequest, "invalid_decision", "decision must be \"approve\", \"deny\" or \"revoke\", not %q", d.Decision)
	case len(d.Comment) > 2000:
		return httpapi.Errorf(http.StatusBadRequest, "comment_too_long", "the comment must be at most 2000 bytes")
	}
	return nil
}

func response(out *requests.Outcome, decision string) Response {
	r := out.Request
	resp := Response{RequestID: r.ID, Status: r.Status, Decision: decision, Approvals: r.Approved(), ApprovalsRequired: r.ApprovalsRequired, Replayed: out.Replayed}
	if out.Granted != nil {
		resp.GrantID, resp.GrantExpiresAt = out.Granted.ID, &out.Granted.ExpiresAt
	}
	return resp
}

// Decide runs one verified approver's decision, from the API, the web form or Slack, and
// maps its failures to answers.
func (h *Handler) Decide(ctx context.Context, rid string, d requests.Decision) (*requests.Outcome, error) {
	out, err := h.store.Decide(ctx, d, func(ctx context.Context, tx pgx.Tx, out *requests.Outcome) error {
		return h.record(ctx, tx, rid, d, out)
	})
	state, refused := errors.AsType[*requests.StateError](err)
	switch {
	case err == nil:
		if !out.Replayed {
			h.deliver(ctx)
		}
		return out, nil
	case errors.Is(err, audit.ErrUnavailable):
		return nil, h.deps.AuditUnavailable(rid, err, "the audit trail could not confirm the record of this decision, so it was not made; try again shortly")
	case errors.Is(err, requests.ErrNotFound):
		return nil, httpapi.Errorf(http.StatusNotFound, "request_not_found", "there is no access request %q", d.RequestID)
	case errors.Is(err, requests.ErrSelfApproval):
		return nil, httpapi.Errorf(http.StatusForbidden, "self_approval", "you cannot decide your own request %s; another approver must", d.RequestID)
	case errors.Is(err, requests.ErrNotApprover):
		return nil, httpapi.Errorf(http.StatusForbidden, "not_an_approver", "%s may not decide %s requests", d.Approver, out.Request.Role)
	case refused: // decided, expired, or the other decision: Detail says which, naming the request
		code := "request_decided"
		switch state.Kind {
		case requests.ErrExpired:
			code = "request_expired"
		case requests.ErrConflict:
			code = "decision_conflict"
		}
		return nil, httpapi.Errorf(http.StatusConflict, code, "%s", state.Detail)
	default:
		h.log(ctx, slog.LevelError, rid, "approval: deciding", err)
		return nil, httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "the decision could not be stored; nothing changed, try again")
	}
}

// revoke ends a grant now. Approvers of the grant's role may revoke it, and so may the
// grantee (giving access back early); grants.Store records grant.revoked before COMMIT.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, rid, by string, body *Request) error {
	ctx := r.Context()
	if body.GrantID <= 0 || body.RequestID != "" {
		return httpapi.Errorf(http.StatusBadRequest, "grant_id_required", "decision \"revoke\" takes a positive \"grant_id\" and no request_id")
	}
	store := grants.New(h.deps.Pool, h.deps.Role()).WithReplica(h.deps.Replica)
	grantee, roleName, err := store.Owner(ctx, body.GrantID)
	if errors.Is(err, grants.ErrNotFound) {
		return httpapi.Errorf(http.StatusNotFound, "grant_not_found", "there is no grant %d", body.GrantID)
	}
	if err != nil {
		h.log(ctx, slog.LevelError, rid, "approval: loading grant", err)
		return httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "the grant could not be loaded; nothing changed")
	}
	role, ok := h.deps.Policy.Role(roleName)
	if by != grantee && (!ok || !h.deps.Policy.CanApprove(by, role)) {
		return httpapi.Errorf(http.StatusForbidden, "not_an_approver", "%s may not revoke %s grants", by, roleName)
	}
	rv, err := store.Revoke(ctx, body.GrantID, by, h.deps.Audit, EntryPoint, rid)
	switch {
	case errors.Is(err, grants.ErrNotActive):
		return httpapi.Errorf(http.StatusConflict, "grant_not_active", "grant %d has already ended", body.GrantID)
	case errors.Is(err, audit.ErrUnavailable):
		return h.deps.AuditUnavailable(rid, err, "the audit trail could not confirm the revocation, so the grant was not revoked; try again shortly")
	case err != nil && rv == nil:
		h.log(ctx, slog.LevelError, rid, "approval: revoking", err)
		return httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "the grant could not be revoked; try again")
	case err != nil:
		h.log(ctx, slog.LevelWarn, rid, "approval: revoked", err)
	}
	h.deliver(ctx)
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"grant_id": rv.Grant.ID, "status": "revoked", "role": rv.Grant.Role,
		"grantee": rv.Grant.Grantee, "terminated_sessions": rv.Terminated})
	return nil
}

// record writes the decision's audit entries inside its transaction, before COMMIT, and
// queues the security channel's message for an approval outside working hours.
func (h *Handler) record(ctx context.Context, tx pgx.Tx, rid string, d requests.Decision, out *requests.Outcome) error {
	if out.Replayed {
		return nil
	}
	r := out.Request
	base := audit.Entry{
		Actor: d.Approver, Function: EntryPoint, RequestID: rid, AccessRequestID: r.ID, Reason: d.Comment, Tables: r.Tables(),
		Details: map[string]any{"role": r.Role, "requester": r.Requester, "via": d.Via, "approvals": r.Approved(),
			"approvals_required": r.ApprovalsRequired, "status": r.Status, "request_reason": r.Reason, "ticket": r.Ticket},
	}
	e := base
	if d.Decision == requests.Deny {
		e.Event, e.Decision = audit.EventRequestDenied, audit.DecisionDenied
	} else {
		e.Event, e.Decision = audit.EventRequestApproved, audit.DecisionAllowed
		if r.Status == requests.StatusPending {
			e.Decision = audit.DecisionPending
		}
	}
	if err := h.deps.Audit.Record(ctx, e); err != nil {
		return err
	}
	if wh := h.deps.Policy.Alerts.WorkingHours; wh != nil && d.Decision == requests.Approve && !wh.Contains(h.now()) {
		alert := alerts.OffHoursApproval(e, r.Requester, r.Role, h.now(), wh)
		if _, err := h.alerts.Raise(ctx, tx, alert); err != nil {
			return err
		}
	}
	if g := out.Granted; g != nil {
		ge := base
		ge.Event, ge.Decision, ge.Actor = audit.EventGrantCreated, audit.DecisionAllowed, d.Approver
		ge.GrantIDs = []int64{g.ID}
		ge.Details = map[string]any{"role": g.Role, "grantee": g.Grantee, "capabilities": g.Capabilities,
			"starts_at": g.StartsAt.UTC().Format(time.RFC3339), "expires_at": g.ExpiresAt.UTC().Format(time.RFC3339),
			"db_role": out.DBRole, "breakglass": g.BreakGlass, "approvers": approvers(r)}
		if g.BreakGlass {
			ge.Severity = audit.SeverityAlert
		}
		if err := h.deps.Audit.Record(ctx, ge); err != nil {
			return err
		}
	}
	return nil
}

func approvers(r *requests.Request) []string {
	var out []string
	for _, a := range r.Approvals {
		if a.Decision == requests.Approve {
			out = append(out, a.Approver)
		}
	}
	return out
}

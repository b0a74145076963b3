// Package access is the RequestAccess function: a developer asks for a role for a while
// and says why; the request waits for the approvers the policy names. Every request is in
// the audit trail before the answer is sent, and a break-glass request also pages the
// security channel at once.
package access

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/policy"
	"airlock.dev/airlock/shared/requests"
)

// EntryPoint is the function's name in Cloud Functions.
const EntryPoint = "RequestAccess"

// maxBody bounds a request body.
const maxBody = 16 << 10

// Bounds on the free-text fields.
const (
	minReason = 20
	maxReason = 2000
	maxTicket = 200
)

var entry = app.NewEntry(EntryPoint, migrate.GroupRequests, func(deps *app.Deps) (http.Handler, error) { return New(deps), nil })

// RequestAccess is the Cloud Functions entry point. Its dependencies are built from the
// environment on the first request.
func RequestAccess(w http.ResponseWriter, r *http.Request) { entry.ServeHTTP(w, r) }

// A Handler serves RequestAccess.
type Handler struct {
	deps   *app.Deps
	store  *requests.Store
	notify *notify.Sender
	web    webConfig
	mux    *httpapi.Mux
}

// New returns the handler for built dependencies.
func New(deps *app.Deps) *Handler {
	h := &Handler{
		deps:   deps,
		store:  requests.New(deps.Pool, deps.Role(), deps.Policy),
		notify: notify.New(deps.Pool, deps.Role(), deps.Config.Notify, nil, deps.Log),
		web:    webConfig{approvalURL: deps.Config.ApprovalURL, csrfSecret: deps.Config.CSRFSecretName, secrets: &notify.SecretManager{}},
		mux:    httpapi.NewMux(),
	}
	h.mux.Handle("POST /{$}", deps.Handle(h.post))
	h.mux.Handle("GET /{$}", deps.Handle(h.list)) // and HEAD
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

// Request is the body of an access request.
type Request struct {
	Role       string `json:"role"`
	Reason     string `json:"reason"`
	Duration   string `json:"duration"`
	Ticket     string `json:"ticket"`
	BreakGlass bool   `json:"breakglass"`
}

// Response is the answer to a created request.
type Response struct {
	RequestID         string    `json:"request_id"`
	Status            string    `json:"status"`
	Role              string    `json:"role"`
	BreakGlass        bool      `json:"breakglass"`
	Duration          string    `json:"duration"`
	Tables            []string  `json:"tables"`
	ApprovalsRequired int       `json:"approvals_required"`
	Approvers         []string  `json:"approvers"`
	ExpiresAt         time.Time `json:"expires_at"`
}

// ServeHTTP routes POST / (a request, as JSON or from the web form) and GET / (the
// caller's requests as JSON, or the web page).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// post is a new request, from the JSON API or the web form.
func (h *Handler) post(w http.ResponseWriter, r *http.Request, rid string) error {
	form, err := isForm(w, r)
	if err != nil {
		return err
	}
	if form {
		return h.createForm(w, r, rid)
	}
	return h.create(w, r, rid)
}

// create is the story of one request: authenticate, decode, decide, store and audit in
// one transaction, respond.
func (h *Handler) create(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	id, err := h.deps.Authenticate(ctx, r)
	if err != nil {
		return h.refuseVerified(ctx, rid, id.Email, err)
	}
	var body Request
	if err := httpapi.DecodeJSON(w, r, maxBody, &body); err != nil {
		return h.refuse(ctx, rid, id.Email, &body, err)
	}
	req, role, err := h.validate(id.Email, &body)
	if err != nil {
		return h.refuse(ctx, rid, id.Email, &body, err)
	}
	err = h.store.Create(ctx, req, func(ctx context.Context, req *requests.Request) error {
		return h.record(ctx, rid, req)
	})
	if err != nil {
		if errors.Is(err, audit.ErrUnavailable) {
			return h.auditUnavailable(rid, err)
		}
		h.logError(ctx, rid, "storing request", err)
		return h.refuse(ctx, rid, id.Email, &body, httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "the request could not be stored; nothing was created, try again"))
	}
	h.deliver(ctx)
	httpapi.WriteJSON(w, http.StatusCreated, Response{
		RequestID: req.ID, Status: req.Status, Role: req.Role, BreakGlass: req.BreakGlass,
		Duration: req.Duration.String(), Tables: req.Tables(),
		ApprovalsRequired: req.ApprovalsRequired, Approvers: h.approvers(role, id.Email), ExpiresAt: req.ExpiresAt,
	})
	return nil
}

// refuse records request.refused for an authenticated request refused with cause (body
// holds what was decoded of it) and returns cause, or audit_unavailable when the trail
// cannot take the record: every refusal of a verified person is on the trail.
func (h *Handler) refuse(ctx context.Context, rid, email string, body *Request, cause error) error {
	e, ok := errors.AsType[*httpapi.Error](cause)
	if !ok {
		e = &httpapi.Error{Status: http.StatusInternalServerError, Code: "internal", Message: cause.Error()}
	}
	if e.Code == "audit_unavailable" {
		return cause
	}
	entry := audit.Entry{
		Event: audit.EventRequestRefused, Actor: email, Function: EntryPoint, RequestID: rid,
		Decision: audit.DecisionDenied, Rule: e.Code, ErrorClass: e.Code, Message: e.Message, Reason: body.Reason,
		Severity: audit.SeverityNotice,
		Details:  map[string]any{"status": e.Status, "role": body.Role, "duration": body.Duration, "ticket": body.Ticket, "breakglass": body.BreakGlass},
	}
	switch {
	case e.Status >= 500:
		entry.Decision, entry.Severity = audit.DecisionError, audit.SeverityWarning
	case e.Status == http.StatusForbidden:
		entry.Severity = audit.SeverityWarning // asked for what the policy does not give them
	}
	if err := h.deps.Audit.Record(ctx, entry); err != nil {
		return h.auditUnavailable(rid, err)
	}
	return cause
}

// refuseVerified records a refusal at authentication when the identity was verified (a
// person the policy does not list); without one (401) there is nobody to record.
func (h *Handler) refuseVerified(ctx context.Context, rid, email string, cause error) error {
	if email == "" {
		return cause
	}
	return h.refuse(ctx, rid, email, &Request{}, cause)
}

// approvers lists who may decide, without the requester, who never may.
func (h *Handler) approvers(role *policy.Role, requester string) []string {
	out := []string{}
	for _, a := range h.deps.Policy.Approvers(role) {
		if a != requester {
			out = append(out, a)
		}
	}
	return out
}

// record writes request.created and, for break-glass, breakglass.activated. It runs
// inside the request's transaction: if either fails, the request is not created.
func (h *Handler) record(ctx context.Context, rid string, req *requests.Request) error {
	details := map[string]any{
		"role": req.Role, "duration": req.Duration.String(), "approvals_required": req.ApprovalsRequired,
		"expires_at": req.ExpiresAt.UTC().Format(time.RFC3339), "unmask": req.Unmask, "write": req.Write,
	}
	if req.Ticket != "" {
		details["ticket"] = req.Ticket
	}
	e := audit.Entry{
		Event: audit.EventRequestCreated, Actor: req.Requester, Function: EntryPoint, RequestID: rid,
		AccessRequestID: req.ID, Decision: audit.DecisionPending, Reason: req.Reason, Tables: req.Tables(), Details: details,
	}
	if err := h.deps.Audit.Record(ctx, e); err != nil {
		return err
	}
	if req.BreakGlass {
		// The security channel's message is queued by the store, with the request.
		if err := h.deps.Audit.Record(ctx, alerts.BreakglassActivated(e, req.Ticket)); err != nil {
			return err
		}
	}
	return nil
}

// validate turns a body into a request, or says precisely what is wrong with it.
func (h *Handler) validate(email string, b *Request) (*requests.Request, *policy.Role, error) {
	pol := h.deps.Policy
	name := strings.TrimSpace(b.Role)
	if b.BreakGlass && name == "" {
		name = policy.BreakGlass
	}
	if b.BreakGlass && name != policy.BreakGlass {
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "invalid_breakglass", "breakglass: true asks for the role %q; leave role empty or set it to %q, not %q", policy.BreakGlass, policy.BreakGlass, name)
	}
	if name == "" {
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "role_required", "the field \"role\" is required; you may request: %s", strings.Join(h.requestable(email), ", "))
	}
	role, ok := pol.Role(name)
	if !ok || !pol.CanRequest(email, role) {
		return nil, nil, httpapi.Errorf(http.StatusForbidden, "role_not_requestable", "%s may not request the role %q; you may request: %s", email, name, strings.Join(h.requestable(email), ", "))
	}
	reason := strings.TrimSpace(b.Reason)
	switch {
	case reason == "":
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "reason_required", "the field \"reason\" is required: say in a sentence why you need %s", name)
	case len([]rune(reason)) < minReason || len(strings.Fields(reason)) < 3:
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "reason_too_short", "the reason must be a sentence of at least %d characters and three words saying why you need %s", minReason, name)
	case len(reason) > maxReason:
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "reason_too_long", "the reason must be at most %d bytes", maxReason)
	case strings.IndexFunc(reason, isControl) >= 0:
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "invalid_reason", "the reason must not contain control characters")
	}
	d, err := h.duration(b.Duration, role)
	if err != nil {
		return nil, nil, err
	}
	ticket := strings.TrimSpace(b.Ticket)
	switch {
	case len(ticket) > maxTicket || strings.IndexFunc(ticket, isControl) >= 0:
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "invalid_ticket", "the ticket must be at most %d printable characters", maxTicket)
	case role.BreakGlass() && ticket == "":
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "ticket_required", "break-glass needs an incident reference in \"ticket\" (e.g. INC-1234)")
	}
	return &requests.Request{Requester: email, Role: name, Reason: reason, Ticket: ticket, Duration: d}, role, nil
}

func isControl(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }

func (h *Handler) duration(s string, role *policy.Role) (time.Duration, error) {
	lim := h.deps.Policy.Limits
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, httpapi.Errorf(http.StatusBadRequest, "duration_required", "the field \"duration\" is required, e.g. \"30m\" or \"2h\" (at most %s for %s)", role.MaxDuration, role.Name)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, httpapi.Errorf(http.StatusBadRequest, "invalid_duration", "duration %q is not a duration like \"30m\" or \"2h\"", s)
	}
	switch {
	case d <= 0:
		return 0, httpapi.Errorf(http.StatusBadRequest, "invalid_duration", "duration %q must be positive", s)
	case d < lim.MinDuration:
		return 0, httpapi.Errorf(http.StatusBadRequest, "duration_too_short", "duration %s is shorter than the minimum of %s", d, lim.MinDuration)
	case d > role.MaxDuration:
		return 0, httpapi.Errorf(http.StatusBadRequest, "duration_too_long", "duration %s is longer than the %s that %s allows", d, role.MaxDuration, role.Name)
	}
	return d, nil
}

func (h *Handler) requestable(email string) []string {
	var names []string
	for _, r := range h.deps.Policy.RequestableRoles(email) {
		names = append(names, r.Name)
	}
	if len(names) == 0 {
		return []string{"(nothing)"}
	}
	return names
}

// list answers GET: the caller's requests and grants (JSON). Browsers get the web form.
func (h *Handler) list(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	id, err := h.deps.Authenticate(ctx, r)
	if err != nil {
		return err
	}
	if !wantsJSON(r) {
		return h.page(w, r, rid, id, http.StatusOK, nil)
	}
	ov, err := h.store.Overview(ctx, id.Email)
	if err != nil {
		h.logError(ctx, rid, "loading requests", err)
		return httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "your requests could not be loaded; try again")
	}
	httpapi.WriteJSON(w, http.StatusOK, ov)
	return nil
}

// auditUnavailable refuses the request because the trail could not record it (cause);
// deps logs the audit.unavailable alert.
func (h *Handler) auditUnavailable(rid string, cause error) *httpapi.Error {
	return h.deps.AuditUnavailable(rid, cause, "the audit trail could not confirm the record of this request, so nothing was created; try again shortly")
}

// logError keeps in the function's log the cause of an answer that stays generic.
func (h *Handler) logError(ctx context.Context, rid, what string, err error) {
	h.deps.Log.ErrorContext(ctx, "access: "+what+": "+err.Error(), "function", EntryPoint, "request_id", rid, "error", err.Error())
}

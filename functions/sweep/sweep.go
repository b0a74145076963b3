// Package sweep is the SweepExpired function: Cloud Scheduler calls it every minute, as a
// dedicated service account, and it ends what has run out — grants past their expiry
// (role memberships revoked, sessions terminated, grant marked expired, audited), pending
// requests past their deadline (expired, requester told) — and reminds developers whose
// grant ends within ten minutes. The work itself is grants.Store.Sweep and
// requests.Store.Expire.
package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/requests"
)

// EntryPoint is the function's name in Cloud Functions.
const EntryPoint = "SweepExpired"

// DemoScheduler is the scheduler identity of the demo configuration; the devserver
// uses it when SCHEDULER_EMAIL is not set.
const DemoScheduler = "sweeper@airlock-demo.iam.gserviceaccount.com"

var lazy = app.NewLazy(func(ctx context.Context) (http.Handler, error) {
	cfg, err := app.FromEnv(EntryPoint, migrate.GroupSweeper)
	if err != nil {
		return nil, err
	}
	scheduler := SchedulerEmail(cfg, "")
	if scheduler == "" {
		return nil, errors.New("sweep: set SCHEDULER_EMAIL to the Cloud Scheduler service account")
	}
	deps, err := app.Build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return New(deps, scheduler), nil
})

// SweepExpired is the Cloud Functions entry point. Its dependencies are built from the
// environment on the first request.
func SweepExpired(w http.ResponseWriter, r *http.Request) { lazy.ServeHTTP(w, r) }

// SchedulerEmail reads SCHEDULER_EMAIL from cfg's environment, or returns fallback.
func SchedulerEmail(cfg app.Config, fallback string) string {
	get := cfg.Env
	if get == nil {
		get = os.Getenv
	}
	if e := strings.ToLower(strings.TrimSpace(get("SCHEDULER_EMAIL"))); e != "" {
		return e
	}
	return fallback
}

// A Handler serves SweepExpired.
type Handler struct {
	deps      *app.Deps
	grants    *grants.Store
	requests  *requests.Store
	notify    *notify.Sender
	scheduler string
	batch     int
}

// New returns the handler for built dependencies, accepting only scheduler's tokens.
func New(deps *app.Deps, scheduler string) *Handler {
	return &Handler{
		deps:      deps,
		grants:    grants.New(deps.Pool, deps.Role()).WithReplica(deps.Replica),
		requests:  requests.New(deps.Pool, deps.Role(), deps.Policy),
		notify:    notify.FromEnv(deps.Pool, deps.Role(), deps.Config.Env, nil),
		scheduler: strings.ToLower(scheduler),
	}
}

// WithNotifier replaces the notification sender (tests, or a sender with other targets).
func (h *Handler) WithNotifier(s *notify.Sender) *Handler {
	h.notify = s
	return h
}

// NewLocal is New for local runs (the devserver): the scheduler is SCHEDULER_EMAIL, or
// DemoScheduler when that is not set.
func NewLocal(deps *app.Deps) *Handler {
	return New(deps, SchedulerEmail(deps.Config, DemoScheduler))
}

// WithBatch sets how many grants (and requests, and reminders) one run handles at most.
func (h *Handler) WithBatch(n int) *Handler { h.batch = n; return h }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := httpapi.NewRequestID()
	if r.URL.Path != "/" && r.URL.Path != "" {
		httpapi.WriteError(w, rid, httpapi.Errorf(http.StatusNotFound, "not_found", "no such path %q: POST to /", r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpapi.WriteError(w, rid, httpapi.Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "use POST"))
		return
	}
	if err := h.serve(w, r, rid); err != nil {
		httpapi.WriteError(w, rid, err)
	}
}

// serve is the story of one run: authenticate, sweep (each expiry audited before it is
// committed), audit the run, respond. It returns an error only before it has answered.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	caller, err := h.authenticate(ctx, r)
	if err != nil {
		return err
	}
	res, err := h.sweep(ctx, rid)
	run := audit.Entry{
		Event:     audit.EventSweepRun,
		Actor:     caller,
		Function:  EntryPoint,
		RequestID: rid,
		Decision:  audit.DecisionAllowed,
		Details: map[string]any{
			"expired_grants": res.ExpiredGrants, "terminated_sessions": res.TerminatedSessions,
			"expired_requests": res.ExpiredRequests, "reminders": res.Reminders, "remaining": res.Remaining,
		},
	}
	if err != nil {
		if errors.Is(err, audit.ErrUnavailable) {
			// The trail is down: recording the run would fail too.
			return h.deps.AuditUnavailable(rid, err, fmt.Sprintf(
				"the audit trail could not confirm a record, so the sweep stopped after %d grant(s); their sessions were ended and roles resynced, and the next run finishes the job", res.ExpiredGrants))
		}
		logError(rid, err)
		run.Decision, run.ErrorClass, run.Message, run.Severity = audit.DecisionError, "database_unavailable", err.Error(), audit.SeverityWarning
		h.deps.Audit.Record(ctx, run) // best effort: every expiry done so far has its own entry
		return httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable",
			"the sweep stopped after %d grant(s): the database failed; every grant is either fully active or fully expired, and the next run finishes the job", res.ExpiredGrants)
	}
	if err := h.deps.Audit.Record(ctx, run); err != nil {
		return h.deps.AuditUnavailable(rid, err, "the sweep finished but the audit trail could not record the run; the next run will")
	}
	h.deliver(ctx, rid)
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}

// A Result counts what one run did. Remaining is how many grants and pending requests
// were still due when the run finished (left for the next run, or being handled by a
// concurrent one).
type Result struct {
	ExpiredGrants      int `json:"expired_grants"`
	TerminatedSessions int `json:"terminated_sessions"`
	ExpiredRequests    int `json:"expired_requests"`
	Reminders          int `json:"reminders"`
	Remaining          int `json:"remaining"`
}

// sweep ends the grants that have run out (and sends the reminders), then the pending
// requests past their deadline: access first. It returns what was done with any error.
func (h *Handler) sweep(ctx context.Context, rid string) (Result, error) {
	g, err := h.grants.Sweep(ctx, grants.SweepOptions{Audit: h.deps.Audit, Batch: h.batch, Function: EntryPoint, RequestID: rid})
	res := Result{ExpiredGrants: g.ExpiredGrants, TerminatedSessions: g.TerminatedSessions, Reminders: g.Reminders, Remaining: g.Remaining}
	if err != nil {
		return res, err
	}
	expired, remaining, err := h.requests.Expire(ctx, requests.ExpireOptions{Audit: h.deps.Audit, Batch: h.batch, Function: EntryPoint, RequestID: rid})
	res.ExpiredRequests = expired
	res.Remaining += remaining
	return res, err
}

// deliver sends what the outbox still holds: the reminders this run queued, and any
// notification another function queued but could not deliver (Slack down, or the
// instance ran out of time). The sweeper runs every minute, so nothing waits longer.
func (h *Handler) deliver(ctx context.Context, rid string) {
	if _, err := h.notify.FlushWithin(ctx, 15*time.Second, 100); err != nil {
		logError(rid, err)
	}
}

func (h *Handler) authenticate(ctx context.Context, r *http.Request) (string, error) {
	id, err := h.deps.Identify(ctx, r)
	if err != nil {
		return "", err
	}
	if h.scheduler == "" || id.Email != h.scheduler {
		return "", httpapi.Errorf(http.StatusForbidden, "not_scheduler", "%s may not run the sweeper; only the scheduler's service account may", id.Email)
	}
	return id.Email, nil
}

func logError(rid string, err error) {
	b, _ := json.Marshal(map[string]string{"severity": "ERROR", "message": "sweep: " + err.Error(), "request_id": rid})
	fmt.Fprintln(os.Stderr, string(b))
}

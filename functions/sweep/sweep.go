// Package sweep is the SweepExpired function: Cloud Scheduler calls it every minute, as a
// dedicated service account, and it ends what has run out — grants past their expiry
// (role memberships revoked, sessions terminated, grant marked expired, audited), pending
// requests past their deadline (expired, requester told) — and reminds developers whose
// grant ends within ten minutes. The work itself is grants.Store.Sweep and
// requests.Store.Expire.
package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
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

var entry = app.NewEntry(EntryPoint, migrate.GroupSweeper, func(deps *app.Deps) (http.Handler, error) {
	if deps.Config.SchedulerEmail == "" {
		return nil, errors.New("sweep: set SCHEDULER_EMAIL to the Cloud Scheduler service account")
	}
	return New(deps, deps.Config.SchedulerEmail), nil
})

// SweepExpired is the Cloud Functions entry point. Its dependencies are built from the
// environment on the first request.
func SweepExpired(w http.ResponseWriter, r *http.Request) { entry.ServeHTTP(w, r) }

// A Handler serves SweepExpired.
type Handler struct {
	deps      *app.Deps
	grants    *grants.Store
	requests  *requests.Store
	notify    *notify.Sender
	scheduler string
	batch     int
	mux       *httpapi.Mux
}

// New returns the handler for built dependencies, accepting only scheduler's tokens.
func New(deps *app.Deps, scheduler string) *Handler {
	h := &Handler{
		deps:      deps,
		grants:    grants.New(deps.Pool, deps.Role()).WithReplica(deps.Replica),
		requests:  requests.New(deps.Pool, deps.Role(), deps.Policy),
		notify:    notify.New(deps.Pool, deps.Role(), deps.Config.Notify, nil, deps.Log),
		scheduler: strings.ToLower(scheduler),
		mux:       httpapi.NewMux(),
	}
	h.mux.Handle("POST /{$}", deps.Handle(h.serve))
	return h
}

// WithNotifier replaces the notification sender (tests, or a sender with other targets).
func (h *Handler) WithNotifier(s *notify.Sender) *Handler {
	h.notify = s
	return h
}

// NewLocal is New for local runs (the devserver): the scheduler is SCHEDULER_EMAIL, or
// DemoScheduler when that is not set.
func NewLocal(deps *app.Deps) *Handler {
	return New(deps, cmp.Or(deps.Config.SchedulerEmail, DemoScheduler))
}

// WithBatch sets how many grants (and requests, and reminders) one run handles at most.
func (h *Handler) WithBatch(n int) *Handler { h.batch = n; return h }

// ServeHTTP routes POST /, the scheduler's call.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

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
		h.logError(ctx, rid, "sweeping", err)
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
		h.logError(ctx, rid, "delivering notifications", err)
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

// logError keeps in the function's log the cause of an answer that stays generic.
func (h *Handler) logError(ctx context.Context, rid, what string, err error) {
	h.deps.Log.ErrorContext(ctx, "sweep: "+what+": "+err.Error(), "function", EntryPoint, "request_id", rid, "error", err.Error())
}

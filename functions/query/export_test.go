package query

import (
	"context"
	"net/http"
	"net/http/httptest"
	"time"

	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/revert"
	"airlock.dev/airlock/shared/sqlguard"
)

// Unguarded runs req as email through the layers below the guard (the session, the
// executing layer, the explanation of failures and the renderer) as if the guard had
// allowed dec, and returns the answer. Tests use it to show what holds when the guard
// lets something through that it should not. Nothing is audited but what the executing
// layer records itself (a committed write's outcome, before COMMIT, through the commit
// hook serve gives it).
func (h *Handler) Unguarded(ctx context.Context, email string, req Request, dec *sqlguard.Decision) *httptest.ResponseRecorder {
	return h.unguarded(ctx, email, req, &verdict{Decision: dec}, nil)
}

// UnguardedRevert runs the statements sqls as the compensating statements of a revert
// of table, as email, below the guard and the planner; see Unguarded.
func (h *Handler) UnguardedRevert(ctx context.Context, email, table string, sqls ...string) *httptest.ResponseRecorder {
	t, _ := h.deps.Policy.Table(table)
	plan := &revertPlan{table: t}
	for _, s := range sqls {
		plan.stmts = append(plan.stmts, revert.Statement{SQL: s, Shown: s, Revealed: s})
	}
	req := Request{Mode: "revert", Revert: "0000000000000000", Reason: "unguarded revert test"}
	dec := &sqlguard.Decision{Allowed: true, Kind: "revert", Tables: []string{table}, Target: table}
	return h.unguarded(ctx, email, req, &verdict{Decision: dec}, plan)
}

func (h *Handler) unguarded(ctx context.Context, email string, req Request, v *verdict, plan *revertPlan) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	rid := httpapi.NewRequestID()
	req.mode, req.reverts, _ = parseMode(req.Mode)
	if req.Mode == "" {
		req.Mode = "read"
	}
	if req.Format == "" {
		req.Format = "json"
	}
	if req.MaxRows == 0 {
		req.MaxRows = h.deps.Policy.Limits.DefaultMaxRows
	}
	if err := h.schema.load(ctx, h.deps.Pool, h.deps.Policy); err != nil {
		httpapi.WriteError(w, rid, err)
		return w
	}
	sess, err := h.grants.Session(ctx, email)
	if err != nil {
		httpapi.WriteError(w, rid, httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "%v", err))
		return w
	}
	c := &call{h: h, rid: rid, sess: sess, req: &req, v: v, plan: plan, started: time.Now()}
	res, err := c.execute(ctx, c.recordCommit)
	if err == nil {
		err = afterExpiry(sess, res)
	}
	if err != nil {
		httpapi.WriteError(w, rid, h.explainFailure(ctx, sess, err))
		return w
	}
	if c.queued > 0 {
		h.deliver(ctx)
	}
	res.requestID = rid
	res.until = sess.Deadline()
	render(w, req.Format, res)
	return w
}

// DecodeTableCell and DecodeCSVField read a cell back into the value, as the comment on
// kind documents (a CSV field already unquoted); Unsafe is the set of characters no
// answer may hold raw.
func DecodeTableCell(s string) string { return decodeCell(s, true) }
func DecodeCSVField(s string) string  { return decodeCell(s, false) }
func Unsafe(r rune) bool              { return unsafe(r) }

// PersonKey is the first advisory-lock key of email's statement slots.
func PersonKey(email string) int64 { return personKey(email) }

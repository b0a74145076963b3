package query

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/policy"
	"airlock.dev/airlock/shared/revert"
	"airlock.dev/airlock/shared/sqlguard"
)

// Rules that refuse a revert. They are the planner's (planRevert), not the guard's, so
// they are not among sqlguard.AllRules; a revert without a write grant is refused with
// the guard's own sqlguard.RuleNoWriteGrant. Like the guard's, they are sent to clients
// and recorded in the trail, so none is renamed.
const (
	ruleWriteNotFound   = "write_not_found"     // no committed write has the request id
	ruleAlreadyReverted = "already_reverted"    // the write was reverted already
	ruleRevertNeedsDel  = "revert_needs_delete" // undoing it would take a DELETE
	ruleRevertCannot    = "revert_unsupported"  // the write cannot be undone by Airlock
	ruleRevertNotAllow  = "revert_not_allowed"  // neither a write grant nor an approver
)

// A revertRefusal is why a revert was refused: one of the rules above (or
// sqlguard.RuleNoWriteGrant), and a message for the person who asked.
type revertRefusal struct {
	rule, message string
}

// A revertPlan is what undoing one committed write will run.
type revertPlan struct {
	table  *policy.Table
	images []revert.Image // of the write being undone
	stmts  []revert.Statement
	reveal bool // the caller may see the table's sensitive values
	// produceOnly: the caller (an approver without a write grant) may see the
	// statements but not run them.
	produceOnly bool
}

// planRevert decides whether the caller may undo the write req.Revert, and how: it
// sets the call's verdict, allowed or refused with a rule, and its plan. The error is
// for failures of the database.
func (c *call) planRevert(ctx context.Context) error {
	h, req := c.h, c.req
	c.v = &verdict{Decision: &sqlguard.Decision{Kind: "revert"}}
	deny := func(rule, format string, args ...any) error {
		c.v.refused = &revertRefusal{rule: rule, message: fmt.Sprintf(format, args...)}
		return nil
	}
	var imgs []revert.Image
	var revertedBy string
	err := db.InRole(ctx, h.deps.Pool, h.deps.Role(), func(tx pgx.Tx) error {
		var err error
		if imgs, err = revert.Load(ctx, tx, req.Revert); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT revert_request_id FROM airlock.reverts WHERE request_id = $1`, req.Revert).Scan(&revertedBy)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return dbError(err)
	}
	if len(imgs) == 0 {
		return deny(ruleWriteNotFound, "no committed write has request id %s (reads, dry runs and refused writes change nothing, so there is nothing to revert)", req.Revert)
	}
	if revertedBy != "" {
		return deny(ruleAlreadyReverted, "the write %s was already reverted by request %s; to redo it, revert %s", req.Revert, revertedBy, revertedBy)
	}
	t, ok := h.deps.Policy.Table(imgs[0].Table)
	if !ok {
		return deny(ruleRevertCannot, "the write %s changed table %s, which the policy no longer lists", req.Revert, imgs[0].Table)
	}
	c.v.Tables, c.v.Target = []string{t.Name}, t.Name

	perms := h.deps.Policy.Permissions(sqlguard.Write, c.sess.Roles())
	plan := &revertPlan{table: t, images: imgs, reveal: perms.Unmasked[t.Name]}
	if !perms.Write[t.Name].Update {
		switch {
		case !h.approvesWrites(c.sess.Email, t.Name):
			return deny(ruleRevertNotAllow, "reverting a write to %s needs an active write grant on it (to apply), or being an approver of writes to it (to see the statements with dry_run)", t.Name)
		case !req.DryRun:
			return deny(sqlguard.RuleNoWriteGrant, "applying a revert of %s needs an active write grant on %s; without one, send dry_run: true to see the statements", t.Name, t.Name)
		}
		plan.produceOnly = true
	}

	types, err := revert.ColumnTypes(ctx, h.deps.Pool, t.Name)
	if err != nil {
		return dbError(err)
	}
	stmts, err := revert.Plan(imgs, t, types)
	if pe, ok := errors.AsType[*revert.PlanError](err); ok {
		if errors.Is(pe, revert.ErrNeedsDelete) {
			return deny(ruleRevertNeedsDel, "%s: %s", pe.Detail, strings.Join(pe.Shown, " "))
		}
		return deny(ruleRevertCannot, "%s", pe.Detail)
	}
	if err != nil {
		return err
	}
	plan.stmts = stmts
	shown := make([]string, len(stmts))
	for i, s := range stmts {
		shown[i] = s.Shown // the log sees sensitive values masked, whoever asks
	}
	c.v.Allowed, c.v.Statement = true, strings.Join(shown, "\n")
	c.plan = plan
	return nil
}

// approvesWrites reports whether email approves some role that writes table.
func (h *Handler) approvesWrites(email, table string) bool {
	for _, r := range h.deps.Policy.Roles {
		if slices.Contains(r.Write, table) && h.deps.Policy.CanApprove(email, r) {
			return true
		}
	}
	return false
}

// revert runs the call's plan: each compensating UPDATE as the developer, under their
// write grant, then checks from the images they left that every row was found as the
// write left it and is now exactly as it was before, and marks the write reverted. Any
// mismatch rolls everything back.
func (c *call) revert(ctx context.Context, commit commitHook) (*result, error) {
	plan, req := c.plan, c.req
	if plan.produceOnly {
		wr := &WriteResult{DryRun: true, Reverts: req.Revert, Statements: plan.shown(),
			Note: fmt.Sprintf("not run: applying these needs an active write grant on %s", plan.table.Name)}
		return &result{write: wr}, nil
	}
	steps := writeSteps{
		exec: func(ctx context.Context, tx pgx.Tx) (int64, error) {
			var n int64
			for _, s := range plan.stmts {
				tag, err := db.Exec(ctx, tx.Conn(), s.SQL, s.Args...)
				if err != nil {
					return 0, dbError(err)
				}
				n += tag.RowsAffected()
			}
			return n, nil
		},
		verify: func(ctx context.Context, tx pgx.Tx, undo []revert.Image) error {
			if err := revert.Check(plan.images, undo, plan.table); err != nil {
				me, ok := errors.AsType[*revert.MismatchError](err)
				if !ok {
					return fmt.Errorf("query: checking a revert: %w", err)
				}
				code := "revert_inexact"
				if me.Conflict {
					code = "revert_conflict"
				}
				return httpapi.Errorf(http.StatusConflict, code, "%s", me.Detail())
			}
			_, err := tx.Exec(ctx, `INSERT INTO airlock.reverts (request_id, revert_request_id, reverted_by) VALUES ($1, $2, $3)`, req.Revert, c.rid, c.sess.Email)
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "23505" {
				return httpapi.Errorf(http.StatusConflict, ruleAlreadyReverted, "the write %s was reverted by someone else just now; nothing was changed", req.Revert)
			}
			if err != nil {
				return dbError(err)
			}
			return nil
		},
	}
	res, err := c.inWriteTx(ctx, steps, commit)
	if err != nil {
		return nil, err
	}
	res.write.Reverts, res.write.Statements = req.Revert, plan.shown()
	return res, nil
}

// shown is what the caller sees of the statements: with the sensitive values only if
// they may see them.
func (p *revertPlan) shown() []string {
	out := make([]string, len(p.stmts))
	for i, s := range p.stmts {
		out[i] = s.Shown
		if p.reveal {
			out[i] = s.Revealed
		}
	}
	return out
}

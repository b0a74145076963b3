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
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/policy"
	"airlock.dev/airlock/shared/revert"
	"airlock.dev/airlock/shared/sqlguard"
)

// Rules of revert decisions, beside the guard's (sqlguard.RuleNoWriteGrant is reused).
const (
	ruleWriteNotFound   = "write_not_found"
	ruleAlreadyReverted = "already_reverted"
	ruleRevertNeedsDel  = "revert_needs_delete"
	ruleRevertCannot    = "revert_unsupported"
	ruleRevertNotAllow  = "revert_not_allowed"
)

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

// planRevert decides whether the caller may undo the write req.Revert, and how. Like the
// guard for a statement, it answers with a Decision, allowed or refused with a rule; the
// error is for failures of the database.
func (h *Handler) planRevert(ctx context.Context, sess *grants.Session, req *Request) (*sqlguard.Decision, *revertPlan, error) {
	dec := &sqlguard.Decision{Kind: "revert"}
	deny := func(rule, format string, args ...any) (*sqlguard.Decision, *revertPlan, error) {
		dec.Rule, dec.Message = rule, fmt.Sprintf(format, args...)
		return dec, nil, nil
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
		return nil, nil, dbError(err)
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
	dec.Tables, dec.Target = []string{t.Name}, t.Name

	perms := h.deps.Policy.Permissions(sqlguard.Write, sess.Roles())
	plan := &revertPlan{table: t, images: imgs, reveal: perms.Unmasked[t.Name]}
	if !perms.Write[t.Name].Update {
		switch {
		case !h.approvesWrites(sess.Email, t.Name):
			return deny(ruleRevertNotAllow, "reverting a write to %s needs an active write grant on it (to apply), or being an approver of writes to it (to see the statements with dry_run)", t.Name)
		case !req.DryRun:
			return deny(sqlguard.RuleNoWriteGrant, "applying a revert of %s needs an active write grant on %s; without one, send dry_run: true to see the statements", t.Name, t.Name)
		}
		plan.produceOnly = true
	}

	types, err := revert.ColumnTypes(ctx, h.deps.Pool, t.Name)
	if err != nil {
		return nil, nil, dbError(err)
	}
	stmts, err := revert.Plan(imgs, t, types)
	if pe, ok := errors.AsType[*revert.PlanError](err); ok {
		if errors.Is(pe, revert.ErrNeedsDelete) {
			return deny(ruleRevertNeedsDel, "%s: %s", pe.Detail, strings.Join(pe.Shown, " "))
		}
		return deny(ruleRevertCannot, "%s", pe.Detail)
	}
	if err != nil {
		return nil, nil, err
	}
	plan.stmts = stmts
	shown := make([]string, len(stmts))
	for i, s := range stmts {
		shown[i] = s.Shown // the log sees sensitive values masked, whoever asks
	}
	dec.Allowed, dec.Statement = true, strings.Join(shown, "\n")
	return dec, plan, nil
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

// revert runs a plan: each compensating UPDATE as the developer, under their write grant,
// then checks from the images they left that every row was found as the write left it
// and is now exactly as it was before, and marks the write reverted. Any mismatch rolls
// everything back.
func (h *Handler) revert(ctx context.Context, rid string, sess *grants.Session, req *Request, dec *sqlguard.Decision, plan *revertPlan) (*result, error) {
	if plan.produceOnly {
		wr := &WriteResult{DryRun: true, Reverts: req.Revert, Statements: plan.shown(),
			Note: fmt.Sprintf("not run: applying these needs an active write grant on %s", plan.table.Name)}
		return &result{write: wr}, nil
	}
	exec := func(tx pgx.Tx) (int64, error) {
		var n int64
		for _, s := range plan.stmts {
			tag, err := db.Exec(ctx, tx.Conn(), s.SQL, s.Args...)
			if err != nil {
				return 0, dbError(err)
			}
			n += tag.RowsAffected()
		}
		return n, nil
	}
	verify := func(tx pgx.Tx, undo []revert.Image) error {
		if err := revert.Check(plan.images, undo, plan.table); err != nil {
			var me *revert.MismatchError
			if errors.As(err, &me) && me.Conflict {
				return httpapi.Errorf(http.StatusConflict, "revert_conflict", "%s", strings.TrimPrefix(err.Error(), "revert: "))
			}
			return httpapi.Errorf(http.StatusConflict, "revert_inexact", "%s", strings.TrimPrefix(err.Error(), "revert: "))
		}
		_, err := tx.Exec(ctx, `INSERT INTO airlock.reverts (request_id, revert_request_id, reverted_by) VALUES ($1, $2, $3)`, req.Revert, rid, sess.Email)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "23505" {
			return httpapi.Errorf(http.StatusConflict, ruleAlreadyReverted, "the write %s was reverted by someone else just now; nothing was changed", req.Revert)
		}
		if err != nil {
			return dbError(err)
		}
		return nil
	}
	res, err := h.inWriteTx(ctx, rid, sess, req, dec, exec, verify)
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

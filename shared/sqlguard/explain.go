package sqlguard

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// allowedExplainOptions are the EXPLAIN options that only change how a plan
// is printed. ANALYZE executes the statement (and on PG 15 skips the
// read-only check for CREATE TABLE AS / SELECT INTO); BUFFERS, WAL, TIMING
// and SUMMARY only make sense with it; GENERIC_PLAN accepts $n parameters.
var allowedExplainOptions = map[string]bool{
	"costs": true, "verbose": true, "format": true, "settings": true,
}

// explain checks an EXPLAIN: options first (ANALYZE in any spelling is
// refused whatever it wraps), then the wrapped statement, which must be a
// read that passes every read rule.
func (w *walker) explain(n *pg.ExplainStmt, stmtPos int) {
	for _, o := range n.Options {
		de := o.GetDefElem()
		if de == nil {
			w.deny(RuleExplainOption, -1, "unexpected EXPLAIN option")
			return
		}
		name := strings.ToLower(de.Defname)
		switch {
		case name == "analyze" || name == "analyse":
			w.deny(RuleExplainAnalyze, de.Location, "EXPLAIN ANALYZE executes the statement; use EXPLAIN without ANALYZE")
			return
		case !allowedExplainOptions[name]:
			w.deny(RuleExplainOption, de.Location, "EXPLAIN option %s is not allowed; the allowed options are costs, verbose, format and settings", de.Defname)
			return
		case de.Arg != nil && !scalarArg(de.Arg):
			w.deny(RuleExplainOption, de.Location, "EXPLAIN option %s takes a plain value", de.Defname)
			return
		}
	}
	if n.Query == nil {
		w.deny(RuleStatementNotAllowed, -1, "EXPLAIN without a statement")
		return
	}
	if sel := n.Query.GetSelectStmt(); sel != nil {
		w.selectStmt(sel, nil)
		return
	}
	inner := classifyStmt(n.Query)
	if everyModeRules[inner.rule] {
		w.deny(inner.rule, -1, "EXPLAIN of %s is not allowed: %s statements are never allowed", inner.label, inner.label)
		return
	}
	w.deny(RuleStatementNotAllowed, -1, "EXPLAIN may only wrap a SELECT, VALUES or TABLE statement, not %s", inner.label)
}

func scalarArg(n *pg.Node) bool {
	switch n.Node.(type) {
	case *pg.Node_String_, *pg.Node_Integer, *pg.Node_Boolean, *pg.Node_Float:
		return true
	}
	return false
}

package sqlguard

import (
	"fmt"
	"reflect"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The walker visits every message of the parse tree through protobuf
// reflection, so no field is ever skipped: the handlers for the node types
// that need semantics (scopes, names, functions, types) process some fields
// themselves and hand all remaining fields back to children(). A node type
// that is not handled and not in allowedNodes is refused, so syntax added by
// a future PostgreSQL fails closed.

// maxWalkDepth bounds the walker's recursion. The pre-scan limits keep real
// trees far below it; it exists so that no input can grow the Go stack
// without bound.
const maxWalkDepth = 2000

// allowedNodes are the expression and clause nodes with no semantics to
// check beyond their children. Everything a statement can name (relations,
// columns, functions, types, operators) has its own handler in node().
var allowedNodes = map[protoreflect.Name]bool{
	"Alias": true, "ResTarget": true, "A_Const": true, "String": true, "Integer": true,
	"Float": true, "Boolean": true, "BitString": true, "A_Star": true, "A_Indices": true,
	"A_Indirection": true, "A_ArrayExpr": true, "BoolExpr": true, "BooleanTest": true,
	"NullTest": true, "CaseExpr": true, "CaseWhen": true, "CoalesceExpr": true,
	"MinMaxExpr": true, "CollateClause": true, "RowExpr": true, "GroupingSet": true,
	"GroupingFunc": true, "WindowDef": true, "NamedArgExpr": true, "TypeCast": true,
	"ColumnDef": true, "CTESearchClause": true, "CTECycleClause": true,
	"RangeTableFuncCol": true, "XmlExpr": true, "XmlSerialize": true,
	"JsonFormat": true, "JsonReturning": true, "JsonValueExpr": true, "JsonOutput": true,
	"JsonKeyValue": true, "JsonObjectConstructor": true, "JsonArrayConstructor": true,
	"JsonArrayQueryConstructor": true, "JsonAggConstructor": true, "JsonObjectAgg": true,
	"JsonArrayAgg": true, "JsonIsPredicate": true,
}

// writeOnlyNodes appear only in INSERT/UPDATE and are refused elsewhere.
var writeOnlyNodes = map[protoreflect.Name]bool{
	"SetToDefault": true, "MultiAssignRef": true, "OnConflictClause": true, "InferClause": true,
}

// Field names handled by the handlers themselves (checked by a test).
const (
	fWithClause    protoreflect.Name = "with_clause"
	fLarg          protoreflect.Name = "larg"
	fRarg          protoreflect.Name = "rarg"
	fFromClause    protoreflect.Name = "from_clause"
	fIntoClause    protoreflect.Name = "into_clause"
	fLockingClause protoreflect.Name = "locking_clause"
	fUsingClause   protoreflect.Name = "using_clause"
	fSubquery      protoreflect.Name = "subquery"
	fRelation      protoreflect.Name = "relation"
	fMethod        protoreflect.Name = "method"
	fCtequery      protoreflect.Name = "ctequery"
	fCols          protoreflect.Name = "cols"
	fSelectStmt    protoreflect.Name = "select_stmt"
	fOnConflict    protoreflect.Name = "on_conflict_clause"
	fReturningList protoreflect.Name = "returning_list"
	fLocation      protoreflect.Name = "location"
)

type denial struct {
	rule, msg string
	loc       int32 // byte offset, -1 if unknown
}

// A rangeEntry is one FROM item visible to column references.
type rangeEntry struct {
	refname string
	// cols are the columns of catalog tables it exposes, under their visible
	// names. nil for derived tables, CTEs and functions: their own query is
	// walked and records the base columns it reads.
	cols []colRef
}

type colRef struct {
	t    *tableInfo
	col  string // the table's column
	qual string // "table.column"
	name string // the visible name (after an alias column list)
}

// A scope is one query level: its CTE names and its FROM items. Lookups walk
// outwards through parent, like PostgreSQL's name resolution.
type scope struct {
	parent  *scope
	ctes    map[string]bool
	entries []*rangeEntry
}

func (s *scope) isCTE(name string) bool {
	for x := s; x != nil; x = x.parent {
		if x.ctes[name] {
			return true
		}
	}
	return false
}

type walker struct {
	g     *Guard
	p     Permissions
	wt    *tableInfo // the write target; nil in a read
	fail  *denial
	depth int
	// typeofOK are the pg_typeof calls whose regtype result is only ever
	// printed: cast to another type, or a column of the outermost select list.
	typeofOK map[*pg.FuncCall]bool

	tables, columns, funcs, masked []string
}

func (w *walker) deny(rule string, loc int32, format string, args ...any) {
	if w.fail == nil {
		w.fail = &denial{rule: rule, msg: fmt.Sprintf(format, args...), loc: loc}
	}
}

// node visits one message of the tree.
func (w *walker) node(m proto.Message, sc *scope) {
	if w.fail != nil || m == nil {
		return
	}
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxWalkDepth {
		w.deny(RuleInputTooDeep, -1, "the statement is nested too deeply")
		return
	}
	switch n := m.(type) {
	case *pg.Node:
		if inner := unwrap(n); inner != nil {
			w.node(inner, sc)
		}
	case *pg.List:
		for _, it := range n.Items {
			w.node(it, sc)
		}
	case *pg.SelectStmt:
		w.selectStmt(n, sc)
	case *pg.RangeVar, *pg.JoinExpr, *pg.RangeSubselect, *pg.RangeFunction,
		*pg.RangeTableSample, *pg.RangeTableFunc:
		w.fromItem(m, sc)
	case *pg.ColumnRef:
		w.columnRef(n, sc)
	case *pg.FuncCall:
		w.funcCall(n)
		w.children(m, sc)
	case *pg.TypeName:
		w.typeName(n)
		w.children(m, sc)
	case *pg.TypeCast:
		w.allowTypeof(n.Arg)
		w.children(m, sc)
	case *pg.SQLValueFunction:
		if !allowedSQLValueFunctions[n.Op.String()] {
			name := strings.TrimSuffix(strings.TrimPrefix(n.Op.String(), "SVFOP_"), "_N")
			w.deny(RuleFunctionNotAllowed, n.Location, "%s is not allowed: it reads session state", name)
		}
	case *pg.A_Expr:
		w.operator(n.Name, n.Location)
		w.children(m, sc)
	case *pg.SubLink:
		w.operator(n.OperName, n.Location)
		w.children(m, sc)
	case *pg.SortBy:
		w.operator(n.UseOp, n.Location)
		w.children(m, sc)
	case *pg.ParamRef:
		w.deny(RuleParameterNotAllowed, n.Location, "parameter $%d is not allowed; write the value into the statement", n.Number)
	case *pg.IntoClause:
		w.deny(RuleSelectInto, relLoc(n.Rel), "SELECT ... INTO creates a table; remove the INTO clause")
	case *pg.LockingClause:
		w.deny(RuleLockingClause, lockLoc(n), "FOR UPDATE/SHARE row locks are not allowed")
	case *pg.InsertStmt:
		w.deny(RuleDataModifyingCTE, relLoc(n.Relation), "INSERT nested inside another statement is not allowed")
	case *pg.UpdateStmt:
		w.deny(RuleDataModifyingCTE, relLoc(n.Relation), "UPDATE nested inside another statement is not allowed")
	case *pg.DeleteStmt:
		w.deny(RuleDataModifyingCTE, relLoc(n.Relation), "DELETE nested inside another statement is not allowed")
	case *pg.MergeStmt:
		w.deny(RuleDataModifyingCTE, relLoc(n.Relation), "MERGE nested inside another statement is not allowed")
	case *pg.WithClause:
		// Only reachable through a statement type that does not handle its
		// own WITH; CTE names must never leak into an unrelated scope.
		w.deny(RuleNodeNotAllowed, n.Location, "WITH is not allowed here")
	case *pg.IndexElem:
		if w.wt == nil {
			w.deny(RuleNodeNotAllowed, -1, "an index element is not allowed here")
			return
		}
		if n.Name != "" {
			// ON CONFLICT (col): the conflict answers whether a value exists.
			w.readTargetColumn(n.Name, -1)
		}
		w.children(m, sc)
	default:
		name := planOf(m).name
		if !allowedNodes[name] && !(w.wt != nil && writeOnlyNodes[name]) {
			w.deny(RuleNodeNotAllowed, locOf(m), "%s is not allowed here", strings.TrimSuffix(words(string(name)), " "))
			return
		}
		w.children(m, sc)
	}
}

// children visits every set message field of m except those in skip.
func (w *walker) children(m proto.Message, sc *scope, skip ...protoreflect.Name) {
	eachChild(m, skip, func(c proto.Message) bool {
		w.node(c, sc)
		return w.fail == nil
	})
}

func relLoc(rv *pg.RangeVar) int32 {
	if rv == nil {
		return -1
	}
	return rv.Location
}

func lockLoc(lc *pg.LockingClause) int32 {
	for _, r := range lc.LockedRels {
		if rv := r.GetRangeVar(); rv != nil {
			return rv.Location
		}
	}
	return -1
}

func strs(nodes []*pg.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			out = append(out, s.Sval)
		} else {
			out = append(out, "*")
		}
	}
	return out
}

// selectStmt walks one query level.
func (w *walker) selectStmt(s *pg.SelectStmt, parent *scope) {
	if w.fail != nil {
		return
	}
	w.depth++
	defer func() { w.depth-- }()
	if s.IntoClause != nil {
		w.node(s.IntoClause, parent)
		return
	}
	for _, lc := range s.LockingClause {
		w.node(lc, parent)
		return
	}
	sc := &scope{parent: parent}
	if parent == nil && s.Op == pg.SetOperation_SETOP_NONE && len(s.ValuesLists) == 0 {
		// The outermost select list is only printed.
		for _, t := range s.TargetList {
			w.allowTypeof(t.GetResTarget().GetVal())
		}
	}
	if s.WithClause != nil {
		w.withClause(s.WithClause, sc)
	}
	// Set operations: both operands see this level's WITH.
	if s.Larg != nil {
		w.selectStmt(s.Larg, sc)
	}
	if s.Rarg != nil {
		w.selectStmt(s.Rarg, sc)
	}
	// FROM items become visible one by one, so a LATERAL item sees the ones
	// before it (non-LATERAL items seeing them too only over-reports columns).
	for _, f := range s.FromClause {
		sc.entries = append(sc.entries, w.fromItem(f, sc)...)
	}
	w.children(s, sc, fWithClause, fLarg, fRarg, fFromClause, fIntoClause, fLockingClause)
}

// withClause declares the CTE names in sc. In a non-recursive WITH each CTE
// sees only the ones before it (a later name still means the real relation
// inside an earlier body); in WITH RECURSIVE every CTE sees all of them.
func (w *walker) withClause(wc *pg.WithClause, sc *scope) {
	if w.fail != nil {
		return
	}
	if w.wt != nil {
		for _, c := range wc.Ctes {
			if q := c.GetCommonTableExpr().GetCtequery(); q != nil && isDML(q) {
				w.node(q, sc)
				return
			}
		}
		w.deny(RuleWriteReadsOtherTable, wc.Location, "a write may not have a WITH clause; write a single INSERT or UPDATE on the granted table")
		return
	}
	if sc.ctes == nil {
		sc.ctes = make(map[string]bool, len(wc.Ctes))
	}
	if wc.Recursive {
		for _, c := range wc.Ctes {
			if cte := c.GetCommonTableExpr(); cte != nil {
				sc.ctes[cte.Ctename] = true
			}
		}
	}
	for _, c := range wc.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			w.node(c, sc)
			return
		}
		if cte.Ctequery != nil {
			w.node(cte.Ctequery, sc)
		}
		w.children(cte, sc, fCtequery)
		sc.ctes[cte.Ctename] = true
		if w.fail != nil {
			return
		}
	}
}

func isDML(n *pg.Node) bool {
	switch n.Node.(type) {
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		return true
	}
	return false
}

// fromItem walks one FROM item and returns the entries it makes visible.
func (w *walker) fromItem(m proto.Message, sc *scope) []*rangeEntry {
	if w.fail != nil {
		return nil
	}
	w.depth++
	defer func() { w.depth-- }()
	switch n := m.(type) {
	case *pg.Node:
		if inner := unwrap(n); inner != nil {
			return w.fromItem(inner, sc)
		}
		return nil
	case *pg.RangeVar:
		if e := w.relation(n, sc); e != nil {
			return []*rangeEntry{e}
		}
		return nil
	case *pg.RangeSubselect:
		if n.Subquery != nil {
			w.node(n.Subquery, sc)
		}
		w.children(m, sc, fSubquery)
		return []*rangeEntry{{refname: aliasName(n.Alias)}}
	case *pg.RangeFunction:
		// functions, ROWS FROM (...), column definition lists: all walked,
		// so every FuncCall and type inside is checked.
		w.children(m, sc)
		return []*rangeEntry{{refname: aliasName(n.Alias)}}
	case *pg.RangeTableFunc:
		// XMLTABLE(...)
		w.children(m, sc)
		return []*rangeEntry{{refname: aliasName(n.Alias)}}
	case *pg.RangeTableSample:
		names := strs(n.Method)
		if len(names) != 1 || !allowedSampleMethods[strings.ToLower(names[0])] {
			w.deny(RuleFunctionNotAllowed, n.Location, "TABLESAMPLE method %s is not allowed; use SYSTEM or BERNOULLI", strings.Join(names, "."))
			return nil
		}
		var entries []*rangeEntry
		if n.Relation != nil {
			entries = w.fromItem(n.Relation, sc)
		}
		w.children(m, sc, fRelation, fMethod)
		return entries
	case *pg.JoinExpr:
		var left, right []*rangeEntry
		if n.Larg != nil {
			left = w.fromItem(n.Larg, sc)
		}
		if n.Rarg != nil {
			right = w.fromItem(n.Rarg, sc)
		}
		both := append(left[:len(left):len(left)], right...)
		js := &scope{parent: sc, entries: both}
		for _, u := range strs(n.UsingClause) {
			// USING (col) / NATURAL read the column on both sides.
			w.record(w.resolve([]string{u}, false, js), -1)
		}
		w.children(m, js, fLarg, fRarg, fUsingClause)
		if n.Alias != nil {
			// An aliased join hides its members' names behind the alias.
			var cols []colRef
			for _, e := range both {
				cols = append(cols, e.cols...)
			}
			cols = renamed(cols, n.Alias)
			return []*rangeEntry{{refname: n.Alias.Aliasname, cols: cols}}
		}
		return both
	}
	w.node(m, sc)
	return nil
}

func aliasName(a *pg.Alias) string {
	if a == nil {
		return ""
	}
	return a.Aliasname
}

// renamed applies an alias column list, which renames columns by position.
func renamed(cols []colRef, a *pg.Alias) []colRef {
	if a == nil || len(a.Colnames) == 0 {
		return cols
	}
	out := make([]colRef, len(cols))
	copy(out, cols)
	for i, n := range strs(a.Colnames) {
		if i < len(out) {
			out[i].name = n
		}
	}
	return out
}

// systemSchema reports schemas PostgreSQL reserves for itself.
func systemSchema(s string) bool {
	return s == "information_schema" || strings.HasPrefix(s, "pg_")
}

// resolveRelation applies the relation rules shared by reads and writes. It
// returns the catalog table, or cte=true for a CTE name in scope.
func (w *walker) resolveRelation(rv *pg.RangeVar, sc *scope) (t *tableInfo, cte bool) {
	if rv.Catalogname != "" || rv.Schemaname != "" {
		schema := strings.ToLower(rv.Schemaname)
		full := rv.Relname
		if rv.Schemaname != "" {
			full = rv.Schemaname + "." + full
		}
		if rv.Catalogname != "" {
			full = rv.Catalogname + "." + full
		}
		switch {
		case schema == "airlock":
			w.deny(RuleAirlockSchema, rv.Location, "%s is in Airlock's own schema, which cannot be queried", full)
		case systemSchema(schema):
			w.deny(RuleSystemCatalog, rv.Location, "%s is a system catalog; only the application tables (%s) can be queried", full, w.g.names)
		default:
			w.deny(RuleSchemaNotAllowed, rv.Location, "write the bare table name %s instead of %s; Airlock chooses the schema", rv.Relname, full)
		}
		return nil, false
	}
	if sc.isCTE(rv.Relname) {
		return nil, true
	}
	if t := w.g.tables[rv.Relname]; t != nil {
		return t, false
	}
	if strings.HasPrefix(rv.Relname, "pg_") {
		w.deny(RuleSystemCatalog, rv.Location, "%s is a system catalog; only the application tables (%s) can be queried", rv.Relname, w.g.names)
	} else {
		w.deny(RuleRelationNotAllowed, rv.Location, "relation %s is not available; the tables are %s", rv.Relname, w.g.names)
	}
	return nil, false
}

// relation resolves a relation in a FROM list.
func (w *walker) relation(rv *pg.RangeVar, sc *scope) *rangeEntry {
	t, cte := w.resolveRelation(rv, sc)
	switch {
	case w.fail != nil:
		return nil
	case cte:
		if w.wt != nil {
			w.deny(RuleWriteReadsOtherTable, rv.Location, "a write may read only its target table %s, not %s", w.wt.name, rv.Relname)
			return nil
		}
		name := rv.Relname
		if rv.Alias != nil {
			name = rv.Alias.Aliasname
		}
		return &rangeEntry{refname: name}
	case w.wt != nil && t != w.wt:
		w.deny(RuleWriteReadsOtherTable, rv.Location, "a write may read only its target table %s, not %s", w.wt.name, t.name)
		return nil
	}
	w.tables = append(w.tables, t.name)
	return tableEntry(t, rv.Alias)
}

func tableEntry(t *tableInfo, a *pg.Alias) *rangeEntry {
	// t.refs is shared by every reference to t: capped at its length, so an
	// append copies it, and renamed copies before it renames.
	e := &rangeEntry{refname: t.name, cols: renamed(t.refs[:len(t.refs):len(t.refs)], a)}
	if a != nil {
		e.refname = a.Aliasname
	}
	return e
}

// columnRef records what a column reference reads.
func (w *walker) columnRef(n *pg.ColumnRef, sc *scope) {
	names := strs(n.Fields)
	star := len(names) > 0 && names[len(names)-1] == "*" && n.Fields[len(n.Fields)-1].GetAStar() != nil
	if star {
		names = names[:len(names)-1]
	}
	if len(names)+boolInt(star) > 2 {
		w.deny(RuleSchemaNotAllowed, n.Location, "column reference %s: qualify a column with its table name or alias only", strings.Join(strs(n.Fields), "."))
		return
	}
	cols := w.resolve(names, star, sc)
	w.record(cols, n.Location)
	if w.wt != nil && cols == nil && len(names) > 0 {
		// Unresolved in a write (e.g. a derived table's column): refuse a
		// name that is a sensitive column of the target anyway.
		w.readTargetColumn(names[len(names)-1], n.Location)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resolve finds the catalog columns a reference reaches: a column name, a
// qualified column, * or q.*, or a whole-row reference (a bare table name
// or alias). Derived tables and CTEs resolve to nothing: their own query
// records its reads.
func (w *walker) resolve(names []string, star bool, sc *scope) []colRef {
	switch {
	case star && len(names) == 0:
		for s := sc; s != nil; s = s.parent {
			if len(s.entries) > 0 {
				var out []colRef
				for _, e := range s.entries {
					out = append(out, e.cols...)
				}
				return out
			}
		}
	case len(names) == 1 && !star:
		name := names[0]
		var out []colRef
		for s := sc; s != nil; s = s.parent {
			for _, e := range s.entries {
				for i, c := range e.cols {
					if c.name == name {
						out = appendRef(out, e.cols, i)
					}
				}
			}
		}
		if out != nil {
			return out
		}
		// Whole-row reference: SELECT u FROM users u, row_to_json(u), u::text.
		for s := sc; s != nil; s = s.parent {
			for _, e := range s.entries {
				if e.refname == name {
					return e.cols
				}
			}
		}
	case len(names) == 1 && star, len(names) == 2:
		for s := sc; s != nil; s = s.parent {
			for _, e := range s.entries {
				if e.refname != names[0] {
					continue
				}
				if star {
					return e.cols
				}
				var out []colRef
				for i, c := range e.cols {
					if c.name == names[1] {
						out = appendRef(out, e.cols, i)
					}
				}
				return out
			}
		}
	}
	return nil
}

// appendRef appends cols[i] to out. The first match, nearly always the only
// one, is returned as a one-element view of cols instead of a new slice;
// its capacity ends with it, so a later append copies instead of writing
// over cols.
func appendRef(out, cols []colRef, i int) []colRef {
	if out == nil {
		return cols[i : i+1 : i+1]
	}
	return append(out, cols[i])
}

// record notes columns read, and in a write refuses sensitive ones.
func (w *walker) record(cols []colRef, loc int32) {
	for _, c := range cols {
		tc := c.qual
		w.columns = append(w.columns, tc)
		if !c.t.sensitive[c.col] || w.p.Unmasked[c.t.name] {
			continue
		}
		w.masked = append(w.masked, tc)
		if w.wt != nil {
			w.deny(RuleWriteReadsSensitiveColumn, loc, "the write reads sensitive column %s (directly, by * or by a whole-row reference); that needs an unmasked grant on %s", tc, c.t.name)
		}
	}
}

// readTargetColumn refuses, in a write, a read of a sensitive target column
// known only by name.
func (w *walker) readTargetColumn(name string, loc int32) {
	if w.wt != nil && w.wt.sensitive[name] && !w.p.Unmasked[w.wt.name] {
		w.deny(RuleWriteReadsSensitiveColumn, loc, "the write reads sensitive column %s.%s; that needs an unmasked grant on %s", w.wt.name, name, w.wt.name)
	}
}

// funcCall checks a function name against the allowlist.
func (w *walker) funcCall(n *pg.FuncCall) {
	names := strs(n.Funcname)
	if len(names) == 0 {
		w.deny(RuleFunctionNotAllowed, n.Location, "a function call without a name is not allowed")
		return
	}
	name := strings.ToLower(names[len(names)-1])
	w.funcs = append(w.funcs, name)
	if len(names) > 2 || (len(names) == 2 && strings.ToLower(names[0]) != "pg_catalog") {
		w.deny(RuleFunctionNotAllowed, n.Location, "function %s is not allowed: only built-in functions, unqualified or in pg_catalog, can be called", strings.Join(names, "."))
		return
	}
	if _, ok := allowedFunctions[name]; ok {
		if name == "pg_typeof" && !w.typeofOK[n] {
			w.deny(RuleCastNotAllowed, n.Location, "pg_typeof returns regtype, and comparing it with a string looks the name up in the system catalogs; select it as a result column or cast it: pg_typeof(x)::text")
			return
		}
		if cfg, ok := tsConfigArg(name, n); ok && !builtinTSConfigs[strings.TrimPrefix(strings.ToLower(cfg), "pg_catalog.")] {
			w.deny(RuleCastNotAllowed, n.Location, "%s: text search configuration %q is not one of PostgreSQL's built-in configurations; naming others looks them up in the system catalogs", name, cfg)
		}
		return
	}
	if why, ok := deniedFunctions[name]; ok {
		w.deny(RuleFunctionNotAllowed, n.Location, "function %s is not allowed: it %s", names[len(names)-1], why)
		return
	}
	w.deny(RuleFunctionNotAllowed, n.Location, "function %s is not in Airlock's function allowlist", names[len(names)-1])
}

// typeName refuses reg* object-identifier types and types outside pg_catalog.
func (w *walker) typeName(n *pg.TypeName) {
	names := strs(n.Names)
	if n.PctType {
		w.deny(RuleCastNotAllowed, n.Location, "%%TYPE references are not allowed")
		return
	}
	if len(names) == 0 {
		return
	}
	if len(names) > 2 || (len(names) == 2 && strings.ToLower(names[0]) != "pg_catalog") {
		w.deny(RuleCastNotAllowed, n.Location, "type %s is not allowed: only built-in types can be named", strings.Join(names, "."))
		return
	}
	// _regclass is the array type of regclass; its input calls regclassin.
	base := strings.TrimLeft(strings.ToLower(names[len(names)-1]), "_")
	if why, ok := refusedTypes[base]; ok {
		w.deny(RuleCastNotAllowed, n.Location, "type %s is not allowed: %s", names[len(names)-1], why)
	}
}

// allowTypeof marks a pg_typeof call whose result is only printed.
func (w *walker) allowTypeof(n *pg.Node) {
	fc := n.GetFuncCall()
	if fc == nil {
		return
	}
	if names := strs(fc.Funcname); strings.EqualFold(names[len(names)-1], "pg_typeof") {
		if w.typeofOK == nil {
			w.typeofOK = map[*pg.FuncCall]bool{}
		}
		w.typeofOK[fc] = true
	}
}

// tsConfigArg returns the string literal a text search function would read
// as a configuration name (its regconfig argument), if there is one.
func tsConfigArg(name string, n *pg.FuncCall) (string, bool) {
	min := 0
	switch name {
	case "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery":
		min = 2
	case "ts_headline":
		min = 3
	default:
		return "", false
	}
	if len(n.Args) < min {
		return "", false
	}
	c := n.Args[0].GetAConst()
	if c == nil || c.GetSval() == nil {
		return "", false
	}
	return c.GetSval().Sval, true
}

// operator refuses operators qualified with a schema other than pg_catalog
// (OPERATOR(myschema.+)); unqualified operators are the built-in ones.
func (w *walker) operator(names []*pg.Node, loc int32) {
	if len(names) < 2 {
		return
	}
	ns := strs(names)
	if len(ns) > 2 || strings.ToLower(ns[0]) != "pg_catalog" {
		w.deny(RuleFunctionNotAllowed, loc, "operator OPERATOR(%s) is not allowed: only built-in operators can be used", strings.Join(ns, "."))
	}
}

// nodeLoc is the location of the node inside a Node wrapper, or -1.
func nodeLoc(n *pg.Node) int32 {
	if inner := unwrap(n); inner != nil {
		return locOf(inner)
	}
	return -1
}

// unwrap returns the message inside a Node wrapper, or nil.
func unwrap(n *pg.Node) proto.Message {
	if n == nil || n.Node == nil {
		return nil
	}
	m, _ := oneofValue(reflect.ValueOf(&n.Node).Elem())
	return m
}

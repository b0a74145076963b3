package sqlguard

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
)

// The memory rules bound what one statement can make a database backend hold.
//
// PostgreSQL bounds sorts, hash aggregates and tuple stores by work_mem and
// spills the rest to temporary files (bounded by temp_file_limit), but four
// kinds of memory have no limit at all:
//
//   - values: one value can be up to 1 GB, and a statement can build it from
//     almost nothing (repeat('x', 400000000), lpad, format('%999999999s'),
//     '1e131071'::numeric, jsonb_pretty of a deeply nested literal). Every
//     intermediate value of a row stays in memory until the row is done.
//   - accumulating aggregates (array_agg, string_agg, json_agg, ...,
//     ARRAY(subquery)) keep every input value until the end of the group.
//   - hash tables the planner sizes by its estimates and never spills: a
//     hashed IN/NOT IN/EXISTS subquery, INTERSECT and EXCEPT, a recursive
//     UNION, and a hash join whose inner rows share one key. A statement can
//     make the estimate as wrong as it likes (WHERE x*0 = 0 AND ...).
//   - the number of work areas: each sort, hash or materialisation may use
//     work_mem, and a statement can have hundreds.
//
// The rules, applied to every statement a developer sends (read, write and
// the statement inside EXPLAIN):
//
//   - value_too_large: every value's size is bounded statically (sizes.go):
//     a + b×U + h×T, U the largest stored row, T what the aggregates keep.
//     Size arguments (repeat's count, lpad's length, array_fill's dimensions,
//     format's widths) must be constants; a result that is the product of
//     two database values is refused. One value: a ≤ MaxValueBytes, b ≤
//     MaxValueFactor; all the values of one row together: ≤
//     MaxRowBytes and MaxRowFactor; h in all: ≤ MaxAggregateCopies.
//   - accumulation_unbounded: an accumulating aggregate may only read at most
//     MaxTableCopies times the rows of one stored table (filtered, grouped,
//     joined to other tables on their key, never multiplied by another join)
//     or at most MaxConstantRows rows the statement fixes (VALUES, constant
//     generate_series, LIMIT); what all of a statement's aggregates and hash
//     tables keep per row is at most MaxHeldRowBytes plus MaxHeldRowFactor×U.
//     So what they hold is bounded by a table the developer cannot grow.
//   - subquery_unbounded: the same for every subquery PostgreSQL may hash
//     without a limit (IN, NOT IN, ANY, ALL, EXISTS) and both sides of
//     INTERSECT and EXCEPT.
//   - recursive_growth: WITH RECURSIVE must use UNION ALL (UNION keeps every
//     row in a hash table), may not use SEARCH or CYCLE (a growing path
//     array), and its recursive part may not make its own columns longer.
//   - memory_budget: at most MaxWorkAreas work areas, counted from the
//     syntax (each FROM item, sort, grouping set, window, DISTINCT, set
//     operation, CTE, subquery, ordered aggregate, table function).
//
// The database does the rest: the query function's login runs developers'
// statements with work_mem 4MB, hash_mem_multiplier 1, enable_hashjoin off
// (no hash join can grow past its estimate), no parallel workers and no JIT
// (shared/migrate), and temp_file_limit caps temporary files (Terraform).

// Limits of the memory rules. See the comment above and the README's
// layers-of-defence table for what they add up to.
const (
	// MaxValueBytes is the most bytes one value may hold beyond what it
	// reads from the database.
	MaxValueBytes = 1 << 20
	// MaxValueFactor is how many times the largest stored row one value may
	// be.
	MaxValueFactor = 64
	// MaxRowBytes and MaxRowFactor bound all the values one row of the
	// statement computes together (intermediate values stay in memory until
	// the row is done).
	MaxRowBytes  = 4 << 20
	MaxRowFactor = 512
	// MaxAggregateCopies bounds how many values one row may compute from
	// aggregated values (the results of array_agg and the like): each can be
	// as large as everything the statement's aggregates keep.
	MaxAggregateCopies = 2
	// MaxHeldRowBytes and MaxHeldRowFactor bound what one row of a table
	// costs in all the accumulating aggregates and hashed subqueries of a
	// statement together.
	MaxHeldRowBytes  = 128
	MaxHeldRowFactor = 2
	// MaxConstantRows is the most rows an accumulating aggregate or hashed
	// subquery may keep when they come from the statement rather than from
	// one table.
	MaxConstantRows = 10000
	// MaxTableCopies is how many times the rows of one table it may keep
	// (a UNION ALL of two tables, an outer join to a table on its key, a
	// table joined to a few VALUES rows).
	MaxTableCopies = 4
	// MaxHeld is how many accumulating aggregates and hashed subqueries one
	// statement may have.
	MaxHeld = 16
	// MaxWorkAreas is how many sorts, hashes and materialisations one
	// statement may have; each may use work_mem (4 MB).
	MaxWorkAreas = 32
)

// backendOverhead is what a backend holds besides the statement's work:
// catalog caches, the plan, executor state (measured: under 20 MiB).
const backendOverhead = 32 << 20

// MemoryBound is the most memory one statement that passes the guard can make
// a database backend hold, given the data: rows is the number of rows of the
// largest table, rowBytes the length of the longest stored row written as
// JSON (row_to_json), workMem the query login's work_mem in bytes
// (shared/migrate.QuerySettings). It is the sum of
//
//	MaxWorkAreas × workMem                      sorts, hash aggregates, tuple stores
//	(3 + MaxAggregateCopies) × K                what aggregates and hash tables keep:
//	                                            their states (2K: the allocator rounds
//	                                            small chunks up to a power of two), the
//	                                            results (K) and values computed from them
//	MaxRowBytes + MaxRowFactor × rowBytes       the values of one row
//	backendOverhead                             the backend itself
//
// with K = max(rows, MaxConstantRows) × (MaxHeldRowBytes + MaxHeldRowFactor ×
// rowBytes). Temporary files are bounded separately, by temp_file_limit.
func MemoryBound(rows, rowBytes, workMem int64) int64 {
	k := max(rows, MaxConstantRows) * (MaxHeldRowBytes + MaxHeldRowFactor*rowBytes)
	return MaxWorkAreas*workMem + (3+MaxAggregateCopies)*k + MaxRowBytes + MaxRowFactor*rowBytes + backendOverhead
}

// A rowBound limits how many rows something yields: n × the rows of `tables`
// stored tables multiplied together; open means no static bound (a
// set-returning function over database values, a recursive CTE).
type rowBound struct {
	tables int
	n      float64
	open   bool
}

var oneRow = rowBound{n: 1}

func (r rowBound) times(s rowBound) rowBound {
	return rowBound{tables: r.tables + s.tables, n: r.n * s.n, open: r.open || s.open}
}

func (r rowBound) plus(s rowBound) rowBound {
	return rowBound{tables: max(r.tables, s.tables), n: r.n + s.n, open: r.open || s.open}
}

// heldOK: at most MaxTableCopies times the rows of one stored table, or at
// most MaxConstantRows.
func (r rowBound) heldOK() bool {
	if r.open {
		return false
	}
	return r.tables == 0 && r.n <= MaxConstantRows || r.tables == 1 && r.n <= MaxTableCopies
}

func (r rowBound) describe() string {
	switch {
	case r.open:
		return "rows whose number nothing in the statement bounds (a set-returning function over database values, or a recursive query)"
	case r.tables > 1:
		return "rows of a join of several tables"
	case r.tables == 1:
		return "up to " + trimFloat(r.n) + " times the rows of a table"
	}
	return trimFloat(r.n) + " rows"
}

// A rel is what a FROM item, a CTE or a subquery yields.
type rel struct {
	names []string // output column names by position; "" when unknown
	cols  []bound  // output column bounds by position
	star  bool     // there may be columns not in names
	rows  rowBound
	table *tableInfo
}

func (r *rel) out() bound {
	if r.table != nil {
		return stored
	}
	if len(r.cols) == 0 {
		return bound{capped: true}
	}
	return maxOf(r.cols)
}

func (r *rel) whole() bound {
	if r.table != nil {
		return stored
	}
	return sumOf(r.cols).add(2)
}

// renamed applies an alias column list.
func (r *rel) renamed(a *pg.Alias, colnames []*pg.Node) *rel {
	if a != nil {
		colnames = a.Colnames
	}
	if len(colnames) == 0 {
		return r
	}
	out := *r
	out.names = append([]string(nil), r.names...)
	for i, n := range strs(colnames) {
		for len(out.names) <= i {
			out.names = append(out.names, "")
			out.cols = append(out.cols, r.out())
		}
		out.names[i] = n
	}
	return &out
}

type mitem struct {
	name string
	rel  *rel
}

// An mscope is one query level.
type mscope struct {
	parent *mscope
	ctes   map[string]*rel
	items  []mitem
	in     rowBound // the rows this level's aggregates read
	srf    rowBound // set-returning functions in its expressions multiply its rows
	agg    bool     // it aggregates (so returns one row when it has no GROUP BY)
	sets   int      // its grouping sets (1 without GROUP BY)
}

func (s *mscope) cte(name string) *rel {
	for x := s; x != nil; x = x.parent {
		if r, ok := x.ctes[name]; ok {
			return r
		}
	}
	return nil
}

type memCheck struct {
	g     *Guard
	fail  *denial
	sum   bound // all allocating values of a row
	peak  bound // the largest value seen (see heldQuery)
	areas int
	held  int
	// keptA and keptB add up what each row of a table costs in every
	// aggregate and hash table that keeps rows (see heldRows).
	keptA, keptB float64
}

func (m *memCheck) deny(rule string, loc int32, format string, args ...any) {
	if m.fail == nil {
		m.fail = &denial{rule: rule, msg: fmt.Sprintf(format, args...), loc: loc}
	}
}

// memory applies the memory rules to a statement that passed every other rule.
func (g *Guard) memory(stmt *pg.Node) *denial {
	m := &memCheck{g: g}
	switch top := stmt.Node.(type) {
	case *pg.Node_SelectStmt:
		m.query(top.SelectStmt, nil)
	case *pg.Node_ExplainStmt:
		if sel := top.ExplainStmt.Query.GetSelectStmt(); sel != nil {
			m.query(sel, nil)
		}
	case *pg.Node_InsertStmt:
		m.insert(top.InsertStmt)
	case *pg.Node_UpdateStmt:
		m.update(top.UpdateStmt)
	default:
		m.deny(RuleInternalError, -1, "sqlguard: no memory rules for this statement")
	}
	if m.fail == nil && m.areas > MaxWorkAreas {
		m.deny(RuleMemoryBudget, -1, "the statement has %d sorts, joins, groupings, windows, subqueries and other work areas, each of which may use work_mem; the limit is %d. Split it into smaller statements", m.areas, MaxWorkAreas)
	}
	return m.fail
}

// alloc records a value the statement computes: its size is checked against
// the per-value limits and added to the row's total.
func (m *memCheck) alloc(r bound, loc int32, what string, ins ...bound) bound {
	if m.fail != nil {
		return r
	}
	if r.capped && (r.a > capBytes || r.b > MaxValueFactor || r.h > MaxAggregateCopies) {
		// Its type cannot exceed capBytes, whatever it is made of.
		r = bound{a: capBytes, capped: true, rec: r.rec}
	}
	if r.a > MaxValueBytes || r.b > MaxValueFactor || r.h > MaxAggregateCopies {
		m.deny(RuleValueTooLarge, loc, "%s can build a value of up to %s; one value may hold at most %s plus %d× the largest stored row. Use smaller constants", what, r.describe(), humanBytes(MaxValueBytes), MaxValueFactor)
		return r
	}
	if r.rec && !r.capped {
		// Growth is measured against the recursive values it is made from.
		var big bound
		for _, in := range ins {
			if in.rec {
				big = maxBound(big, in)
			}
		}
		if r.a > big.a || r.b > big.b || r.h > big.h {
			m.deny(RuleRecursiveGrowth, loc, "%s in the recursive part of WITH RECURSIVE makes the query's own values longer at every step, which can double them until they use all memory; build the value outside the recursion", what)
			return r
		}
	}
	m.sum = m.sum.plus(r)
	if r.fromDB() {
		m.peak = maxBound(m.peak, r)
	}
	if m.sum.a > MaxRowBytes || m.sum.b > MaxRowFactor || m.sum.h > MaxAggregateCopies {
		m.deny(RuleValueTooLarge, loc, "with %s the values one row computes add up to %s; the limit is %s plus %d× the largest stored row and %d aggregated values. Compute less per row or split the statement", what, m.sum.describe(), humanBytes(MaxRowBytes), MaxRowFactor, MaxAggregateCopies)
	}
	return r
}

func (m *memCheck) hold(loc int32, what string) {
	m.held++
	if m.held > MaxHeld {
		m.deny(RuleAccumulationUnbounded, loc, "%s: the statement has more than %d aggregates that keep their inputs and subqueries PostgreSQL may hash; split it", what, MaxHeld)
	}
}

// heldRows checks what an aggregate or a hash table keeps: the rows it reads
// and the size of each. The sizes of all of a statement's kept rows, each
// weighted by how many times a table's rows it may read, share one budget.
func (m *memCheck) heldRows(r rowBound, v bound, rule string, loc int32, what string) {
	if m.fail != nil {
		return
	}
	if !r.heldOK() {
		m.deny(rule, loc, "%s keeps every row it reads in memory, and here it reads %s; it may read the rows of one table (filtered, grouped, or joined to other tables on their primary key with JOIN ... ON key = ..., never multiplied by another join) or at most %d rows fixed by the statement (VALUES, generate_series with constant bounds, LIMIT)", what, r.describe(), MaxConstantRows)
		return
	}
	if v.h > 0 {
		m.deny(rule, loc, "%s keeps values that are themselves aggregates of many rows; aggregate once", what)
		return
	}
	copies := 1.0
	if r.tables == 1 {
		copies = r.n
	}
	m.keptA += v.a * copies
	m.keptB += v.b * copies
	if m.keptA > MaxHeldRowBytes || m.keptB > MaxHeldRowFactor {
		m.deny(rule, loc, "%s keeps every row it reads in memory; with the statement's other aggregates and hashed subqueries, each row of a table is kept as %s plus %s× the largest stored row, and the limit is %s plus %d×. Keep smaller values or fewer of them", what, humanBytes(m.keptA), trimFloat(m.keptB), humanBytes(MaxHeldRowBytes), MaxHeldRowFactor)
	}
}

// query bounds one query level and returns what it yields.
func (m *memCheck) query(s *pg.SelectStmt, parent *mscope) *rel {
	out := &rel{rows: oneRow}
	if m.fail != nil || s == nil {
		return out
	}
	sc := &mscope{parent: parent, in: oneRow, srf: oneRow}
	if s.WithClause != nil {
		m.with(s.WithClause, sc)
	}
	switch {
	case len(s.ValuesLists) > 0:
		for _, row := range s.ValuesLists {
			for i, e := range row.GetList().GetItems() {
				v := m.expr(e, sc)
				if i < len(out.cols) {
					out.cols[i] = maxBound(out.cols[i], v)
				} else {
					out.cols = append(out.cols, v)
					out.names = append(out.names, "column"+strconv.Itoa(i+1))
				}
			}
		}
		out.rows = rowBound{n: float64(len(s.ValuesLists))}
	case s.Op != pg.SetOperation_SETOP_NONE && s.Op != pg.SetOperation_SET_OPERATION_UNDEFINED:
		out = m.setOp(s, sc)
	default:
		out = m.selectLevel(s, sc)
	}
	if len(s.SortClause) > 0 {
		m.areas += 2
		for _, o := range s.SortClause {
			m.expr(o, sc)
		}
	}
	m.expr(s.LimitOffset, sc)
	m.expr(s.LimitCount, sc)
	if s.LimitOption != pg.LimitOption_LIMIT_OPTION_WITH_TIES {
		if k, ok := constValue(s.LimitCount); ok && k >= 0 {
			if r := out.rows; r.open || r.tables > 0 || r.n > k {
				out.rows = rowBound{n: k}
			}
		}
	}
	return out
}

func (m *memCheck) setOp(s *pg.SelectStmt, sc *mscope) *rel {
	hashed := s.Op == pg.SetOperation_SETOP_INTERSECT || s.Op == pg.SetOperation_SETOP_EXCEPT
	var l, r *rel
	if hashed {
		what := "INTERSECT"
		if s.Op == pg.SetOperation_SETOP_EXCEPT {
			what = "EXCEPT"
		}
		what += " (PostgreSQL may keep one side in a hash table)"
		var lrow, rrow bound
		l, lrow = m.hashedQuery(s.Larg, sc)
		r, rrow = m.hashedQuery(s.Rarg, sc)
		// Either side may be the one kept; both must be bounded, one is counted.
		m.heldRows(r.rows, bound{}, RuleSubqueryUnbounded, -1, what)
		m.heldRows(l.rows, maxBound(lrow, rrow), RuleSubqueryUnbounded, -1, what)
		m.hold(-1, what)
	} else {
		l = m.query(s.Larg, sc)
		r = m.query(s.Rarg, sc)
	}
	if !(s.Op == pg.SetOperation_SETOP_UNION && s.All) {
		m.areas += 2
	}
	out := &rel{names: l.names, star: l.star || r.star}
	for i := 0; i < max(len(l.cols), len(r.cols)); i++ {
		switch {
		case i < len(l.cols) && i < len(r.cols):
			out.cols = append(out.cols, maxBound(l.cols[i], r.cols[i]))
		case i < len(l.cols):
			out.cols = append(out.cols, maxBound(l.cols[i], r.out()))
		default:
			out.cols = append(out.cols, maxBound(r.cols[i], l.out()))
		}
	}
	switch s.Op {
	case pg.SetOperation_SETOP_UNION:
		out.rows = l.rows.plus(r.rows)
	case pg.SetOperation_SETOP_INTERSECT:
		out.rows = l.rows
		if !l.rows.heldOK() && r.rows.heldOK() {
			out.rows = r.rows
		}
	default:
		out.rows = l.rows
	}
	return out
}

// hashedQuery bounds a subquery whose rows PostgreSQL may keep in a hash table
// without a limit. It returns what the subquery yields and what one row of it
// costs in the table: its largest value computed from the database, and a
// header. Values that do not depend on the database are the same in every row,
// so they make one entry, not one per row.
func (m *memCheck) hashedQuery(s *pg.SelectStmt, sc *mscope) (*rel, bound) {
	saved := m.peak
	m.peak = bound{}
	r := m.query(s, sc)
	peak := m.peak
	if w := r.whole(); w.fromDB() {
		peak = maxBound(peak, w)
	}
	m.peak = maxBound(saved, m.peak)
	if !peak.fromDB() {
		return r, bound{}
	}
	return r, peak.add(64)
}

// hashed checks a hashed subquery's rows and adds them to the kept budget.
func (m *memCheck) hashed(s *pg.SelectStmt, sc *mscope, loc int32, what string) {
	r, row := m.hashedQuery(s, sc)
	m.heldRows(r.rows, row, RuleSubqueryUnbounded, loc, what)
	m.hold(loc, what)
}

// array checks ARRAY(subquery) and JSON_ARRAY(subquery), which keep every row.
func (m *memCheck) array(s *pg.SelectStmt, sc *mscope, loc int32, what string) bound {
	r := m.query(s, sc)
	m.heldRows(r.rows, r.whole().add(16), RuleAccumulationUnbounded, loc, what)
	m.hold(loc, what)
	return aggregated
}

// selectLevel bounds a plain SELECT: FROM, WHERE, GROUP BY, HAVING, WINDOW,
// the select list and DISTINCT.
func (m *memCheck) selectLevel(s *pg.SelectStmt, sc *mscope) *rel {
	var entries [][]mitem
	var counts []rowBound
	for _, f := range s.FromClause {
		items, r := m.fromItem(f, sc)
		sc.items = append(sc.items, items...)
		entries, counts = append(entries, items), append(counts, r)
	}
	sc.in = keyedRows(entries, counts, s.WhereClause)
	m.expr(s.WhereClause, sc)
	sc.sets = 1
	if len(s.GroupClause) > 0 {
		sc.sets = groupingSets(s.GroupClause)
		m.areas += sc.sets
		for _, g := range s.GroupClause {
			m.expr(g, sc)
		}
	}
	m.expr(s.HavingClause, sc)
	for _, w := range s.WindowClause {
		m.window(w.GetWindowDef(), sc)
	}
	out := &rel{cols: make([]bound, 0, len(s.TargetList)), names: make([]string, 0, len(s.TargetList))}
	for _, t := range s.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			m.expr(t, sc)
			continue
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && isStar(cr) && rt.Name == "" {
			m.expandStar(cr, sc, out)
			continue
		}
		v := m.expr(rt.Val, sc)
		out.cols = append(out.cols, v)
		out.names = append(out.names, resultName(rt))
	}
	if len(s.DistinctClause) > 0 {
		m.areas += 2
		for _, d := range s.DistinctClause {
			m.expr(d, sc)
		}
	}
	rows := sc.in
	if len(s.GroupClause) == 0 && sc.agg {
		rows = oneRow
	}
	out.rows = rows.times(sc.srf)
	return out
}

func isStar(cr *pg.ColumnRef) bool {
	return len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil
}

// resultName is the name PostgreSQL gives a select-list column, as far as a
// reference to it can matter.
func resultName(rt *pg.ResTarget) string {
	if rt.Name != "" {
		return rt.Name
	}
	switch v := rt.Val.GetNode().(type) {
	case *pg.Node_ColumnRef:
		if f := strs(v.ColumnRef.Fields); len(f) > 0 {
			return f[len(f)-1]
		}
	case *pg.Node_FuncCall:
		if f := strs(v.FuncCall.Funcname); len(f) > 0 {
			return strings.ToLower(f[len(f)-1])
		}
	}
	return ""
}

// expandStar adds the columns of * or q.* to out.
func (m *memCheck) expandStar(cr *pg.ColumnRef, sc *mscope, out *rel) {
	names := strs(cr.Fields)
	names = names[:len(names)-1]
	add := func(it mitem) {
		if t := it.rel.table; t != nil {
			for _, c := range t.columns {
				out.names = append(out.names, c)
				out.cols = append(out.cols, stored)
			}
			return
		}
		out.names = append(out.names, it.rel.names...)
		out.cols = append(out.cols, it.rel.cols...)
		out.star = out.star || it.rel.star
	}
	if len(names) == 0 {
		for _, it := range sc.items {
			add(it)
		}
		return
	}
	if it, ok := sc.item(names[len(names)-1]); ok {
		add(it)
		return
	}
	out.star = true
	out.cols = append(out.cols, m.fallback(sc))
	out.names = append(out.names, "")
}

func (s *mscope) item(name string) (mitem, bool) {
	for x := s; x != nil; x = x.parent {
		for _, it := range x.items {
			if it.name == name {
				return it, true
			}
		}
	}
	return mitem{}, false
}

// fallback bounds a column reference that cannot be resolved exactly: the
// largest column of anything in scope.
func (m *memCheck) fallback(sc *mscope) bound {
	r := stored
	for x := sc; x != nil; x = x.parent {
		for _, it := range x.items {
			r = maxBound(r, it.rel.out())
		}
	}
	return r
}

// column bounds a column reference: a stored column is U; a column of a
// subquery, CTE or function is whatever that computes.
func (m *memCheck) column(cr *pg.ColumnRef, sc *mscope) bound {
	names := strs(cr.Fields)
	if isStar(cr) {
		names = names[:len(names)-1]
		if len(names) == 0 {
			var r bound
			for _, it := range sc.items {
				r = r.plus(it.rel.whole())
			}
			return r
		}
		if it, ok := sc.item(names[len(names)-1]); ok {
			return it.rel.whole()
		}
		return m.fallback(sc)
	}
	switch len(names) {
	case 1:
		for x := sc; x != nil; x = x.parent {
			found, r := false, bound{}
			for _, it := range x.items {
				if v, ok := it.rel.column(names[0]); ok {
					r = maxBound(r, v)
					if !found {
						r = v
					}
					found = true
				}
			}
			if found {
				return r
			}
		}
		if it, ok := sc.item(names[0]); ok {
			return it.rel.whole()
		}
	case 2:
		if it, ok := sc.item(names[0]); ok {
			if v, ok := it.rel.column(names[1]); ok {
				return v
			}
			return it.rel.out()
		}
	}
	return m.fallback(sc)
}

// column finds a column by name; a rel with unknown columns may have it.
func (r *rel) column(name string) (bound, bool) {
	if r.table != nil {
		for _, c := range r.table.columns {
			if c == name {
				return stored, true
			}
		}
		return bound{}, false
	}
	found, v := false, bound{}
	for i, n := range r.names {
		if n == name && i < len(r.cols) {
			if !found {
				v = r.cols[i]
			} else {
				v = maxBound(v, r.cols[i])
			}
			found = true
		}
	}
	if !found && r.star {
		return r.out(), true
	}
	return v, found
}

// groupingSets counts the grouping sets of a GROUP BY: each may need its
// own sort or hash table (CUBE of n columns is 2^n sets).
func groupingSets(groups []*pg.Node) int {
	total := 1.0
	for _, g := range groups {
		total *= float64(setCount(g))
		if total > 1e6 {
			return 1e6
		}
	}
	return int(total)
}

func setCount(n *pg.Node) int {
	gs := n.GetGroupingSet()
	if gs == nil {
		return 1
	}
	switch gs.Kind {
	case pg.GroupingSetKind_GROUPING_SET_ROLLUP:
		return len(gs.Content) + 1
	case pg.GroupingSetKind_GROUPING_SET_CUBE:
		if len(gs.Content) > 20 {
			return 1 << 20
		}
		return 1 << len(gs.Content)
	case pg.GroupingSetKind_GROUPING_SET_SETS:
		t := 0
		for _, c := range gs.Content {
			t += setCount(c)
		}
		return max(t, 1)
	}
	return 1
}

func (m *memCheck) window(w *pg.WindowDef, sc *mscope) {
	if w == nil {
		return
	}
	m.areas += 2
	for _, p := range w.PartitionClause {
		m.expr(p, sc)
	}
	for _, o := range w.OrderClause {
		m.expr(o, sc)
	}
	m.expr(w.StartOffset, sc)
	m.expr(w.EndOffset, sc)
}

// with declares the CTEs of a WITH clause in sc, in an order in which each
// is bounded before it is used.
func (m *memCheck) with(wc *pg.WithClause, sc *mscope) {
	if sc.ctes == nil {
		sc.ctes = map[string]*rel{}
	}
	ctes := make([]*pg.CommonTableExpr, 0, len(wc.Ctes))
	for _, c := range wc.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil {
			ctes = append(ctes, cte)
		}
	}
	done := map[string]bool{}
	for len(done) < len(ctes) && m.fail == nil {
		progress := false
		for _, cte := range ctes {
			if done[cte.Ctename] {
				continue
			}
			ready := true
			if wc.Recursive {
				for _, other := range ctes {
					if other != cte && !done[other.Ctename] && references(cte.Ctequery, other.Ctename) {
						ready = false
					}
				}
			}
			if !ready {
				continue
			}
			m.cte(cte, wc.Recursive && references(cte.Ctequery, cte.Ctename), sc)
			done[cte.Ctename] = true
			progress = true
		}
		if !progress {
			m.deny(RuleRecursiveGrowth, wc.Location, "the CTEs of this WITH RECURSIVE refer to each other in a cycle")
			return
		}
	}
}

// references reports whether the relation name appears unqualified anywhere
// in n.
func references(n *pg.Node, name string) bool {
	if n == nil {
		return false
	}
	found := false
	var visit func(x proto.Message) bool
	visit = func(x proto.Message) bool {
		if rv, ok := x.(*pg.RangeVar); ok && rv.Schemaname == "" && rv.Relname == name {
			found = true
			return false
		}
		eachChild(x, nil, visit)
		return !found
	}
	visit(n)
	return found
}

func (m *memCheck) cte(cte *pg.CommonTableExpr, recursive bool, sc *mscope) {
	m.areas++
	sel := cte.Ctequery.GetSelectStmt()
	if !recursive || sel == nil {
		r := m.query(sel, sc)
		sc.ctes[cte.Ctename] = r.renamed(nil, cte.Aliascolnames)
		return
	}
	m.areas += 2
	switch {
	case cte.SearchClause != nil || cte.CycleClause != nil:
		m.deny(RuleRecursiveGrowth, cte.Location, "WITH RECURSIVE %s: SEARCH and CYCLE keep a path array that grows with every step; stop the recursion with a condition instead", cte.Ctename)
		return
	case sel.Op != pg.SetOperation_SETOP_UNION:
		r := m.query(sel, sc)
		sc.ctes[cte.Ctename] = r.renamed(nil, cte.Aliascolnames)
		return
	case !sel.All:
		m.deny(RuleRecursiveGrowth, cte.Location, "WITH RECURSIVE %s uses UNION, which keeps every row it has produced in a hash table without a memory limit; use UNION ALL with a condition that stops the recursion", cte.Ctename)
		return
	}
	base := m.query(sel.Larg, sc).renamed(nil, cte.Aliascolnames)
	self := &rel{names: base.names, star: base.star, rows: rowBound{open: true}}
	for _, c := range base.cols {
		// Every column: its type, not its first value, decides how long it
		// can grow (1::text is short, but text).
		c.rec = true
		self.cols = append(self.cols, c)
	}
	sc.ctes[cte.Ctename] = self
	step := m.query(sel.Rarg, sc)
	final := &rel{names: base.names, star: base.star || step.star, rows: rowBound{open: true}}
	for i, c := range base.cols {
		if i < len(step.cols) {
			c = maxBound(c, step.cols[i])
		}
		c.rec = false
		final.cols = append(final.cols, c)
	}
	sc.ctes[cte.Ctename] = final
}

const fromItemAreas = 3

// fromItem bounds one FROM item: the items it makes visible and its rows.
func (m *memCheck) fromItem(n *pg.Node, sc *mscope) ([]mitem, rowBound) {
	if m.fail != nil || n == nil {
		return nil, oneRow
	}
	// A join can sort both its inputs and materialise one: three work areas
	// for each item it joins (a join of joins sorts their results too).
	m.areas += fromItemAreas
	switch x := n.Node.(type) {
	case *pg.Node_RangeVar:
		rv := x.RangeVar
		name := rv.Relname
		if rv.Alias != nil {
			name = rv.Alias.Aliasname
		}
		if r := sc.cte(rv.Relname); r != nil && rv.Schemaname == "" {
			r = r.renamed(rv.Alias, nil)
			return []mitem{{name, r}}, r.rows
		}
		t := m.g.tables[rv.Relname]
		if t == nil {
			// Write targets and names the walker resolved otherwise: read as
			// stored rows.
			t = &tableInfo{name: rv.Relname}
		}
		r := &rel{table: t, rows: rowBound{tables: 1, n: 1}, names: t.columns}
		if rv.Alias != nil && len(rv.Alias.Colnames) > 0 {
			// Renamed columns are still stored columns.
			r = &rel{names: strs(rv.Alias.Colnames), rows: r.rows, star: true, cols: nil}
			for range r.names {
				r.cols = append(r.cols, stored)
			}
		}
		return []mitem{{name, r}}, r.rows
	case *pg.Node_RangeSubselect:
		sub := m.query(x.RangeSubselect.Subquery.GetSelectStmt(), sc).renamed(x.RangeSubselect.Alias, nil)
		return []mitem{{aliasName(x.RangeSubselect.Alias), sub}}, sub.rows
	case *pg.Node_RangeFunction:
		return m.rangeFunction(x.RangeFunction, sc)
	case *pg.Node_RangeTableSample:
		ts := x.RangeTableSample
		for _, a := range ts.Args {
			m.expr(a, sc)
		}
		m.expr(ts.Repeatable, sc)
		m.areas -= fromItemAreas
		return m.fromItem(ts.Relation, sc)
	case *pg.Node_RangeTableFunc:
		return m.xmlTable(x.RangeTableFunc, sc)
	case *pg.Node_JoinExpr:
		m.areas -= fromItemAreas
		j := x.JoinExpr
		left, lr := m.fromItem(j.Larg, sc)
		right, rr := m.fromItem(j.Rarg, sc)
		both := append(left[:len(left):len(left)], right...)
		m.expr(j.Quals, &mscope{parent: sc, items: both, in: sc.in, srf: oneRow})
		rows := joinRows(j, left, right, lr, rr)
		if j.Alias != nil {
			joined := &rel{rows: rows}
			for _, it := range both {
				joined.star = joined.star || it.rel.star
				if t := it.rel.table; t != nil {
					for _, c := range t.columns {
						joined.names = append(joined.names, c)
						joined.cols = append(joined.cols, stored)
					}
					continue
				}
				joined.names = append(joined.names, it.rel.names...)
				joined.cols = append(joined.cols, it.rel.cols...)
			}
			return []mitem{{j.Alias.Aliasname, joined.renamed(j.Alias, nil)}}, rows
		}
		return both, rows
	}
	m.deny(RuleNodeNotAllowed, nodeLoc(n), "this FROM item is not allowed: Airlock cannot bound the memory it uses")
	return nil, oneRow
}

// joinRows bounds the rows of a join. A join to a stored table on every
// column of one of its keys (JOIN users u ON u.id = t.user_id, or USING (id))
// matches at most one of its rows per row of the other side, so it adds rows
// (an outer join keeps the unmatched ones) instead of multiplying them.
func joinRows(j *pg.JoinExpr, left, right []mitem, lr, rr rowBound) rowBound {
	outer := lr.plus(rr)
	switch {
	case keyed(j, right, left):
		if j.Jointype == pg.JoinType_JOIN_INNER || j.Jointype == pg.JoinType_JOIN_LEFT {
			return lr
		}
		return outer
	case keyed(j, left, right):
		if j.Jointype == pg.JoinType_JOIN_INNER || j.Jointype == pg.JoinType_JOIN_RIGHT {
			return rr
		}
		return outer
	}
	return lr.times(rr)
}

// keyed reports whether the join condition fixes every column of a key of
// side, a single stored table, to a column of other (key = column, ANDed).
func keyed(j *pg.JoinExpr, side, other []mitem) bool {
	if len(side) != 1 || j.IsNatural {
		return false
	}
	return keyFixed(j.Quals, strs(j.UsingClause), side[0], other)
}

// keyFixed reports whether cond (its top-level ANDs) and a USING list fix
// every column of a key of it, a stored table, each to a constant or a column
// of other: then each row of other matches at most one row of it.
func keyFixed(cond *pg.Node, using []string, it mitem, other []mitem) bool {
	if it.rel.table == nil {
		return false
	}
	fixed := map[string]bool{}
	for _, u := range using {
		if resolvesIn(other, []string{u}) {
			fixed[u] = true
		}
	}
	for _, c := range conjuncts(cond) {
		e := c.GetAExpr()
		if e == nil || e.Kind != pg.A_Expr_Kind_AEXPR_OP || len(e.Name) != 1 || e.Name[0].GetString_().GetSval() != "=" {
			continue
		}
		for _, pair := range [][2]*pg.Node{{e.Lexpr, e.Rexpr}, {e.Rexpr, e.Lexpr}} {
			if col, ok := columnOf(pair[0], it); ok && readsOnly(pair[1], other, it) {
				fixed[col] = true
			}
		}
	}
	for _, key := range it.rel.table.keys {
		all := len(key) > 0
		for _, c := range key {
			all = all && fixed[c]
		}
		if all {
			return true
		}
	}
	return false
}

// keyedRows bounds the rows of a comma-separated FROM list with its WHERE
// clause: a table whose key WHERE fixes to constants or columns of the other
// entries still counted matches at most one row per combination of them, so
// it is not counted. Entries are dropped one at a time, each determined by
// entries still counted then, so no two can vouch for each other.
func keyedRows(entries [][]mitem, rows []rowBound, where *pg.Node) rowBound {
	counted := make([]bool, len(entries))
	for i := range counted {
		counted[i] = true
	}
	for changed := true; changed; {
		changed = false
		for i, e := range entries {
			if !counted[i] || len(e) != 1 {
				continue
			}
			var others []mitem
			for j, o := range entries {
				if j != i && counted[j] {
					others = append(others, o...)
				}
			}
			if keyFixed(where, nil, e[0], others) {
				counted[i], changed = false, true
			}
		}
	}
	total := oneRow
	for i, r := range rows {
		if counted[i] {
			total = total.times(r)
		}
	}
	return total
}

// conjuncts splits a condition at its top-level ANDs.
func conjuncts(n *pg.Node) []*pg.Node {
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg.BoolExprType_AND_EXPR {
		var out []*pg.Node
		for _, a := range b.Args {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	if n == nil {
		return nil
	}
	return []*pg.Node{n}
}

// columnOf returns the column of item it that n names, written it.col.
func columnOf(n *pg.Node, it mitem) (string, bool) {
	cr := n.GetColumnRef()
	if cr == nil || isStar(cr) {
		return "", false
	}
	f := strs(cr.Fields)
	if len(f) != 2 || f[0] != it.name {
		return "", false
	}
	for _, c := range it.rel.table.columns {
		if c == f[1] {
			return c, true
		}
	}
	return "", false
}

// readsOnly reports whether n is a constant or a plain column of the items of
// other, never of the keyed item. Anything else (a function, a cast, a collation, a
// subquery) could make one row equal several keys: random(), a float cast of
// large integers, a case-insensitive collation.
func readsOnly(n *pg.Node, other []mitem, keyed mitem) bool {
	if c := n.GetAConst(); c != nil && !c.Isnull {
		// One constant: one key.
		return true
	}
	cr := n.GetColumnRef()
	if cr == nil || isStar(cr) {
		return false
	}
	f := strs(cr.Fields)
	return len(f) <= 2 && resolvesIn(other, f) && !resolvesIn([]mitem{keyed}, f)
}

// resolvesIn reports whether a column reference names a column of items.
func resolvesIn(items []mitem, f []string) bool {
	for _, it := range items {
		if len(f) == 2 && f[0] != it.name {
			continue
		}
		if _, ok := it.rel.column(f[len(f)-1]); ok {
			return true
		}
	}
	return false
}

// rangeFunction bounds functions in FROM, including ROWS FROM (...): each
// is run to completion into a tuple store.
func (m *memCheck) rangeFunction(rf *pg.RangeFunction, sc *mscope) ([]mitem, rowBound) {
	r := &rel{rows: rowBound{}}
	for _, f := range rf.Functions {
		items := f.GetList().GetItems()
		if len(items) == 0 {
			continue
		}
		m.areas++
		fc := items[0].GetFuncCall()
		if fc == nil {
			m.expr(items[0], sc)
			r.rows = r.rows.plus(oneRow)
			continue
		}
		v, rows := m.funcCall(fc, sc, true)
		r.rows = r.rows.plus(rows)
		name := strings.ToLower(strs(fc.Funcname)[len(fc.Funcname)-1])
		if len(items) > 1 {
			for _, c := range items[1].GetList().GetItems() {
				if cd := c.GetColumnDef(); cd != nil {
					r.names = append(r.names, cd.Colname)
					r.cols = append(r.cols, m.typed(v, cd.TypeName, fc.Location, "column "+cd.Colname))
				}
			}
			continue
		}
		r.names = append(r.names, name)
		r.cols = append(r.cols, v)
		r.star = true // composite results have columns of their own
	}
	v := r.out()
	for _, c := range rf.Coldeflist {
		if cd := c.GetColumnDef(); cd != nil {
			r.names = append(r.names, cd.Colname)
			r.cols = append(r.cols, m.typed(v, cd.TypeName, cd.Location, "column "+cd.Colname))
		}
	}
	if rf.Ordinality {
		r.names = append(r.names, "ordinality")
		r.cols = append(r.cols, bound{a: 20, capped: true})
	}
	if r.rows.n == 0 && !r.rows.open {
		r.rows = oneRow
	}
	r = r.renamed(rf.Alias, nil)
	return []mitem{{aliasName(rf.Alias), r}}, r.rows
}

// xmlTable bounds XMLTABLE: rows and columns are parts of the document; a
// column's path can repeat a node (concat(/a, /a)).
func (m *memCheck) xmlTable(t *pg.RangeTableFunc, sc *mscope) ([]mitem, rowBound) {
	m.areas++
	doc := m.expr(t.Docexpr, sc)
	path := m.expr(t.Rowexpr, sc)
	for _, ns := range t.Namespaces {
		m.expr(ns, sc)
	}
	r := &rel{rows: rowBound{open: true}}
	if !doc.fromDB() && !path.fromDB() {
		r.rows = rowBound{n: doc.a + 1}
	}
	for _, col := range t.Columns {
		tc := col.GetRangeTableFuncCol()
		if tc == nil {
			continue
		}
		p := bound{a: float64(len(tc.Colname))}
		if tc.Colexpr != nil {
			p = m.expr(tc.Colexpr, sc)
		}
		def := m.expr(tc.Coldefexpr, sc)
		v := maxBound(m.product(p.add(1), doc, t.Location, "XMLTABLE", "the column's path"), def)
		r.names = append(r.names, tc.Colname)
		r.cols = append(r.cols, m.typed(m.alloc(v, t.Location, "XMLTABLE column "+tc.Colname), tc.TypeName, tc.Location, "XMLTABLE column "+tc.Colname))
	}
	r = r.renamed(t.Alias, nil)
	return []mitem{{aliasName(t.Alias), r}}, r.rows
}

// insert bounds an INSERT's rows and RETURNING.
func (m *memCheck) insert(n *pg.InsertStmt) {
	sc := &mscope{in: oneRow, srf: oneRow}
	if sel := n.SelectStmt.GetSelectStmt(); sel != nil {
		m.query(sel, sc)
	}
	ts := m.target(n.Relation, sc)
	if oc := n.OnConflictClause; oc != nil {
		if oc.Infer != nil {
			for _, e := range oc.Infer.IndexElems {
				if ie := e.GetIndexElem(); ie != nil {
					m.expr(ie.Expr, ts)
				}
			}
			m.expr(oc.Infer.WhereClause, ts)
		}
		m.expr(oc.WhereClause, ts)
	}
	for _, r := range n.ReturningList {
		m.expr(r, ts)
	}
}

// update bounds an UPDATE's new values, WHERE and RETURNING.
func (m *memCheck) update(n *pg.UpdateStmt) {
	ts := m.target(n.Relation, &mscope{in: oneRow, srf: oneRow})
	m.expr(n.WhereClause, ts)
	for _, t := range n.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			m.expr(t, ts)
			continue
		}
		m.assignIndirection(rt, ts)
		m.expr(rt.Val, ts)
	}
	for _, r := range n.ReturningList {
		m.expr(r, ts)
	}
}

func (m *memCheck) target(rv *pg.RangeVar, parent *mscope) *mscope {
	items, rows := m.fromItem(&pg.Node{Node: &pg.Node_RangeVar{RangeVar: rv}}, parent)
	return &mscope{parent: parent, items: items, in: rows, srf: oneRow}
}

// assignIndirection refuses SET arr[n] = ... with n not a constant: it
// extends the array with NULLs up to n.
func (m *memCheck) assignIndirection(rt *pg.ResTarget, sc *mscope) {
	for _, ind := range rt.Indirection {
		ix := ind.GetAIndices()
		if ix == nil {
			continue
		}
		for _, e := range []*pg.Node{ix.Lidx, ix.Uidx} {
			if e == nil {
				continue
			}
			v, ok := upperBound(e)
			if !ok {
				m.deny(RuleValueTooLarge, rt.Location, "SET %s[...]: the subscript must be a constant, because assigning past the end of an array fills it with NULLs", rt.Name)
				return
			}
			m.alloc(bound{a: 6 * math.Abs(v), b: 1}, rt.Location, "SET "+rt.Name+"[...]")
		}
	}
}

// aggregated is the result of an aggregate that keeps its inputs: at most
// what it kept (see heldRows), T. It is not counted as a copy of T; only
// values computed from it are.
var aggregated = bound{h: 1}

// typed bounds a value converted to a declared type: a column definition
// list (AS t(a char(1000000)) pads), XMLTABLE's columns, RETURNING and AS
// clauses.
func (m *memCheck) typed(v bound, tn *pg.TypeName, loc int32, what string) bound {
	if tn == nil || len(tn.Names) == 0 {
		return v
	}
	for _, t := range tn.Typmods {
		m.expr(t, nil)
	}
	names := strs(tn.Names)
	typ := strings.ToLower(names[len(names)-1])
	return m.alloc(m.castTo(typ, tn, nil, v, loc), loc, what+" as "+typeLabel(typ, len(tn.ArrayBounds) > 0), v)
}

func outputType(o *pg.JsonOutput) *pg.TypeName {
	if o == nil {
		return nil
	}
	return o.TypeName
}

// boolean is the bound of a truth value.
var boolean = bound{a: 5, capped: true}

// expr bounds an expression and checks everything inside it.
func (m *memCheck) expr(n *pg.Node, sc *mscope) bound {
	if m.fail != nil || n == nil || n.Node == nil {
		return bound{capped: true}
	}
	switch x := n.Node.(type) {
	case *pg.Node_ColumnRef:
		return m.column(x.ColumnRef, sc)
	case *pg.Node_AConst:
		switch v := x.AConst.Val.(type) {
		case *pg.A_Const_Ival:
			return bound{a: 20, capped: true}
		case *pg.A_Const_Fval:
			return m.alloc(bound{a: numberText(v.Fval.Fval), capped: true}, x.AConst.Location, "the number "+trimText(v.Fval.Fval))
		case *pg.A_Const_Boolval:
			return boolean
		case *pg.A_Const_Sval:
			return m.alloc(bound{a: literalText(v.Sval.Sval)}, x.AConst.Location, "the string constant "+trimText(v.Sval.Sval)+" (read as numbers, exponents are written out)")
		case *pg.A_Const_Bsval:
			return bound{a: float64(len(v.Bsval.Bsval))}
		}
		return bound{capped: true}
	case *pg.Node_TypeCast:
		tc := x.TypeCast
		v := m.expr(tc.Arg, sc)
		if tc.TypeName == nil {
			return v
		}
		for _, t := range tc.TypeName.Typmods {
			m.expr(t, sc)
		}
		names := strs(tc.TypeName.Names)
		typ := strings.ToLower(names[len(names)-1])
		return m.alloc(m.castTo(typ, tc.TypeName, tc.Arg, v, tc.Location), tc.Location, "the cast to "+typeLabel(typ, len(tc.TypeName.ArrayBounds) > 0), v)
	case *pg.Node_FuncCall:
		v, _ := m.funcCall(x.FuncCall, sc, false)
		return v
	case *pg.Node_AExpr:
		return m.aExpr(x.AExpr, sc)
	case *pg.Node_BoolExpr:
		for _, a := range x.BoolExpr.Args {
			m.expr(a, sc)
		}
		return boolean
	case *pg.Node_NullTest:
		m.expr(x.NullTest.Arg, sc)
		return boolean
	case *pg.Node_BooleanTest:
		m.expr(x.BooleanTest.Arg, sc)
		return boolean
	case *pg.Node_CaseExpr:
		ce := x.CaseExpr
		m.expr(ce.Arg, sc)
		var results []bound
		for _, w := range ce.Args {
			if cw := w.GetCaseWhen(); cw != nil {
				m.expr(cw.Expr, sc)
				results = append(results, m.expr(cw.Result, sc))
			}
		}
		if ce.Defresult != nil {
			results = append(results, m.expr(ce.Defresult, sc))
		}
		return maxOf(results)
	case *pg.Node_CoalesceExpr:
		return m.maxArgs(x.CoalesceExpr.Args, sc)
	case *pg.Node_MinMaxExpr:
		return m.maxArgs(x.MinMaxExpr.Args, sc)
	case *pg.Node_RowExpr:
		var bs []bound
		for _, a := range x.RowExpr.Args {
			bs = append(bs, m.expr(a, sc))
		}
		r := sumOf(bs).add(2 + 2*float64(len(bs)))
		r.capped = false
		return m.alloc(r, x.RowExpr.Location, "ROW(...)", bs...)
	case *pg.Node_AArrayExpr:
		var bs []bound
		for _, e := range x.AArrayExpr.Elements {
			bs = append(bs, m.expr(e, sc))
		}
		r := sumOf(bs).add(2 + 2*float64(len(bs)))
		r.capped = false
		return m.alloc(r, x.AArrayExpr.Location, "ARRAY[...]", bs...)
	case *pg.Node_AIndirection:
		base := m.expr(x.AIndirection.Arg, sc)
		for _, ind := range x.AIndirection.Indirection {
			if ix := ind.GetAIndices(); ix != nil {
				m.expr(ix.Lidx, sc)
				m.expr(ix.Uidx, sc)
			}
		}
		// A subscript or a slice copies part of the value; a field does not.
		return m.alloc(base, nodeLoc(x.AIndirection.Arg), "the subscript", base)
	case *pg.Node_CollateClause:
		return m.expr(x.CollateClause.Arg, sc)
	case *pg.Node_NamedArgExpr:
		return m.expr(x.NamedArgExpr.Arg, sc)
	case *pg.Node_SubLink:
		return m.subLink(x.SubLink, sc)
	case *pg.Node_GroupingFunc:
		for _, a := range x.GroupingFunc.Args {
			m.expr(a, sc)
		}
		return bound{a: 20, capped: true}
	case *pg.Node_SqlvalueFunction:
		return bound{a: 64, capped: true}
	case *pg.Node_XmlExpr:
		return m.xmlExpr(x.XmlExpr, sc)
	case *pg.Node_XmlSerialize:
		xs := x.XmlSerialize
		v := m.expr(xs.Expr, sc)
		if xs.Indent {
			v = m.product(v, v, xs.Location, "XMLSERIALIZE ... INDENT", "the document (indenting repeats its depth on every line)")
		}
		return m.typed(m.alloc(v, xs.Location, "XMLSERIALIZE"), xs.TypeName, xs.Location, "XMLSERIALIZE")
	case *pg.Node_JsonObjectConstructor:
		c := x.JsonObjectConstructor
		return m.typed(m.jsonConstructor(c.Exprs, c.Location, "JSON_OBJECT", sc), outputType(c.Output), c.Location, "JSON_OBJECT")
	case *pg.Node_JsonArrayConstructor:
		c := x.JsonArrayConstructor
		return m.typed(m.jsonConstructor(c.Exprs, c.Location, "JSON_ARRAY", sc), outputType(c.Output), c.Location, "JSON_ARRAY")
	case *pg.Node_JsonArrayQueryConstructor:
		q := x.JsonArrayQueryConstructor
		return m.typed(m.array(q.Query.GetSelectStmt(), sc, q.Location, "JSON_ARRAY(subquery)"), outputType(q.Output), q.Location, "JSON_ARRAY(subquery)")
	case *pg.Node_JsonObjectAgg:
		a := x.JsonObjectAgg
		v := m.expr(a.Arg.GetKey(), sc).plus(m.jsonValue(a.Arg.GetValue(), sc))
		return m.jsonAgg(a.Constructor, v, sc, "JSON_OBJECTAGG")
	case *pg.Node_JsonArrayAgg:
		a := x.JsonArrayAgg
		return m.jsonAgg(a.Constructor, m.jsonValue(a.Arg, sc), sc, "JSON_ARRAYAGG")
	case *pg.Node_JsonIsPredicate:
		m.expr(x.JsonIsPredicate.Expr, sc)
		return boolean
	case *pg.Node_JsonValueExpr:
		return m.jsonValue(x.JsonValueExpr, sc)
	case *pg.Node_JsonKeyValue:
		return m.expr(x.JsonKeyValue.Key, sc).plus(m.jsonValue(x.JsonKeyValue.Value, sc))
	case *pg.Node_List:
		return m.maxArgs(x.List.Items, sc)
	case *pg.Node_SortBy:
		return m.expr(x.SortBy.Node, sc)
	case *pg.Node_ResTarget:
		return m.expr(x.ResTarget.Val, sc)
	case *pg.Node_SetToDefault:
		return stored
	case *pg.Node_MultiAssignRef:
		return m.expr(x.MultiAssignRef.Source, sc)
	case *pg.Node_GroupingSet:
		m.maxArgs(x.GroupingSet.Content, sc)
		return bound{capped: true}
	case *pg.Node_String_, *pg.Node_AStar:
		return bound{capped: true}
	}
	m.deny(RuleNodeNotAllowed, nodeLoc(n), "%s is not allowed here: Airlock cannot bound the memory it uses", strings.TrimSuffix(words(string(planOf(unwrap(n)).name)), " "))
	return bound{}
}

func trimText(s string) string {
	if len(s) > 24 {
		return "'" + s[:20] + "...'"
	}
	return "'" + s + "'"
}

func (m *memCheck) maxArgs(args []*pg.Node, sc *mscope) bound {
	var bs []bound
	for _, a := range args {
		bs = append(bs, m.expr(a, sc))
	}
	if len(bs) == 0 {
		return bound{capped: true}
	}
	return maxOf(bs)
}

func (m *memCheck) jsonValue(v *pg.JsonValueExpr, sc *mscope) bound {
	if v == nil {
		return bound{capped: true}
	}
	return m.expr(v.RawExpr, sc)
}

func (m *memCheck) jsonConstructor(exprs []*pg.Node, loc int32, what string, sc *mscope) bound {
	var bs []bound
	for _, e := range exprs {
		bs = append(bs, m.expr(e, sc))
	}
	r := sumOf(bs).times(6).add(8 + 4*float64(len(bs)))
	r.capped = false
	return m.alloc(r, loc, what, bs...)
}

// jsonAgg bounds JSON_ARRAYAGG and JSON_OBJECTAGG, which accumulate.
func (m *memCheck) jsonAgg(c *pg.JsonAggConstructor, v bound, sc *mscope, what string) bound {
	var loc int32 = -1
	if c != nil {
		loc = c.Location
		m.expr(c.AggFilter, sc)
		for _, o := range c.AggOrder {
			m.expr(o, sc)
		}
		if len(c.AggOrder) > 0 {
			m.areas++
		}
		if c.Over != nil {
			m.window(c.Over, sc)
		} else {
			sc.agg = true
		}
	}
	m.accumulate(v.add(64), sc, loc, what)
	if c != nil {
		return m.typed(aggregated, outputType(c.Output), loc, what)
	}
	return aggregated
}

func (m *memCheck) accumulate(row bound, sc *mscope, loc int32, what string) {
	// With grouping sets, every input row goes into one state per set.
	m.heldRows(sc.in, row.times(float64(sc.sets)), RuleAccumulationUnbounded, loc, what)
	m.hold(loc, what)
}

// aExpr bounds an operator expression.
func (m *memCheck) aExpr(e *pg.A_Expr, sc *mscope) bound {
	l := m.expr(e.Lexpr, sc)
	r := m.expr(e.Rexpr, sc)
	switch e.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
	case pg.A_Expr_Kind_AEXPR_NULLIF:
		return l
	default:
		return boolean
	}
	ns := strs(e.Name)
	op := ns[len(ns)-1]
	what := "the operator " + op
	switch op {
	case "=", "<>", "!=", "<", ">", "<=", ">=", "~", "!~", "~*", "!~*", "~~", "!~~", "~~*", "!~~*",
		"@>", "<@", "?", "?|", "?&", "@?", "@@", "@@@", "&<", "&>", "<<|", "|>>", "&<|", "|&>",
		"-|-", "?#", "?-", "?-|", "?||", "~=", "<^", ">^", "^@":
		return boolean
	case "->", "->>", "#>", "#>>", "#-":
		// Part of the left operand, copied.
		return m.alloc(bound{a: l.a, b: l.b, h: l.h, rec: l.rec}, e.Location, what, l)
	case "^":
		c := &call{m: m, fc: &pg.FuncCall{Location: e.Location}, name: what, args: []*pg.Node{e.Lexpr, e.Rexpr}, b: []bound{l, r}}
		return m.alloc(powerSize(c), e.Location, what, l, r)
	}
	res := l.plus(r).add(64)
	switch {
	case op == "||":
	case !l.capped || !r.capped:
		// Not known to be numbers: path + path concatenates, for example.
	case op == "+" || op == "-" || op == "%":
		// A sum of numbers has at most one digit more than the larger.
		res = maxBound(l, r).add(1).number()
	case op == "*":
		// A product's digits are the sum of the factors' digits.
		res = l.plus(r).number()
	case op == "/":
		// A quotient keeps at most 1000 digits of scale.
		res = maxBound(l, r).add(1024).number()
	default:
		// Another operator on two capped values (bit operations on integers,
		// geometry) gives a value of the same kind.
		res = res.number()
	}
	return m.alloc(res, e.Location, what, l, r)
}

// funcCall bounds a function call and, for set-returning functions, its rows.
func (m *memCheck) funcCall(fc *pg.FuncCall, sc *mscope, from bool) (bound, rowBound) {
	names := strs(fc.Funcname)
	name := strings.ToLower(names[len(names)-1])
	f, ok := allowedFunctions[name]
	if !ok || f.size == nil {
		m.deny(RuleFunctionNotAllowed, fc.Location, "function %s has no reviewed size class; it is refused until it has one", name)
		return bound{}, oneRow
	}
	c := &call{m: m, fc: fc, name: name, args: make([]*pg.Node, 0, len(fc.Args)), b: make([]bound, 0, len(fc.Args))}
	for _, a := range fc.Args {
		if na := a.GetNamedArgExpr(); na != nil {
			if !f.byName {
				m.deny(RuleValueTooLarge, na.Location, "%s: write its arguments by position, not by name, so that their sizes can be checked", name)
				return bound{}, oneRow
			}
			a = na.Arg
		}
		c.args = append(c.args, a)
		c.b = append(c.b, m.expr(a, sc))
	}
	for _, o := range fc.AggOrder {
		c.order = append(c.order, m.expr(o, sc))
	}
	m.expr(fc.AggFilter, sc)
	if len(fc.AggOrder) > 0 || fc.AggDistinct {
		m.areas++
	}
	if fc.Over != nil {
		m.window(fc.Over, sc)
	} else if f.kind == aggregateFn || f.kind == accumulateFn {
		sc.agg = true
	}
	if m.fail != nil {
		return bound{}, oneRow
	}
	rows := oneRow
	switch f.kind {
	case accumulateFn:
		m.accumulate(f.held(c), sc, fc.Location, name+"()")
		return aggregated, rows
	case setFn:
		rows = f.rows(c)
		if !from {
			m.areas++
			sc.srf = sc.srf.times(rows)
		}
	}
	v := f.size(c)
	if m.fail != nil {
		return bound{}, rows
	}
	return m.alloc(v, fc.Location, name+"()", c.b...), rows
}

// subLink bounds a subquery in an expression.
func (m *memCheck) subLink(s *pg.SubLink, sc *mscope) bound {
	m.expr(s.Testexpr, sc)
	sel := s.Subselect.GetSelectStmt()
	switch s.SubLinkType {
	case pg.SubLinkType_EXISTS_SUBLINK, pg.SubLinkType_ANY_SUBLINK, pg.SubLinkType_ALL_SUBLINK:
		m.areas++ // materialised when not hashed
		what := map[pg.SubLinkType]string{
			pg.SubLinkType_EXISTS_SUBLINK: "EXISTS (subquery)",
			pg.SubLinkType_ANY_SUBLINK:    "IN / ANY (subquery)",
			pg.SubLinkType_ALL_SUBLINK:    "NOT IN / ALL (subquery)",
		}[s.SubLinkType] + " (PostgreSQL may keep the subquery's rows in a hash table)"
		m.hashed(sel, sc, s.Location, what)
		return boolean
	case pg.SubLinkType_ARRAY_SUBLINK:
		return m.array(sel, sc, s.Location, "ARRAY(subquery)")
	case pg.SubLinkType_ROWCOMPARE_SUBLINK:
		m.query(sel, sc)
		return boolean
	}
	r := m.query(sel, sc)
	if s.SubLinkType == pg.SubLinkType_MULTIEXPR_SUBLINK {
		return m.alloc(r.whole(), s.Location, "(subquery)")
	}
	return m.alloc(r.out(), s.Location, "(subquery)")
}

// xmlExpr bounds XMLELEMENT, XMLFOREST, XMLCONCAT, XMLPARSE, XMLPI, XMLROOT
// and IS DOCUMENT. Text put into XML is escaped (& becomes &amp;).
func (m *memCheck) xmlExpr(x *pg.XmlExpr, sc *mscope) bound {
	var bs []bound
	for _, a := range x.NamedArgs {
		bs = append(bs, m.expr(a, sc).times(2))
	}
	for _, a := range x.Args {
		bs = append(bs, m.expr(a, sc))
	}
	var r bound
	switch x.Op {
	case pg.XmlExprOp_IS_DOCUMENT:
		return boolean
	case pg.XmlExprOp_IS_XMLELEMENT, pg.XmlExprOp_IS_XMLFOREST:
		r = sumOf(bs).times(5).add(float64(2*len(x.Name)) + 8*float64(len(bs)+1))
	default:
		r = sumOf(bs).add(float64(len(x.Name)) + 64)
	}
	r.capped = false
	return m.alloc(r, x.Location, "the XML expression", bs...)
}

package sqlguard

import (
	"google.golang.org/protobuf/proto"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// Write mode: exactly one INSERT or UPDATE on a catalog table the caller
// holds a write grant on. The statement may touch no other relation, may not
// read a sensitive column of its target without an unmasked grant (WHERE,
// SET expressions, RETURNING, INSERT ... SELECT, subqueries, *, whole-row
// references), and may set only WritableColumns. The database role for a
// write grant has INSERT/UPDATE on public.<table>, i.e. on the unmasked base
// table, so these rules are what keeps a write grant from becoming a read
// grant.

// writeTarget checks the target table and the grant, and makes it w.wt.
func (w *walker) writeTarget(rv *pg.RangeVar, op string) *tableInfo {
	if rv == nil {
		w.deny(RuleNodeNotAllowed, -1, "%s without a target table", op)
		return nil
	}
	t, _ := w.resolveRelation(rv, &scope{})
	if w.fail != nil {
		return nil
	}
	if t == nil {
		w.deny(RuleRelationNotAllowed, rv.Location, "relation %s is not available; the tables are %s", rv.Relname, w.g.names)
		return nil
	}
	w.tables = append(w.tables, t.name)
	if len(t.writable) == 0 {
		w.deny(RuleTableNotWritable, rv.Location, "table %s cannot be written through Airlock", t.name)
		return nil
	}
	grant, ok := w.p.Write[t.name]
	if !ok || (!grant.Insert && !grant.Update) {
		w.deny(RuleNoWriteGrant, rv.Location, "you hold no active write grant on %s; request one first", t.name)
		return nil
	}
	if (op == "INSERT" && !grant.Insert) || (op == "UPDATE" && !grant.Update) {
		w.deny(RuleWriteOperationNotGranted, rv.Location, "your write grant on %s does not include %s", t.name, op)
		return nil
	}
	w.wt = t
	return t
}

func (w *walker) insert(n *pg.InsertStmt) {
	t := w.writeTarget(n.Relation, "INSERT")
	if t == nil {
		return
	}
	if n.WithClause != nil {
		w.withClause(n.WithClause, &scope{})
		return
	}
	if len(n.Cols) == 0 {
		w.deny(RuleInsertColumnsRequired, n.Relation.Location, "INSERT must name its columns: INSERT INTO %s (col, ...) VALUES (...)", t.name)
		return
	}
	for _, c := range n.Cols {
		rt := c.GetResTarget()
		if rt == nil || !t.writable[rt.Name] {
			w.deny(RuleWriteColumnNotAllowed, nodeLoc(c), "column %s.%s is not writable; writable columns are %s", t.name, resName(rt), writableList(t))
			return
		}
	}
	if oc := n.OnConflictClause; oc != nil && oc.Action == pg.OnConflictAction_ONCONFLICT_UPDATE {
		w.deny(RuleOnConflictUpdate, oc.Location, "ON CONFLICT DO UPDATE is not allowed; use ON CONFLICT DO NOTHING or a separate UPDATE")
		return
	}
	// INSERT ... SELECT / VALUES sees no target columns; subqueries in it may
	// read only the target (relation() enforces it).
	if n.SelectStmt != nil {
		w.node(n.SelectStmt, &scope{})
	}
	ts := &scope{entries: []*rangeEntry{tableEntry(t, n.Relation.Alias)}}
	if n.OnConflictClause != nil {
		w.node(n.OnConflictClause, ts)
	}
	for _, c := range n.Cols {
		w.node(c, &scope{})
	}
	for _, r := range n.ReturningList {
		w.node(r, ts)
	}
	w.children(n, ts, fRelation, fCols, fSelectStmt, fOnConflict, fReturningList, fWithClause)
}

func (w *walker) update(n *pg.UpdateStmt) {
	t := w.writeTarget(n.Relation, "UPDATE")
	if t == nil {
		return
	}
	if n.WithClause != nil {
		w.withClause(n.WithClause, &scope{})
		return
	}
	if len(n.FromClause) > 0 {
		w.deny(RuleWriteReadsOtherTable, nodeLoc(n.FromClause[0]), "UPDATE ... FROM is not allowed: a write may read only its target table %s", t.name)
		return
	}
	if n.WhereClause == nil {
		w.deny(RuleUpdateWithoutWhere, n.Relation.Location, "UPDATE without WHERE would change every row of %s; add a WHERE clause", t.name)
		return
	}
	if !rowColumnRef(n.WhereClause) {
		w.deny(RuleUpdateWhereConstant, nodeLoc(n.WhereClause), "the WHERE clause of this UPDATE does not test any column of %s, so it selects every row or none; filter on a column", t.name)
		return
	}
	for _, c := range n.TargetList {
		rt := c.GetResTarget()
		if rt == nil || !t.writable[rt.Name] {
			loc := int32(-1)
			if rt != nil {
				loc = rt.Location
			}
			w.deny(RuleWriteColumnNotAllowed, loc, "column %s.%s is not writable; writable columns are %s", t.name, resName(rt), writableList(t))
			return
		}
	}
	ts := &scope{entries: []*rangeEntry{tableEntry(t, n.Relation.Alias)}}
	w.children(n, ts, fRelation, fWithClause, fFromClause)
}

func resName(rt *pg.ResTarget) string {
	if rt == nil {
		return "?"
	}
	return rt.Name
}

func writableList(t *tableInfo) string {
	var out []string
	for _, c := range t.columns {
		if t.writable[c] {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	s := out[0]
	for _, c := range out[1:] {
		s += ", " + c
	}
	return s
}

// rowColumnRef reports whether an UPDATE's WHERE tests a column of the
// updated row: a column reference outside any subquery. A subquery's columns
// belong to the subquery, so WHERE EXISTS (SELECT ...) still matches every
// row or none.
func rowColumnRef(m proto.Message) bool {
	switch n := m.(type) {
	case *pg.ColumnRef:
		return true
	case *pg.SubLink:
		return n.Testexpr != nil && rowColumnRef(n.Testexpr)
	case *pg.SelectStmt:
		return false
	}
	found := false
	eachChild(m, nil, func(c proto.Message) bool {
		found = rowColumnRef(c)
		return !found
	})
	return found
}

package query

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/policy"
	"airlock.dev/airlock/shared/sqlguard"
)

// The schema description replaces the system catalogs, which the guard refuses: it says
// what the policy's tables hold and what the caller, with the grants they hold right
// now, sees of them. It never names anything outside the policy's tables, nor anyone
// else's grants, and each description is in the audit trail like any read.
//
//	GET /schema           the tables the caller can query
//	GET /schema/{table}   one table: its columns, their types, how each sensitive one is
//	                      masked, which columns a write may set, and which role the
//	                      caller may request to unmask or write it

// eventDescribe is the audit event of a schema description.
const eventDescribe = "query.describe"

// TableSummary is one table in the answer to GET /schema.
type TableSummary struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"` // in table order
	// Masked lists the sensitive columns the caller sees masked now.
	Masked []string `json:"masked"`
	// Unmasked is true when a grant of the caller shows the table's real values.
	Unmasked bool `json:"unmasked"`
	// Writable is true when the policy lets the table be written under a write grant;
	// WriteGranted when the caller holds one now.
	Writable     bool `json:"writable"`
	WriteGranted bool `json:"write_granted"`
}

// TableDetail is the answer to GET /schema/{table}.
type TableDetail struct {
	Name       string       `json:"name"`
	PrimaryKey []string     `json:"primary_key"`
	Columns    []ColumnInfo `json:"columns"`
	Unmasked   bool         `json:"unmasked"`
	// UnmaskRole is the role the caller may request that shows the table's sensitive
	// columns ("" when the table has none, or the caller may request no such role).
	UnmaskRole string     `json:"unmask_role,omitempty"`
	Write      *WriteInfo `json:"write"` // nil: never written through Airlock
	// Grants are the caller's own active grants that open something of the table.
	Grants []GrantInfo `json:"grants"`
}

// ColumnInfo describes one column for the caller.
type ColumnInfo struct {
	Name string `json:"name"`
	// Type is the column's type as a query returns it (format_type of the masked
	// view's column; a domain is named by its base type).
	Type string `json:"type"`
	// Sensitive columns have a mask in the policy; Masked is true when the caller sees
	// the mask now rather than the value.
	Sensitive bool   `json:"sensitive"`
	Masked    bool   `json:"masked"`
	Mask      string `json:"mask,omitempty"`             // the policy's mask: hash, partial, redact, null
	MaskShows string `json:"mask_description,omitempty"` // what the mask leaves, for a person
	GrantRole string `json:"grant_role,omitempty"`       // masked: the role the caller may request to see it
	Writable  bool   `json:"writable"`                   // a write may set it (under a write grant)
}

// WriteInfo says how a table may be written.
type WriteInfo struct {
	Operations []string `json:"operations"`
	Columns    []string `json:"columns"`
	MaxRows    int      `json:"max_rows"`
	Granted    []string `json:"granted"` // the operations the caller's grants allow now
	GrantRole  string   `json:"grant_role,omitempty"`
}

// GrantInfo is one of the caller's grants.
type GrantInfo struct {
	ID        int64     `json:"grant_id"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
}

// describeTables serves GET /schema: every table of the policy, which every member may
// query, with what the caller sees of it.
func (h *Handler) describeTables(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	sess, cols, err := h.describeStart(ctx, r, rid, "")
	if err != nil {
		return err
	}
	perms := h.deps.Policy.Permissions(sqlguard.Write, sess.Roles())
	out := []TableSummary{}
	for _, name := range h.deps.Policy.TableNames() {
		t, _ := h.deps.Policy.Table(name)
		s := TableSummary{Name: name, Columns: []string{}, Masked: []string{}, Unmasked: perms.Unmasked[name], Writable: t.Write != nil}
		for _, c := range cols[name] {
			s.Columns = append(s.Columns, c.name)
		}
		if !s.Unmasked {
			s.Masked = append(s.Masked, t.SensitiveColumns()...)
		}
		g := perms.Write[name]
		s.WriteGranted = g.Insert || g.Update
		out = append(out, s)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"request_id": rid, "tables": out})
	return nil
}

// describeTable serves GET /schema/{table}. A name that is not one of the policy's
// tables gets the same 404 whatever it is (a system catalog, Airlock's own tables, a
// view of another schema), so the answer tells nothing about what else exists.
func (h *Handler) describeTable(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	name := r.PathValue("table")
	sess, cols, err := h.describeStart(ctx, r, rid, name)
	if err != nil {
		return err
	}
	pol := h.deps.Policy
	t, _ := pol.Table(name) // describeStart refused any other name
	perms := pol.Permissions(sqlguard.Write, sess.Roles())
	d := TableDetail{Name: name, PrimaryKey: t.PrimaryKey, Columns: []ColumnInfo{}, Unmasked: perms.Unmasked[name], Grants: []GrantInfo{}}
	if len(t.Masked) > 0 {
		d.UnmaskRole = requestableRole(pol, sess.Email, name, false)
	}
	for _, c := range cols[name] {
		ci := ColumnInfo{Name: c.name, Type: c.typ}
		if m, ok := t.Masked[c.name]; ok {
			ci.Sensitive, ci.Masked, ci.Mask, ci.MaskShows = true, !d.Unmasked, m.Kind, maskShows(m)
			if ci.Masked {
				ci.GrantRole = d.UnmaskRole
			}
		}
		ci.Writable = t.Write != nil && slices.Contains(t.Write.Columns, c.name)
		d.Columns = append(d.Columns, ci)
	}
	if t.Write != nil {
		wi := &WriteInfo{Operations: []string{}, Columns: t.Write.Columns, MaxRows: t.Write.MaxRows, Granted: []string{},
			GrantRole: requestableRole(pol, sess.Email, name, true)}
		g := perms.Write[name]
		for _, op := range []struct {
			name            string
			allowed, signed bool
		}{{"insert", t.Write.Insert, g.Insert}, {"update", t.Write.Update, g.Update}} {
			if op.allowed {
				wi.Operations = append(wi.Operations, op.name)
			}
			if op.allowed && op.signed {
				wi.Granted = append(wi.Granted, op.name)
			}
		}
		d.Write = wi
	}
	for _, g := range sess.Grants {
		if slices.Contains(g.Capabilities, "unmasked_"+name) || slices.Contains(g.Capabilities, "write_"+name) {
			d.Grants = append(d.Grants, GrantInfo{ID: g.ID, Role: g.Role, ExpiresAt: g.ExpiresAt})
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"request_id": rid, "table": d})
	return nil
}

// describeStart is the common story of both descriptions: authenticate, load the
// caller's grants, check the table (when one is named), audit, then read the columns.
// The audit entry comes before anything is read, as for a query, and a name outside the
// policy is recorded as refused.
func (h *Handler) describeStart(ctx context.Context, r *http.Request, rid, table string) (*grants.Session, map[string][]viewColumnType, error) {
	id, err := h.deps.Authenticate(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	sess, err := h.grants.Session(ctx, id.Email)
	if err != nil {
		return nil, nil, &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "database_unavailable", Message: "the database could not be reached to check your grants; nothing was read", Err: err}
	}
	_, known := h.deps.Policy.Table(table)
	e := audit.Entry{
		Event: eventDescribe, Actor: sess.Email, Function: EntryPoint, RequestID: rid, GrantIDs: sess.IDs(),
		Decision: audit.DecisionAllowed, Details: map[string]any{"path": "/schema"},
	}
	if table != "" {
		e.Details["path"] = "/schema/{table}"
		e.Details["table"] = table // as asked; the entry is JSON, whatever the name holds
		if known {
			e.Tables = []string{table}
		} else {
			e.Decision, e.Rule = audit.DecisionDenied, "table_not_found"
		}
	}
	if err := h.deps.Audit.Record(ctx, e); err != nil {
		return nil, nil, h.auditUnavailable(rid, err)
	}
	if table != "" && !known {
		return nil, nil, httpapi.Errorf(http.StatusNotFound, "table_not_found", "%q is not one of the tables you can query: %s",
			table, strings.Join(h.deps.Policy.TableNames(), ", "))
	}
	names := h.deps.Policy.TableNames()
	if table != "" {
		names = []string{table}
	}
	cols, err := viewColumnTypes(ctx, h.deps.Pool, names)
	if err != nil {
		return nil, nil, dbError(err)
	}
	return sess, cols, nil
}

// A viewColumnType is one column of a masked view, with its type as a query returns it.
type viewColumnType struct{ name, typ string }

// viewColumnTypes reads the columns of the masked views of the named tables (and only
// those: the names come from the policy), in table order.
func viewColumnTypes(ctx context.Context, q querier, tables []string) (map[string][]viewColumnType, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname::text, a.attname::text,
		       format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END,
		                   CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END)
		  FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		 WHERE n.nspname = 'masked' AND c.relkind = 'v' AND c.relname::text = ANY ($1)
		 ORDER BY c.relname, a.attnum`, tables)
	if err != nil {
		return nil, err
	}
	out := map[string][]viewColumnType{}
	var table string
	var c viewColumnType
	_, err = pgx.ForEachRow(rows, []any{&table, &c.name, &c.typ}, func() error {
		out[table] = append(out[table], c)
		return nil
	})
	return out, err
}

// maskShows says, for a person, what a mask leaves of a value.
func maskShows(m policy.Mask) string {
	switch m.Kind {
	case policy.MaskHash:
		return "keyed hash: equal values give equal hashes, so they still join and group"
	case policy.MaskPartial:
		switch {
		case m.KeepFirst > 0 && m.KeepLast > 0:
			return "partial: the first " + strconv.Itoa(m.KeepFirst) + " and last " + strconv.Itoa(m.KeepLast) + " characters"
		case m.KeepFirst > 0:
			return "partial: the first " + strconv.Itoa(m.KeepFirst) + " characters"
		default:
			return "partial: the last " + strconv.Itoa(m.KeepLast) + " characters"
		}
	case policy.MaskRedact:
		return "redacted: a constant"
	case policy.MaskNull:
		return "NULL"
	}
	return m.String()
}

// requestableRole names the role email may request that unmasks (write false) or writes
// table, or "" when there is none. A role scoped to fewer tables is preferred, so
// break-glass is named only when nothing narrower opens the table.
func requestableRole(pol *policy.Policy, email, table string, write bool) string {
	var best *policy.Role
	for _, r := range pol.RequestableRoles(email) { // sorted by name
		tables := r.Unmask
		if write {
			tables = r.Write
		}
		if !slices.Contains(tables, table) {
			continue
		}
		if best == nil || narrower(r, best) {
			best = r
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}

// narrower reports whether a opens less than b: not break-glass when b is, then fewer
// tables.
func narrower(a, b *policy.Role) bool {
	if a.BreakGlass() != b.BreakGlass() {
		return !a.BreakGlass()
	}
	return len(a.Unmask)+len(a.Write) < len(b.Unmask)+len(b.Write)
}

// refusalRole names the role the caller may request that would let a refused statement
// through, for the refusals that a grant lifts: a write without a write grant (or one
// for another operation), a write reading a sensitive column, a revert without a write
// grant. "" for every other refusal.
func (h *Handler) refusalRole(email string, v *verdict) string {
	table := v.Target
	if table == "" && len(v.Tables) == 1 {
		table = v.Tables[0]
	}
	if table == "" {
		return ""
	}
	switch v.rule() {
	case sqlguard.RuleNoWriteGrant, sqlguard.RuleWriteOperationNotGranted, ruleRevertNotAllow:
		return requestableRole(h.deps.Policy, email, table, true)
	case sqlguard.RuleWriteReadsSensitiveColumn:
		return requestableRole(h.deps.Policy, email, table, false)
	}
	return ""
}

// annotateMasked gives each masked column of a read's answer its mask and the role the
// caller may request to see it.
func (h *Handler) annotateMasked(email string, cols []Column) {
	for i := range cols {
		c := &cols[i]
		if !c.Masked || c.source.table == "" {
			continue
		}
		if t, ok := h.deps.Policy.Table(c.source.table); ok {
			c.Mask = t.Masked[c.source.column].Kind
			c.GrantRole = requestableRole(h.deps.Policy, email, c.source.table, false)
		}
	}
}

package sqlguard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v5"
	pgparser "github.com/pganalyze/pg_query_go/v5/parser"
)

// A Mode is what the caller asked to do: read with SELECT, or write with
// INSERT/UPDATE under a write grant.
type Mode int

const (
	// Read allows SELECT, VALUES, TABLE and EXPLAIN (without ANALYZE).
	Read Mode = iota
	// Write allows exactly one INSERT or UPDATE on a table the caller holds
	// a write grant on.
	Write
)

// String returns "read" or "write".
func (m Mode) String() string {
	switch m {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// A Table is one application table Airlock exposes. It lives in schema
// public and developers read it through the view masked.<Name>.
type Table struct {
	// Name is the lower-case, unqualified table name.
	Name string
	// Columns lists every column, in table order (alias column lists such as
	// `users AS u(a, b)` rename them by position).
	Columns []string
	// Sensitive columns are masked unless the caller holds an unmasked grant
	// on the table.
	Sensitive []string
	// WritableColumns are the columns an INSERT may supply and an UPDATE may
	// SET. Empty means the table cannot be written at all.
	WritableColumns []string
	// Keys are column sets that are unique in the table (its primary key,
	// unique constraints). The memory rules count a join on every column of
	// a key as adding no rows, so each must really be unique.
	Keys [][]string
}

// A Catalog is the set of tables Airlock exposes. Any other relation is refused.
type Catalog struct {
	Tables []Table
}

// A WriteGrant is an active write grant on one table.
type WriteGrant struct {
	Insert, Update bool
}

// Permissions are the caller's effective permissions for one request.
type Permissions struct {
	Mode Mode
	// Unmasked maps a table name to true when the caller may see its
	// sensitive columns.
	Unmasked map[string]bool
	// Write maps a table name to the caller's active write grant on it.
	Write map[string]WriteGrant
}

// A Decision is the verdict on one request.
type Decision struct {
	// Allowed is true when the statement may be executed.
	Allowed bool
	// Rule is the stable id of the rule that refused the statement (see
	// doc.go and the Rule* constants); "" when allowed.
	Rule string
	// Message is a sentence a developer understands, naming the offending
	// function, relation, column or statement; "" when allowed.
	Message string
	// Position is the 1-based character (not byte) position of the offending
	// thing in the input, like PostgreSQL's error position; 0 if unknown.
	Position int
	// Kind is what the guard saw, also when it refused it: select, values,
	// table, explain, insert, update, delete, merge, truncate, ddl,
	// privilege, set, reset, show, copy, do, call, prepare, execute,
	// deallocate, declare, fetch, move, close, listen, unlisten, notify, load,
	// lock, vacuum, analyze, cluster, reindex, checkpoint, discard,
	// transaction, other; "" when the text was refused before or by the
	// parser.
	Kind string
	// Statement is the single statement's text (leading and trailing
	// whitespace and comments and the trailing ';' removed). It is the text
	// that was validated and the only text that may be executed; the caller
	// wraps it, e.g. `DECLARE c NO SCROLL CURSOR FOR <Statement>`.
	Statement string
	// Fingerprint is pg_query's fingerprint (hex) of Statement: equal for
	// statements that differ only in constants, whitespace and comments.
	Fingerprint string
	// Tables are the catalog tables referenced (sorted, unique).
	Tables []string
	// Columns are the "table.column" pairs referenced, best effort (sorted,
	// unique). Star and whole-row references count as every column.
	Columns []string
	// Functions are the functions called, lower-case, without pg_catalog.
	// (sorted, unique).
	Functions []string
	// MaskedColumns are the sensitive "table.column" pairs the statement
	// reaches (directly, by *, t.* or a whole-row reference) that the caller
	// may not see unmasked; the database returns them masked.
	MaskedColumns []string
	// Target is the table an INSERT or UPDATE writes.
	Target string
	// Forbidden says what a denied request attempted that Airlock never allows, found
	// anywhere in it (inside EXPLAIN, a CTE or a second statement too):
	// ForbiddenDelete, ForbiddenTruncate, ForbiddenMerge, ForbiddenDDL or
	// ForbiddenPrivilege (GRANT, role management, SET ROLE, set_config('role', …)).
	// "" when allowed, when nothing of the kind was found, or when the text did not parse.
	Forbidden string
}

// An Option configures a Guard.
type Option func(*config)

type config struct {
	maxBytes, maxDepth, maxOperators int
}

// WithMaxBytes sets the largest SQL text accepted, in bytes. Defaults to
// DefaultMaxBytes (16 KiB). Values below 1 keep the default.
func WithMaxBytes(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBytes = n
		}
	}
}

// WithMaxDepth sets the deepest nesting of parentheses and brackets
// accepted. Defaults to DefaultMaxDepth (64). Values below 1 keep the default.
func WithMaxDepth(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxDepth = n
		}
	}
}

// WithMaxOperators sets how many operators and nesting keywords (NOT, AND,
// OR, IS, CASE, UNION, JOIN, ...) one statement may hold. Defaults to
// DefaultMaxOperators (500). Values below 1 keep the default.
func WithMaxOperators(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxOperators = n
		}
	}
}

// A Guard checks SQL against a Catalog. It is immutable after New and safe
// for concurrent use.
type Guard struct {
	cfg    config
	tables map[string]*tableInfo
	names  string // "users, accounts, ..." for messages
}

// tableInfo is a Table indexed for lookups.
type tableInfo struct {
	name      string
	columns   []string
	qualified []string // "table.column", by column index
	refs      []colRef // the columns as a FROM item without an alias presents them; read only
	sensitive map[string]bool
	writable  map[string]bool
	keys      [][]string
}

// New returns a Guard for the catalog. Table and column names are folded to
// lower case, as PostgreSQL folds unquoted identifiers.
func New(cat Catalog, opts ...Option) *Guard {
	cfg := config{maxBytes: DefaultMaxBytes, maxDepth: DefaultMaxDepth, maxOperators: DefaultMaxOperators}
	for _, o := range opts {
		o(&cfg)
	}
	g := &Guard{cfg: cfg, tables: make(map[string]*tableInfo, len(cat.Tables))}
	var names []string
	for _, t := range cat.Tables {
		ti := &tableInfo{
			name:      strings.ToLower(t.Name),
			sensitive: make(map[string]bool, len(t.Sensitive)),
			writable:  make(map[string]bool, len(t.WritableColumns)),
		}
		for _, c := range t.Columns {
			ti.columns = append(ti.columns, strings.ToLower(c))
			ti.qualified = append(ti.qualified, ti.name+"."+strings.ToLower(c))
		}
		for i, c := range ti.columns {
			ti.refs = append(ti.refs, colRef{t: ti, col: c, qual: ti.qualified[i], name: c})
		}
		for _, c := range t.Sensitive {
			ti.sensitive[strings.ToLower(c)] = true
		}
		for _, c := range t.WritableColumns {
			ti.writable[strings.ToLower(c)] = true
		}
		for _, k := range t.Keys {
			key := make([]string, len(k))
			for i, c := range k {
				key[i] = strings.ToLower(c)
			}
			ti.keys = append(ti.keys, key)
		}
		g.tables[ti.name] = ti
		names = append(names, ti.name)
	}
	g.names = strings.Join(names, ", ")
	return g
}

// pgSpace is PostgreSQL's whitespace (scan.l). strings.TrimSpace would also
// strip U+0085 and U+00A0, which PostgreSQL reads as identifier characters.
const pgSpace = " \t\n\r\f\v"

// Check decides whether sql may run with permissions p. It never panics: a
// failure inside the guard is a denial with RuleInternalError.
func (g *Guard) Check(sql string, p Permissions) (d *Decision) {
	d = &Decision{}
	defer func() {
		if r := recover(); r != nil {
			kind := d.Kind
			*d = Decision{
				Rule:    RuleInternalError,
				Message: fmt.Sprintf("sqlguard: internal error while checking the statement (%v); it was refused", r),
				Kind:    kind,
			}
		}
	}()
	g.check(sql, p, d)
	return d
}

func (d *Decision) deny(rule string, pos int, format string, args ...any) {
	d.Allowed = false
	d.Rule = rule
	d.Position = pos
	d.Message = fmt.Sprintf(format, args...)
}

// runePos converts a 0-based byte offset into a 1-based character position;
// 0 when the offset is unknown (negative).
func runePos(s string, off int) int {
	if off < 0 {
		return 0
	}
	if off > len(s) {
		off = len(s)
	}
	return utf8.RuneCountInString(s[:off]) + 1
}

func (g *Guard) check(sql string, p Permissions, d *Decision) {
	if len(sql) > g.cfg.maxBytes {
		d.deny(RuleInputTooLarge, 0, "the statement is %d bytes long; the limit is %d bytes", len(sql), g.cfg.maxBytes)
		return
	}
	if i := strings.IndexByte(sql, 0); i >= 0 {
		d.deny(RuleInvalidInput, runePos(sql, i), "the statement contains a NUL byte")
		return
	}
	if !utf8.ValidString(sql) {
		d.deny(RuleInvalidInput, 0, "the statement is not valid UTF-8")
		return
	}
	if strings.Trim(sql, pgSpace) == "" {
		d.deny(RuleEmptyStatement, 0, "the request holds no SQL statement")
		return
	}
	if p.Mode != Read && p.Mode != Write {
		d.deny(RuleInternalError, 0, "sqlguard: unknown mode %v", p.Mode)
		return
	}

	// Pre-scan before the parser sees anything; pg_query.Scan (a cgo call,
	// about a quarter of a parse) only when the raw scan needs it.
	pre := rawScan(sql)
	over := pre.depth > g.cfg.maxDepth || pre.ops > g.cfg.maxOperators
	var toks []*pg.ScanToken
	if over || pre.backslash || pre.nonASCII || pre.comment {
		sr, err := pg.Scan(sql)
		if err != nil {
			if over {
				d.deny(RuleInputTooDeep, 0, "the statement nests more than %d levels or holds more than %d operators", g.cfg.maxDepth, g.cfg.maxOperators)
				return
			}
			g.parseError(sql, err, d)
			return
		}
		toks = sr.Tokens
		if over {
			depth, ops, at := tokenCounts(toks, g.cfg.maxDepth, g.cfg.maxOperators)
			if depth > g.cfg.maxDepth {
				d.deny(RuleInputTooDeep, runePos(sql, int(at)), "the statement nests parentheses or brackets %d levels deep; the limit is %d", depth, g.cfg.maxDepth)
				return
			}
			if ops > g.cfg.maxOperators {
				d.deny(RuleInputTooDeep, runePos(sql, int(at)), "the statement holds %d operators and nesting keywords; the limit is %d", ops, g.cfg.maxOperators)
				return
			}
		}
		if at, why := ambiguousLiteral(sql, toks); at >= 0 {
			d.deny(RuleAmbiguousLiteral, runePos(sql, int(at)), "%s", why)
			return
		}
	}

	tree, fingerprint, err := parse(sql)
	if err != nil {
		g.parseError(sql, err, d)
		return
	}
	defer func() {
		if !d.Allowed {
			d.Forbidden = forbiddenIn(tree.Stmts)
		}
	}()
	switch len(tree.Stmts) {
	case 0:
		d.deny(RuleEmptyStatement, 0, "the request holds only comments or semicolons, no SQL statement")
		return
	case 1:
	default:
		d.Kind = classifyStmt(tree.Stmts[0].Stmt).kind
		second := int(tree.Stmts[1].StmtLocation)
		for second < len(sql) && strings.IndexByte(pgSpace, sql[second]) >= 0 {
			second++
		}
		d.deny(RuleMultipleStatements, runePos(sql, second), "the request holds %d statements; send exactly one statement per request", len(tree.Stmts))
		return
	}
	raw := tree.Stmts[0]
	cls := classifyStmt(raw.Stmt)
	d.Kind = cls.kind
	start, end := stmtBounds(sql, raw, toks)
	d.Statement = sql[start:end]
	d.Fingerprint = fingerprint
	if toks != nil {
		// Comments were cut away by token offsets: the slice is what runs, so it
		// must parse on its own into the statement that was checked. Without
		// comments only whitespace and semicolons were trimmed, which cannot
		// change the tree.
		if fp, err := pg.Fingerprint(d.Statement); err != nil || fp != fingerprint {
			d.deny(RuleInternalError, runePos(sql, start), "sqlguard: the statement could not be isolated from the request (fingerprint %q of %q, %v)", fp, fingerprint, err)
			return
		}
	}

	w := &walker{g: g, p: p}
	stmtPos := runePos(sql, start)
	switch top := raw.Stmt.Node.(type) {
	case *pg.Node_SelectStmt:
		if p.Mode == Write {
			d.deny(RuleWriteModeRequiresWrite, stmtPos, "write mode accepts only INSERT or UPDATE; send %s in read mode", cls.label)
			return
		}
		w.selectStmt(top.SelectStmt, nil)
	case *pg.Node_ExplainStmt:
		w.explain(top.ExplainStmt, stmtPos)
		if w.fail == nil && p.Mode == Write {
			d.deny(RuleWriteModeRequiresWrite, stmtPos, "write mode accepts only INSERT or UPDATE; send EXPLAIN in read mode")
			return
		}
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt:
		if p.Mode != Write {
			d.deny(RuleWriteRequiresWriteMode, stmtPos, "%s is a write; request a write grant on the table and send it in write mode", cls.label)
			return
		}
		if ins := raw.Stmt.GetInsertStmt(); ins != nil {
			w.insert(ins)
		} else {
			w.update(raw.Stmt.GetUpdateStmt())
		}
		if w.wt != nil {
			d.Target = w.wt.name
		}
	default:
		d.deny(cls.rule, stmtPos, "%s statements are not allowed%s", cls.label, ruleHint(cls.rule))
		return
	}
	d.Tables = sortedUnique(w.tables)
	d.Columns = sortedUnique(w.columns)
	d.Functions = sortedUnique(w.funcs)
	d.MaskedColumns = sortedUnique(w.masked)
	if w.fail == nil {
		// Only a statement that passed every other rule is sized: the
		// memory rules assume the allowlisted nodes and functions.
		w.fail = g.memory(raw.Stmt)
	}
	if w.fail != nil {
		d.deny(w.fail.rule, runePos(sql, int(w.fail.loc)), "%s", w.fail.msg)
		if w.fail.loc < 0 {
			d.Position = stmtPos
		}
		return
	}
	d.Allowed = true
}

// ruleHint explains the statement-level rules in a few words.
func ruleHint(rule string) string {
	switch rule {
	case RuleDeleteForbidden, RuleTruncateForbidden:
		return " in any mode: rows are never deleted through Airlock"
	case RuleMergeForbidden:
		return " in any mode; write a single INSERT or UPDATE under a write grant"
	case RuleDDLForbidden:
		return ": Airlock never changes the schema"
	case RulePrivilegeChangeForbidden:
		return ": privileges and roles are managed by Airlock's grants"
	}
	return "; Airlock runs a single SELECT (read mode) or INSERT/UPDATE (write mode)"
}

// parseError turns a parser or scanner error into a denial.
func (g *Guard) parseError(sql string, err error, d *Decision) {
	var pe *pgparser.Error
	if errors.As(err, &pe) {
		// Cursorpos is already PostgreSQL's 1-based character position.
		d.deny(RuleParseError, pe.Cursorpos, "syntax error: %s", pe.Message)
		return
	}
	// Typically Go protobuf's "exceeded maximum recursion depth" on a deep tree.
	d.deny(RuleParseError, 0, "the statement could not be parsed: %v", err)
}

// stmtBounds returns the byte range of the statement without surrounding
// whitespace, comments and semicolons. Comments are only located with the
// parser's own scanner tokens, so a "--" inside a literal never cuts the text.
func stmtBounds(src string, raw *pg.RawStmt, toks []*pg.ScanToken) (int, int) {
	start := int(raw.StmtLocation)
	end := len(src)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	if toks != nil {
		first, last := -1, -1
		for i, t := range toks {
			if int(t.Start) < start || int(t.Start) >= end {
				continue
			}
			if t.Token == pg.Token_SQL_COMMENT || t.Token == pg.Token_C_COMMENT {
				continue
			}
			if first < 0 {
				first = i
			}
			last = i
		}
		if first >= 0 {
			start = int(toks[first].Start)
			// Token end offsets are not reliable for every token type (U&''
			// reports End == Start), so the statement ends where the next
			// comment after the last real token starts.
			if last+1 < len(toks) {
				if n := toks[last+1]; (n.Token == pg.Token_SQL_COMMENT || n.Token == pg.Token_C_COMMENT) && int(n.Start) < end {
					end = int(n.Start)
				}
			}
		}
	}
	for start < end && strings.IndexByte(pgSpace, src[start]) >= 0 {
		start++
	}
	for end > start && (strings.IndexByte(pgSpace, src[end-1]) >= 0 || src[end-1] == ';') {
		end--
	}
	return start, end
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

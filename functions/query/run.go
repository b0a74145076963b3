package query

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
	"airlock.dev/airlock/shared/revert"
	"airlock.dev/airlock/shared/sqlguard"
)

// fetchBatch is how many rows each FETCH asks the server for: enough that a read held
// to the default max_rows (500) is answered by its first FETCH, in the one round trip
// that also sets it up and ends it (read).
const fetchBatch = 512

// A result is what a statement produced, bounded by the caps.
type result struct {
	requestID string
	columns   []Column
	kinds     []kind     // of each column: how its values are written (see kind)
	rows      [][][]byte // values in text format, as the server sent them; nil is NULL
	truncated bool
	maxRows   int   // the row cap the read was held to
	bytes     int64 // the values' size in the answer's format (rowSize)
	maxBytes  int64 // the cap they were held to
	closed    bool  // the read's connection was closed rather than drained (discard)
	duration  time.Duration
	write     *WriteResult
	// details are what a committed write adds to its audit record: its target and the
	// rows' before-images.
	details map[string]any
	// until is when the grants the read ran under end (zero: none): the answer stops
	// there, with a record saying why (render).
	until time.Time
}

// expired reports whether the grants the result was read under have ended.
func (r *result) expired() bool { return !r.until.IsZero() && !time.Now().Before(r.until) }

func (r *result) rowCount() int64 {
	if r.write != nil {
		return r.write.RowsAffected
	}
	return int64(len(r.rows))
}

// A Column describes one result column. Type is PostgreSQL's name for its type
// (pg_type.typname: int4, numeric, text, timestamptz, _int4 for an array of int4, an
// enum's own name); a domain is named by its base type, as the server describes it.
type Column struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Masked bool   `json:"masked"`
	// A masked column also names its mask and a role the caller may request to see it
	// (describe.go).
	Mask      string `json:"mask,omitempty"`
	GrantRole string `json:"grant_role,omitempty"`
	oid       uint32
	source    viewColumn // the policy table's column it comes from, when it does
}

// WriteResult is the answer to a write or a revert.
type WriteResult struct {
	RowsAffected int64                        `json:"rows_affected"`
	Committed    bool                         `json:"committed"`
	DryRun       bool                         `json:"dry_run"`
	Preview      []map[string]json.RawMessage `json:"preview,omitempty"`
	// A revert also says which write it undoes and the statements that do it.
	Reverts    string   `json:"reverts,omitempty"`
	Statements []string `json:"statements,omitempty"`
	Note       string   `json:"note,omitempty"`
}

// deadline is when a request's statements must be over: the policy's statement timeout
// from the request's start, or the earliest expiry of the grants the session holds if
// sooner. It bounds the whole request, every FETCH of a read included, so that no
// statement outlives the access it runs under, nor the time one request may take.
func (h *Handler) deadline(sess *grants.Session) time.Time {
	d := sess.Now.Add(h.deps.Policy.Limits.StatementTimeout)
	if g := sess.Deadline(); !g.IsZero() && g.Before(d) {
		d = g
	}
	return d
}

// statementTimeout is the time left until the request's deadline, for a statement that
// starts now. A request is not started within a second of its grant's end.
func (h *Handler) statementTimeout(sess *grants.Session) (time.Duration, error) {
	if g := sess.Deadline(); !g.IsZero() && !g.After(time.Now().Add(time.Second)) {
		return 0, grantExpired(g, "too soon to start a statement")
	}
	return h.timeLeft(sess)
}

// timeLeft is the time left until the request's deadline, for a FETCH of a read that
// has started.
func (h *Handler) timeLeft(sess *grants.Session) (time.Duration, error) {
	left := time.Until(h.deadline(sess))
	if g := sess.Deadline(); !g.IsZero() && !g.After(time.Now()) {
		return 0, grantExpired(g, "the read was stopped then")
	}
	if left < time.Millisecond {
		return 0, httpapi.Errorf(http.StatusGatewayTimeout, "timeout", "the request ran past limits.statement_timeout (%s)", h.deps.Policy.Limits.StatementTimeout)
	}
	return left, nil
}

// grantExpired is the answer for a request whose grant ends (or ended) at d.
func grantExpired(d time.Time, what string) error {
	return httpapi.Errorf(http.StatusForbidden, "grant_expired", "your grant ends at %s: %s; no row computed after it is returned", d.UTC().Format(time.RFC3339), what)
}

// queueSetup queues the developer's transaction set-up: their role, a search path that
// reaches only what their mode allows, timeouts, and an application_name naming the
// request and grants (the sweeper ends sessions by it).
func (c *call) queueSetup(b *pgx.Batch, searchPath string) error {
	h, rid, sess := c.h, c.rid, c.sess
	timeout, err := h.statementTimeout(sess)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(sess.Grants))
	for _, id := range sess.IDs() {
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	appName := "airlock r=" + rid
	if len(ids) > 0 {
		appName += " g=" + strings.Join(ids, ",")
	}
	h.queueSlot(b, sess.Email) // as the function's login, before anything of the developer's
	b.Queue("SET LOCAL ROLE " + pgx.Identifier{sess.DBRole}.Sanitize())
	// The output styles are PostgreSQL's defaults, set here so that what the answer
	// promises (values as psql shows them, see kind) holds whatever the server's flags.
	b.Queue(`SELECT set_config('search_path', $1, true), set_config('statement_timeout', $2, true),
	                set_config('lock_timeout', $3, true), set_config('idle_in_transaction_session_timeout', $4, true),
	                set_config('application_name', $5, true), set_config('airlock.request_id', $6, true),
	                set_config('DateStyle', 'ISO, MDY', true), set_config('IntervalStyle', 'postgres', true),
	                set_config('bytea_output', 'hex', true)`,
		searchPath, ms(timeout), ms(h.deps.Policy.Limits.LockTimeout), ms(timeout+5*time.Second), truncate(appName, 63), rid)
	return nil
}

// begin opens a read-write transaction for a developer's write.
func (c *call) begin(ctx context.Context, conn *pgx.Conn, searchPath string) (pgx.Tx, error) {
	b := &pgx.Batch{}
	if err := c.queueSetup(b, searchPath); err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
	if err != nil {
		return nil, dbError(err)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		if e, ok := errors.AsType[*httpapi.Error](err); ok {
			return nil, e // too_many_statements
		}
		return nil, dbError(err)
	}
	return tx, nil
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// read runs a read in a READ ONLY transaction that is always rolled back, through a
// cursor, so the server computes no more rows than the caps let through. The set-up, the
// cursor and its first FETCH go to the server in one round trip, and so does the
// ROLLBACK when that FETCH asks for every row the read may return.
func (c *call) read(ctx context.Context) (*result, error) {
	h, req, sess := c.h, c.req, c.sess
	pool := h.deps.Pool
	if h.deps.Replica != nil {
		pool = h.deps.Replica
	}
	conn, release, err := h.gateFor(pool).acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	// Nothing of the read outlives its deadline: not a FETCH, not the wait for one.
	ctx, cancel := context.WithDeadline(ctx, h.deadline(sess))
	defer cancel()
	// The transaction ends before the connection goes back, and with it the person's
	// statement slot (slots.go), unless the batch below ended it already.
	defer func() {
		if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
			db.Exec(context.WithoutCancel(ctx), conn.Conn(), "ROLLBACK")
		}
	}()
	res := &result{maxBytes: h.deps.Policy.Limits.MaxBytes, maxRows: req.MaxRows}
	unmasked := h.deps.Policy.Permissions(sqlguard.Read, sess.Roles()).Unmasked
	collect := func(rows pgx.Rows) error {
		// In a batch, a statement after a failed one gets rows carrying only that error.
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		return c.collect(conn.Conn(), rows, res, unmasked)
	}

	b := &pgx.Batch{}
	b.Queue("BEGIN TRANSACTION READ ONLY")
	if err := c.queueSetup(b, "masked"); err != nil {
		return nil, err
	}
	want := min(fetchBatch, req.MaxRows+1)
	explain := c.v.Kind == "explain"
	if explain {
		// EXPLAIN cannot be a cursor; its output is a few lines.
		b.Queue(c.v.Statement).Query(collect)
	} else {
		b.Queue("DECLARE airlock_c NO SCROLL CURSOR FOR " + c.v.Statement)
		b.Queue("FETCH FORWARD " + strconv.Itoa(want) + " FROM airlock_c").Query(collect)
	}
	// When this is the only FETCH the read can need (it asks for one row past the cap,
	// which tells a truncated answer), the transaction ends in the same round trip.
	last := explain || want == req.MaxRows+1
	if last {
		b.Queue("ROLLBACK")
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if e, ok := errors.AsType[*httpapi.Error](err); ok {
			return nil, e
		}
		if !res.closed { // else the rows are all in, and the connection closed on purpose
			return nil, dbError(err)
		}
	}
	// A full batch means there may be more: fetch until the caps or the rows run out.
	// Each FETCH is a statement of its own: its timeout is what is left of the request's,
	// set in the same round trip.
	for fetched := len(res.rows); !last && !res.truncated && fetched == want; {
		want = min(fetchBatch, req.MaxRows+1-len(res.rows))
		timeout, err := h.timeLeft(sess)
		if err != nil {
			return nil, err
		}
		before := len(res.rows)
		b := &pgx.Batch{}
		b.Queue(`SELECT set_config('statement_timeout', $1, true)`, ms(timeout))
		b.Queue("FETCH FORWARD " + strconv.Itoa(want) + " FROM airlock_c").Query(collect)
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			if e, ok := errors.AsType[*httpapi.Error](err); ok {
				return nil, e
			}
			if !res.closed {
				return nil, dbError(err)
			}
		}
		fetched = len(res.rows) - before
	}
	if err := h.nameTypes(ctx, res.columns); err != nil {
		return nil, dbError(err)
	}
	return res, nil
}

// nameTypes names the columns whose type pgx does not know (enums, composites, money,
// pg_lsn, ...) from pg_type, asking the primary (which every login may read the catalog
// of) once per type and instance: the read's own connection may have been closed.
func (h *Handler) nameTypes(ctx context.Context, cols []Column) error {
	var missing []int64
	for i := range cols {
		if cols[i].Type != "" {
			continue
		}
		if name, ok := h.schema.typeName(cols[i].oid); ok {
			cols[i].Type = name
		} else {
			missing = append(missing, int64(cols[i].oid))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rows, err := h.deps.Pool.Query(ctx, `SELECT oid::int8, typname::text FROM pg_catalog.pg_type WHERE oid::int8 = ANY ($1)`, missing)
	if err != nil {
		return err
	}
	found := map[uint32]string{}
	var oid int64
	var name string
	_, err = pgx.ForEachRow(rows, []any{&oid, &name}, func() error {
		found[uint32(oid)] = name
		return nil
	})
	if err != nil {
		return err
	}
	h.schema.addTypeNames(found)
	for i := range cols {
		if cols[i].Type == "" {
			cols[i].Type = cmp.Or(found[cols[i].oid], strconv.FormatUint(uint64(cols[i].oid), 10))
		}
	}
	return nil
}

// collect appends rows to res until the row or byte cap is reached. Nothing larger than
// the cap is ever held: the pool refuses a message larger than max_bytes (and a little)
// before reading it (see app.Build), and each row that did arrive is measured as the
// answer will write it (rowSize, which builds nothing) before it is copied. A row that
// could never fit is an error that names it; rows that fit alone but not together
// truncate the answer. What the FETCH still sends after that is discarded, within a bound.
func (c *call) collect(conn *pgx.Conn, rows pgx.Rows, res *result, unmasked map[string]bool) error {
	h, req := c.h, c.req
	defer rows.Close()
	if res.columns == nil {
		fields := rows.FieldDescriptions()
		res.kinds = make([]kind, len(fields))
		for i, f := range fields {
			if f.Format != pgx.TextFormatCode { // QueryExecModeExec asks for text only
				return fmt.Errorf("query: column %d arrived in binary format", i+1)
			}
			res.kinds[i] = kindOf(f.DataTypeOID)
		}
		res.columns = h.describe(conn, fields, unmasked)
	}
	for rows.Next() {
		if len(res.rows) >= req.MaxRows {
			res.truncated = true
			res.closed = discard(conn, rows, res.maxBytes)
			break
		}
		raw := rows.RawValues() // valid until the next row: copied below once it fits
		size := rowSize(req.Format, res.kinds, raw)
		if size > res.maxBytes {
			res.closed = discard(conn, rows, res.maxBytes)
			return httpapi.Errorf(http.StatusRequestEntityTooLarge, "row_too_large",
				"row %d of the result takes %d bytes in a %s answer, more than limits.max_bytes (%d) allows a whole answer; nothing was returned. %s",
				len(res.rows)+1, size, req.Format, res.maxBytes, selectLess)
		}
		if res.bytes+size > res.maxBytes {
			res.truncated = true
			res.closed = discard(conn, rows, res.maxBytes)
			break
		}
		res.bytes += size
		res.rows = append(res.rows, copyRow(raw))
	}
	if err := rows.Err(); err != nil {
		if n, ok := db.MessageTooLarge(err); ok {
			return httpapi.Errorf(http.StatusRequestEntityTooLarge, "row_too_large",
				"the database's message for row %d of the result is %d bytes, more than limits.max_bytes (%d) allows; Airlock stopped before reading it, closed the connection and the statement was cancelled. %s",
				len(res.rows)+1, n, res.maxBytes, selectLess)
		}
		return dbError(err)
	}
	return nil
}

// discard reads the rows this FETCH still sends, so that the connection can serve again,
// unless that means reading more than limit bytes of them: then it closes the connection,
// which stops the server sending (its session ends) and keeps the connection out of the
// pool. A FETCH asks for up to fetchBatch rows, each up to the pool's message bound.
func discard(conn *pgx.Conn, rows pgx.Rows, limit int64) (closed bool) {
	var n int64
	for rows.Next() {
		for _, v := range rows.RawValues() {
			n += int64(len(v))
		}
		if n > limit {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn.PgConn().Close(ctx)
			return true
		}
	}
	return false
}

const selectLess = "Select less of it, for example left(col, 1000) or length(col)"

// copyRow copies a row's values out of pgx's buffer, which the next row reuses, into one
// allocation. NULL stays nil and an empty string stays non-nil.
func copyRow(raw [][]byte) [][]byte {
	n := 0
	for _, v := range raw {
		n += len(v)
	}
	buf := make([]byte, 0, n) // never nil, even when n is 0
	row := make([][]byte, len(raw))
	for i, v := range raw {
		if v != nil {
			start := len(buf)
			buf = append(buf, v...)
			row[i] = buf[start:len(buf):len(buf)]
		}
	}
	return row
}

// describe names the result's columns and marks those that come straight from a masked
// view column the developer may not see unmasked.
func (h *Handler) describe(conn *pgx.Conn, fields []pgconn.FieldDescription, unmasked map[string]bool) []Column {
	views := h.schema.viewColumns()
	cols := make([]Column, len(fields))
	for i, f := range fields {
		cols[i] = Column{Name: f.Name, oid: f.DataTypeOID} // Type "" is named by nameTypes
		if t, ok := conn.TypeMap().TypeForOID(f.DataTypeOID); ok {
			cols[i].Type = t.Name
		}
		if vc, ok := views[viewKey{f.TableOID, f.TableAttributeNumber}]; ok && !unmasked[vc.table] {
			cols[i].source = vc
			if t, ok := h.deps.Policy.Table(vc.table); ok {
				_, cols[i].Masked = t.Masked[vc.column]
			}
		}
	}
	return cols
}

type viewKey struct {
	oid    uint32
	attnum uint16
}

type viewColumn struct{ table, column string }

// A schema is what an instance learns from the database once, on first use: the masked
// views' columns. They name result columns (describe), and they give the guard each
// table's columns in order, which it needs to tell which table an unqualified, starred or
// whole-row column reference reads (the policy names only sensitive and writable ones).
type schema struct {
	mu    sync.Mutex
	views map[viewKey]viewColumn // by (view oid, attnum)
	guard *sqlguard.Guard
	types map[uint32]string // names of types pgx does not know, learnt as results show them
}

func (s *schema) typeName(oid uint32) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.types[oid]
	return name, ok
}

func (s *schema) addTypeNames(names map[uint32]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.types == nil {
		s.types = map[uint32]string{}
	}
	maps.Copy(s.types, names)
}

type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// load reads the schema on first use; a failure is retried on the next call.
func (s *schema) load(ctx context.Context, q querier, pol *policy.Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.guard != nil {
		return nil
	}
	cols, err := migrate.ViewColumns(ctx, q)
	if err != nil {
		return dbError(err)
	}
	views := make(map[viewKey]viewColumn, len(cols))
	for _, c := range cols {
		views[viewKey{c.ViewOID, uint16(c.AttNum)}] = viewColumn{c.Table, c.Column}
	}
	columns := migrate.TableColumns(cols)
	s.views, s.guard = views, sqlguard.New(pol.Catalog(columns))
	return nil
}

// viewColumns returns the masked views' columns; load must have succeeded.
func (s *schema) viewColumns() map[viewKey]viewColumn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.views
}

// checker returns the guard; load must have succeeded.
func (s *schema) checker() *sqlguard.Guard {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.guard
}

// write runs the developer's INSERT or UPDATE under their write grant; commit is its
// commit hook.
func (c *call) write(ctx context.Context, commit commitHook) (*result, error) {
	return c.inWriteTx(ctx, writeSteps{
		exec: func(ctx context.Context, tx pgx.Tx) (int64, error) {
			tag, err := db.Exec(ctx, tx.Conn(), c.v.Statement)
			if err != nil {
				return 0, dbError(err)
			}
			return tag.RowsAffected(), nil
		},
	}, commit)
}

// maxLoggedImages bounds the before-images one audit entry carries (Cloud Logging takes
// 256 KB per entry); the rest stay in airlock.write_images.
const maxLoggedImages = 100

// writeSteps are what a write does inside its transaction: exec changes the rows, as the
// developer; verify, when set, may then refuse what the rows' images show.
type writeSteps struct {
	exec   func(ctx context.Context, tx pgx.Tx) (int64, error)
	verify func(ctx context.Context, tx pgx.Tx, images []revert.Image) error
}

// inWriteTx runs a write: steps.exec changes the rows, as the developer, in a transaction
// of their own role (their write grant is what lets it through); then, as the function,
// steps.verify may refuse what the rows' images show. A dry run stops there and rolls
// back. Otherwise commit, the hook that audits the outcome with each changed row's key
// and values before the write (serve's recordCommit), runs before COMMIT, so a write the
// trail cannot record is rolled back.
func (c *call) inWriteTx(ctx context.Context, steps writeSteps, commit commitHook) (*result, error) {
	h, sess, req, target := c.h, c.sess, c.req, c.v.Target
	conn, release, err := h.primaryGate.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release() // the transaction has ended by then, and with it the person's statement slot
	ctx, cancel := context.WithDeadline(ctx, h.deadline(sess))
	defer cancel()
	tx, err := c.begin(ctx, conn.Conn(), "public")
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	n, err := steps.exec(ctx, tx)
	if err != nil {
		return nil, err
	}
	wr := &WriteResult{RowsAffected: n, DryRun: req.DryRun}
	t, ok := h.deps.Policy.Table(target)
	if !ok || t.Write == nil {
		return nil, fmt.Errorf("query: %s is not a writable table of the policy", target) // the guard let it through: a bug
	}
	if n > int64(t.Write.MaxRows) {
		return nil, httpapi.Errorf(http.StatusForbidden, "row_limit_exceeded", "this write changes %d rows of %s; one write may change at most %d. Nothing was changed", n, target, t.Write.MaxRows)
	}
	// The rest reads Airlock's own tables, which only the function's role may.
	if _, err := db.Exec(ctx, tx.Conn(), "SET LOCAL ROLE "+pgx.Identifier{h.deps.Role()}.Sanitize()); err != nil {
		return nil, dbError(err)
	}
	imgs, err := revert.Load(ctx, tx, c.rid)
	if err != nil {
		return nil, dbError(err)
	}
	if steps.verify != nil {
		if err := steps.verify(ctx, tx, imgs); err != nil {
			return nil, err
		}
	}
	unmasked := h.deps.Policy.Permissions(sqlguard.Write, sess.Roles()).Unmasked[target]
	for _, im := range imgs[:min(len(imgs), 5)] {
		wr.Preview = append(wr.Preview, revert.Shown(im.New, t, unmasked))
	}
	res := &result{write: wr}
	if req.DryRun {
		return res, nil
	}
	wr.Committed = true
	before, cut := revert.Summary(imgs, t, maxLoggedImages)
	res.details = map[string]any{"target": target, "before_images": before}
	if cut {
		res.details["before_images_truncated"] = true
	}
	if err := commit(ctx, tx, res); err != nil {
		return nil, err
	}
	// A write whose grant ended while it ran is not committed (the sweeper may not have
	// ended its session yet).
	if g := sess.Deadline(); !g.IsZero() && !time.Now().Before(g) {
		return nil, grantExpired(g, "the write was not committed")
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, dbError(err)
	}
	return res, nil
}

// revoked is the answer for a statement stopped because a grant it ran under was
// revoked meanwhile (grants.Store.Ended waits for the revocation to commit), or nil.
func (h *Handler) revoked(ctx context.Context, sess *grants.Session) error {
	if len(sess.Grants) == 0 {
		return nil
	}
	ended, err := h.grants.Ended(ctx, sess.Email, sess.IDs())
	if err != nil {
		return nil // the connection error stands
	}
	var said []string
	for _, g := range ended {
		if g.Status == grants.StatusRevoked && g.EndedAt != nil {
			said = append(said, fmt.Sprintf("grant %d (%s) was revoked by %s at %s", g.ID, g.Role, g.EndedBy, g.EndedAt.UTC().Format(time.RFC3339)))
		}
	}
	if len(said) == 0 {
		return nil
	}
	return httpapi.Errorf(http.StatusForbidden, "grant_revoked", "your %s, and the statement running under it was stopped; nothing was committed", strings.Join(said, "; your "))
}

// dbError turns a database error into an answer. Messages of the classes that can quote
// data values (data exceptions, integrity violations, raised exceptions, internal errors)
// are withheld; the rest name only objects and are returned as they are.
func dbError(err error) error {
	if n, ok := db.MessageTooLarge(err); ok {
		return httpapi.Errorf(http.StatusRequestEntityTooLarge, "row_too_large",
			"the database sent a row of %d bytes, more than the function accepts (limits.max_bytes); the connection was closed and nothing was committed", n)
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		e := &httpapi.Error{Status: http.StatusBadRequest, Code: "query_failed", Position: int(pgErr.Position)}
		switch {
		case pgErr.Code == "57014":
			e.Status, e.Code, e.Message = http.StatusGatewayTimeout, "timeout", "the statement ran past its time limit and was cancelled"
		case pgErr.Code == "55P03":
			e.Status, e.Code, e.Message = http.StatusGatewayTimeout, "lock_timeout", "the statement waited too long for a lock and was cancelled"
		case pgErr.Code == "AL001":
			e.Status, e.Code, e.Message = http.StatusForbidden, "row_limit_exceeded", pgErr.Message+". Nothing was changed"
		case pgErr.Code == "53400" && strings.Contains(pgErr.Message, "temp_file_limit"):
			// The message names the limit and nothing else.
			e.Code, e.Message = "temp_file_limit", "the statement needed more temporary disk than one statement may use and was stopped ("+pgErr.Message+"); filter or aggregate earlier, or sort fewer rows"
			e.Position = 0
		case pgErr.Code == "53200":
			e.Status, e.Code, e.Message = http.StatusServiceUnavailable, "out_of_memory", "the database ran out of memory for this statement and stopped it (SQLSTATE 53200); nothing was changed"
			e.Position = 0
		case strings.HasPrefix(pgErr.Code, "54"):
			e.Code, e.Message = "limit_exceeded", fmt.Sprintf("the statement went past one of PostgreSQL's size limits (SQLSTATE %s) and was stopped; its message is withheld", pgErr.Code)
			e.Position = 0
		case pgErr.Code == "42501" || pgErr.Code == "25006":
			e.Status, e.Code, e.Message = http.StatusForbidden, "database_refused", "the database refused: "+pgErr.Message
		case strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "08"):
			e.Status, e.Code, e.Message = http.StatusServiceUnavailable, "connection_lost", "the database connection ended: "+pgErr.Message
		case withheld(pgErr.Code):
			e.Message = fmt.Sprintf("the database reported SQLSTATE %s; its message is withheld because it may quote data values", pgErr.Code)
			e.Position = 0
		default:
			e.Message = fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		}
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return httpapi.Errorf(http.StatusGatewayTimeout, "timeout", "the request ran out of time")
	}
	if pgconn.Timeout(err) {
		return httpapi.Errorf(http.StatusGatewayTimeout, "timeout", "the database did not answer in time")
	}
	// Not the database's answer: the cause goes to the function's log (httpapi.Serve),
	// not to the caller.
	return &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "connection_lost", Message: "the database connection failed; nothing was committed", Err: err}
}

func withheld(code string) bool {
	for _, class := range []string{"22", "23", "P0", "XX", "40", "53", "54", "58", "F0", "HV", "2F", "38", "39"} {
		if strings.HasPrefix(code, class) {
			return true
		}
	}
	return false
}

package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
	"airlock.dev/airlock/shared/revert"
	"airlock.dev/airlock/shared/sqlguard"
)

// fetchBatch is how many rows each FETCH asks the server for.
const fetchBatch = 200

// A result is what a statement produced, bounded by the caps.
type result struct {
	requestID string
	columns   []Column
	rows      [][]json.RawMessage
	truncated bool
	bytes     int64
	duration  time.Duration
	write     *WriteResult
}

func (r *result) rowCount() int64 {
	if r.write != nil {
		return r.write.RowsAffected
	}
	return int64(len(r.rows))
}

// A Column describes one result column.
type Column struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Masked bool   `json:"masked"`
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

// statementTimeout is the policy's timeout, capped by the time left on the grants the
// session holds: no statement outlives the access it runs under.
func (h *Handler) statementTimeout(sess *grants.Session) (time.Duration, error) {
	t := h.deps.Policy.Limits.StatementTimeout
	if d := sess.Deadline(); !d.IsZero() {
		left := d.Sub(sess.Now)
		if left < time.Second {
			return 0, httpapi.Errorf(http.StatusForbidden, "grant_expired", "your grant ends at %s, too soon to start a statement", d.UTC().Format(time.RFC3339))
		}
		t = min(t, left)
	}
	return t, nil
}

// queueSetup queues the developer's transaction set-up: their role, a search path that
// reaches only what their mode allows, timeouts, and an application_name naming the
// request and grants (the sweeper ends sessions by it).
func (h *Handler) queueSetup(b *pgx.Batch, rid string, sess *grants.Session, searchPath string) error {
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
	b.Queue("SET LOCAL ROLE " + pgx.Identifier{sess.DBRole}.Sanitize())
	b.Queue(`SELECT set_config('search_path', $1, true), set_config('statement_timeout', $2, true),
	                set_config('lock_timeout', $3, true), set_config('idle_in_transaction_session_timeout', $4, true),
	                set_config('application_name', $5, true), set_config('airlock.request_id', $6, true)`,
		searchPath, ms(timeout), ms(h.deps.Policy.Limits.LockTimeout), ms(timeout+5*time.Second), truncate(appName, 63), rid)
	return nil
}

// begin opens a read-write transaction for a developer's write.
func (h *Handler) begin(ctx context.Context, conn *pgx.Conn, rid string, sess *grants.Session, searchPath string) (pgx.Tx, error) {
	b := &pgx.Batch{}
	if err := h.queueSetup(b, rid, sess, searchPath); err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
	if err != nil {
		return nil, dbError(err)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
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
// cursor, so the server computes no more rows than the caps let through. Set-up, the
// cursor and its first FETCH go to the server in one round trip.
func (h *Handler) read(ctx context.Context, rid string, sess *grants.Session, req *Request, dec *sqlguard.Decision) (*result, error) {
	pool := h.deps.Pool
	if h.deps.Replica != nil {
		pool = h.deps.Replica
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, dbError(err)
	}
	defer conn.Release()
	res := &result{}
	unmasked := h.deps.Policy.Permissions(sqlguard.Read, sess.Roles()).Unmasked
	collect := func(rows pgx.Rows) error {
		// In a batch, a statement after a failed one gets rows carrying only that error.
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		return h.collect(conn.Conn(), rows, res, req.MaxRows, unmasked)
	}

	b := &pgx.Batch{}
	b.Queue("BEGIN TRANSACTION READ ONLY")
	if err := h.queueSetup(b, rid, sess, "masked"); err != nil {
		return nil, err
	}
	want := min(fetchBatch, req.MaxRows+1)
	if dec.Kind == "explain" {
		// EXPLAIN cannot be a cursor; its output is a few lines.
		b.Queue(dec.Statement).Query(collect)
	} else {
		b.Queue("DECLARE airlock_c NO SCROLL CURSOR FOR " + dec.Statement)
		b.Queue("FETCH FORWARD " + strconv.Itoa(want) + " FROM airlock_c").Query(collect)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if e, ok := errors.AsType[*httpapi.Error](err); ok {
			return nil, e
		}
		return nil, dbError(err)
	}
	// A full batch means there may be more: fetch until the caps or the rows run out.
	for fetched := len(res.rows); dec.Kind != "explain" && !res.truncated && fetched == want; {
		want = min(fetchBatch, req.MaxRows+1-len(res.rows))
		rows, err := conn.Query(ctx, "FETCH FORWARD "+strconv.Itoa(want)+" FROM airlock_c")
		if err != nil {
			return nil, dbError(err)
		}
		before := len(res.rows)
		if err := collect(rows); err != nil {
			return nil, err
		}
		fetched = len(res.rows) - before
	}
	return res, nil
}

// collect appends rows to res until the row or byte cap is reached.
func (h *Handler) collect(conn *pgx.Conn, rows pgx.Rows, res *result, maxRows int, unmasked map[string]bool) error {
	defer rows.Close()
	if res.columns == nil {
		res.columns = h.describe(conn, rows.FieldDescriptions(), unmasked)
	}
	maxBytes := h.deps.Policy.Limits.MaxBytes
	for rows.Next() {
		if len(res.rows) >= maxRows {
			res.truncated = true
			break
		}
		vals, err := rows.Values()
		if err != nil {
			return dbError(err)
		}
		row := make([]json.RawMessage, len(vals))
		size := int64(0)
		for i, v := range vals {
			b, err := json.Marshal(v)
			if err != nil {
				b, _ = json.Marshal(fmt.Sprint(v))
			}
			row[i] = b
			size += int64(len(b)) + 1
		}
		if res.bytes+size > maxBytes {
			res.truncated = true
			break
		}
		res.bytes += size
		res.rows = append(res.rows, row)
	}
	if err := rows.Err(); err != nil {
		return dbError(err)
	}
	return nil
}

// describe names the result's columns and marks those that come straight from a masked
// view column the developer may not see unmasked.
func (h *Handler) describe(conn *pgx.Conn, fields []pgconn.FieldDescription, unmasked map[string]bool) []Column {
	views := h.schema.viewColumns()
	cols := make([]Column, len(fields))
	for i, f := range fields {
		typ := strconv.FormatUint(uint64(f.DataTypeOID), 10)
		if t, ok := conn.TypeMap().TypeForOID(f.DataTypeOID); ok {
			typ = t.Name
		}
		cols[i] = Column{Name: f.Name, Type: typ}
		if vc, ok := views[viewKey{f.TableOID, f.TableAttributeNumber}]; ok && !unmasked[vc.table] {
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

// write runs the developer's INSERT or UPDATE under their write grant.
func (h *Handler) write(ctx context.Context, rid string, sess *grants.Session, req *Request, dec *sqlguard.Decision) (*result, error) {
	return h.inWriteTx(ctx, rid, sess, req, dec, func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, dec.Statement)
		if err != nil {
			return 0, dbError(err)
		}
		return tag.RowsAffected(), nil
	}, nil)
}

// maxLoggedImages bounds the before-images one audit entry carries (Cloud Logging takes
// 256 KB per entry); the rest stay in airlock.write_images.
const maxLoggedImages = 100

// inWriteTx runs a write: exec changes the rows, as the developer, in a transaction of
// their own role (their write grant is what lets it through); then, as the function,
// verify (when not nil) may refuse what the rows' images show. A dry run stops there and
// rolls back. Otherwise the outcome, with each changed row's key and values before the
// write (masked where sensitive), is audited and the alerts it calls for are raised
// before COMMIT, so a write the trail cannot record is rolled back.
func (h *Handler) inWriteTx(ctx context.Context, rid string, sess *grants.Session, req *Request, dec *sqlguard.Decision,
	exec func(pgx.Tx) (int64, error), verify func(pgx.Tx, []revert.Image) error) (*result, error) {
	conn, err := h.deps.Pool.Acquire(ctx)
	if err != nil {
		return nil, dbError(err)
	}
	defer conn.Release()
	tx, err := h.begin(ctx, conn.Conn(), rid, sess, "public")
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	n, err := exec(tx)
	if err != nil {
		return nil, err
	}
	wr := &WriteResult{RowsAffected: n, DryRun: req.DryRun}
	t, ok := h.deps.Policy.Table(dec.Target)
	if !ok || t.Write == nil {
		return nil, fmt.Errorf("query: %s is not a writable table of the policy", dec.Target) // the guard let it through: a bug
	}
	if n > int64(t.Write.MaxRows) {
		return nil, httpapi.Errorf(http.StatusForbidden, "row_limit_exceeded", "this write changes %d rows of %s; one write may change at most %d. Nothing was changed", n, dec.Target, t.Write.MaxRows)
	}
	// The rest reads Airlock's own tables, which only the function's role may.
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{h.deps.Role()}.Sanitize()); err != nil {
		return nil, dbError(err)
	}
	imgs, err := revert.Load(ctx, tx, rid)
	if err != nil {
		return nil, dbError(err)
	}
	if verify != nil {
		if err := verify(tx, imgs); err != nil {
			return nil, err
		}
	}
	unmasked := h.deps.Policy.Permissions(sqlguard.Write, sess.Roles()).Unmasked[dec.Target]
	for _, im := range imgs[:min(len(imgs), 5)] {
		wr.Preview = append(wr.Preview, revert.Shown(im.New, t, unmasked))
	}
	res := &result{write: wr}
	if req.DryRun {
		return res, nil
	}
	wr.Committed = true
	outcome := h.entry(audit.EventQueryResult, rid, sess, req, dec)
	outcome.Decision, outcome.Rows = audit.DecisionAllowed, wr.RowsAffected
	before, cut := revert.Summary(imgs, t, maxLoggedImages)
	outcome.Details["committed"], outcome.Details["target"], outcome.Details["before_images"] = true, dec.Target, before
	if cut {
		outcome.Details["before_images_truncated"] = true
	}
	if err := h.deps.Audit.Record(ctx, outcome); err != nil {
		return nil, h.auditUnavailable(rid, err)
	}
	queued, err := h.alertOnWrite(ctx, tx, outcome, sess, dec.Target, wr.RowsAffected)
	switch {
	case errors.Is(err, audit.ErrUnavailable):
		return nil, h.auditUnavailable(rid, err)
	case err != nil:
		return nil, dbError(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, dbError(err)
	}
	if queued > 0 {
		h.deliver(ctx)
	}
	return res, nil
}

// dbError turns a database error into an answer. Messages of the classes that can quote
// data values (data exceptions, integrity violations, raised exceptions, internal errors)
// are withheld; the rest name only objects and are returned as they are.
func dbError(err error) error {
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
	// Not the database's answer: keep the cause in the function's log for operators.
	log.Printf(`{"severity":"ERROR","message":%q}`, "query: database connection: "+err.Error())
	return httpapi.Errorf(http.StatusServiceUnavailable, "connection_lost", "the database connection failed; nothing was committed")
}

func withheld(code string) bool {
	for _, class := range []string{"22", "23", "P0", "XX", "40", "53", "54", "58", "F0", "HV", "2F", "38", "39"} {
		if strings.HasPrefix(code, class) {
			return true
		}
	}
	return false
}

// Package db opens Airlock's connection pools: to Cloud SQL through the Cloud SQL Go
// connector with IAM database authentication over private IP in production, or to a DSN
// locally, with pgx v5 either way.
//
// Every pool runs statements with the extended protocol (one statement per Parse, so a
// request can never smuggle a second statement): its queries and batches use
// [pgx.QueryExecModeExec], and statements that return no rows go through [Exec], because
// pgx's own Exec switches to the simple protocol, which runs any number of statements,
// whenever it is given no arguments. Connections that ran developers' SQL are reset with
// DISCARD ALL before reuse, so no session state crosses requests, and a pool can bound
// each message the server sends (Config.MaxMessageBytes), so no single row can make the
// function buffer more than that.
package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config says where a pool connects. Set URL for a local DSN, or Instance, Database and
// IAMUser for Cloud SQL.
type Config struct {
	URL      string // postgres:// URL or key=value DSN
	Instance string // Cloud SQL instance connection name, project:region:instance
	Database string
	IAMUser  string // IAM database user: the service account e-mail without .gserviceaccount.com
	MaxConns int32  // defaults to 8

	// ResetOnRelease runs DISCARD ALL when a connection returns to the pool. Pools that
	// run developers' SQL must set it.
	ResetOnRelease bool

	// MaxMessageBytes bounds the body of every message the server sends (a data row, an
	// error, a row description). A larger one is refused from its 5-byte header, before
	// its body is read: the call fails with an error for which [MessageTooLarge] reports
	// true, and the connection is closed (pgconn cancels the running statement and ends
	// the session), so the pool discards it. Zero means pgx's default, about 1 GiB.
	MaxMessageBytes int
}

// cancelGrace is how long a pool that runs developers' SQL waits for the server to
// answer a cancelled statement before it closes the connection.
const cancelGrace = 2 * time.Second

// MessageTooLarge reports whether err is a message refused by Config.MaxMessageBytes, and
// if so the size the server announced.
func MessageTooLarge(err error) (size int, ok bool) {
	e, ok := errors.AsType[*pgproto3.ExceededMaxBodyLenErr](err)
	if !ok {
		return 0, false
	}
	return e.ActualBodyLen, true
}

// Configured reports whether c names a database at all.
func (c Config) Configured() bool { return c.URL != "" || c.Instance != "" }

// A Pool is a pgx pool, plus the connector that dials it when there is one.
type Pool struct {
	*pgxpool.Pool
	dialer *cloudsqlconn.Dialer
}

// Close closes the pool and its connector.
func (p *Pool) Close() {
	p.Pool.Close()
	if p.dialer != nil {
		p.dialer.Close()
	}
}

// Open creates a pool. It does not connect: connections are made on first use, so a
// function instance that never touches the database never dials it.
func Open(ctx context.Context, c Config) (*Pool, error) {
	var (
		cfg    *pgxpool.Config
		dialer *cloudsqlconn.Dialer
		err    error
	)
	switch {
	case c.URL != "":
		cfg, err = pgxpool.ParseConfig(c.URL)
		if err != nil {
			return nil, fmt.Errorf("db: parsing DSN: %w", err)
		}
	case c.Instance != "":
		if c.Database == "" || c.IAMUser == "" {
			return nil, errors.New("db: Cloud SQL needs DB_NAME and DB_IAM_USER")
		}
		// Lazy refresh: serverless CPU is throttled between requests, so background
		// certificate refreshes would be late; refresh on demand instead.
		dialer, err = cloudsqlconn.NewDialer(ctx,
			cloudsqlconn.WithIAMAuthN(),
			cloudsqlconn.WithLazyRefresh(),
			cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPrivateIP()),
		)
		if err != nil {
			return nil, fmt.Errorf("db: creating Cloud SQL dialer: %w", err)
		}
		cfg, err = pgxpool.ParseConfig(fmt.Sprintf("user=%s dbname=%s sslmode=disable", quoteDSN(c.IAMUser), quoteDSN(c.Database)))
		if err != nil {
			dialer.Close()
			return nil, fmt.Errorf("db: building config: %w", err)
		}
		instance := c.Instance
		cfg.ConnConfig.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.Dial(ctx, instance)
		}
	default:
		return nil, errors.New("db: no database configured (set DATABASE_URL, or CLOUDSQL_INSTANCE with DB_NAME and DB_IAM_USER)")
	}

	cfg.MaxConns = c.MaxConns
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 8
	}
	// IAM logins are rate-limited per instance: keep connections for a while.
	cfg.MaxConnIdleTime = 10 * time.Minute
	cfg.ConnConfig.RuntimeParams["application_name"] = "airlock"
	cfg.ConnConfig.MaxProtocolMessageBodyLen = c.MaxMessageBytes
	// Unnamed statements only: nothing is cached on the server that DISCARD ALL could
	// invalidate, and no prepared statement outlives its request.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.PrepareConn = func(_ context.Context, conn *pgx.Conn) (bool, error) {
		// pg_query lexes as standard_conforming_strings=on in UTF-8; a connection that
		// differs would let the server read a statement the guard never saw.
		pc := conn.PgConn()
		return pc.ParameterStatus("standard_conforming_strings") == "on" &&
			pc.ParameterStatus("client_encoding") == "UTF8", nil
	}
	if c.ResetOnRelease {
		// A request that ends (its deadline, its client gone) cancels its statement on
		// the server rather than only dropping the connection: a backend computing a
		// result does not notice its client left until it sends, and until then it keeps
		// its locks (the person's statement slots among them) and its memory. The
		// connection is closed anyway if the server has not answered the cancel in time.
		cfg.ConnConfig.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: cancelGrace}
		}
		cfg.AfterRelease = func(conn *pgx.Conn) bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := Exec(ctx, conn, "DISCARD ALL")
			return err == nil
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		if dialer != nil {
			dialer.Close()
		}
		return nil, fmt.Errorf("db: creating pool: %w", err)
	}
	return &Pool{Pool: pool, dialer: dialer}, nil
}

func quoteDSN(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// InRole runs fn in a transaction acting as role (SET LOCAL ROLE), and commits when fn
// returns nil. Function login roles hold no privileges of their own, so every statement
// Airlock runs goes through here or sets its role the same way.
func InRole(ctx context.Context, pool *Pool, role string, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := Exec(ctx, tx.Conn(), "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			return fmt.Errorf("db: assuming role %s: %w", role, err)
		}
		return fn(tx)
	})
}

// Exec runs one statement over the extended protocol, whatever its arguments, and
// discards any rows it returns. The server parses the text as a single statement and
// refuses one holding several ("cannot insert multiple commands into a prepared
// statement", SQLSTATE 42601). Use it, never pgx's Exec, for any statement whose text is
// not a constant: pgx's Exec sends a statement without arguments over the simple
// protocol, which runs every statement in the string.
func Exec(ctx context.Context, conn *pgx.Conn, sql string, args ...any) (pgconn.CommandTag, error) {
	var eqb pgx.ExtendedQueryBuilder
	if err := eqb.Build(conn.TypeMap(), nil, args); err != nil {
		return pgconn.CommandTag{}, fmt.Errorf("db: encoding arguments: %w", err)
	}
	return conn.PgConn().ExecParams(ctx, sql, eqb.ParamValues, nil, eqb.ParamFormats, eqb.ResultFormats).Close()
}

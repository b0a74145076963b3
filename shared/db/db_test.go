package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
)

const multipleCommands = "cannot insert multiple commands into a prepared statement"

func sqlstate(err error) string {
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		return e.Code
	}
	return ""
}

func open(t *testing.T, c db.Config) *db.Pool {
	t.Helper()
	p, err := db.Open(context.Background(), c)
	if err != nil {
		t.Fatalf("db.Open: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestOneStatementPerCall: a pool's queries, batches and db.Exec send each statement over
// the extended protocol, so the server refuses a string of several; pgx's own Exec, which
// the package tells callers not to use, would run them all.
func TestOneStatementPerCall(t *testing.T) {
	ctx := context.Background()
	admin := dbtest.AdminURL(t)
	pool := open(t, db.Config{URL: admin, ResetOnRelease: true})
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE t (v int); INSERT INTO t VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	value := func() int {
		var v int
		if err := conn.QueryRow(ctx, `SELECT v FROM t`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	const two = `UPDATE t SET v = 1; UPDATE t SET v = 2`
	runs := []struct {
		desc string
		run  func() error
	}{
		{"db.Exec without arguments", func() error { _, err := db.Exec(ctx, conn.Conn(), two); return err }},
		{"db.Exec with arguments", func() error {
			_, err := db.Exec(ctx, conn.Conn(), `UPDATE t SET v = $1; UPDATE t SET v = 2`, 1)
			return err
		}},
		{"db.Exec after COMMIT", func() error { _, err := db.Exec(ctx, conn.Conn(), `COMMIT; UPDATE t SET v = 3`); return err }},
		{"Query", func() error {
			rows, err := conn.Query(ctx, two)
			if err == nil {
				rows.Close()
				err = rows.Err()
			}
			return err
		}},
		{"a batch", func() error {
			b := &pgx.Batch{}
			b.Queue(`SELECT 1`)
			b.Queue(two)
			return conn.SendBatch(ctx, b).Close()
		}},
	}
	for _, r := range runs {
		err := r.run()
		if sqlstate(err) != "42601" || !strings.Contains(err.Error(), multipleCommands) {
			t.Errorf("when running %q through %s, want SQLSTATE 42601 %q, got = %v", two, r.desc, multipleCommands, err)
		}
		if v := value(); v != 0 {
			t.Errorf("after %s refused %q, want v = 0, got = %d", r.desc, two, v)
		}
	}
	if tag, err := db.Exec(ctx, conn.Conn(), `UPDATE t SET v = $1`, 5); err != nil || tag.RowsAffected() != 1 || value() != 5 {
		t.Errorf("when db.Exec runs one UPDATE, want 1 row set to 5, got = %v, %v, v = %d", tag, err, value())
	}

	// Why db.Exec exists: pgx's Exec without arguments uses the simple protocol.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, two); err != nil {
		t.Fatalf("pgx's Exec of %q: %v", two, err)
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT v FROM t`).Scan(&v); err != nil || v != 2 {
		t.Errorf("when pgx's Exec runs %q with no arguments, want both run (v = 2, the premise of db.Exec), got = %d %v", two, v, err)
	}
}

// TestMaxMessageBytes: a message larger than the bound is refused from its header, the
// call says so, the connection is closed and never handed out again, and the server
// session that sent it ends.
func TestMaxMessageBytes(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t)
	pool := open(t, db.Config{URL: d.URL(migrate.GroupQuery), MaxMessageBytes: 64 << 10, MaxConns: 2})
	admin, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid uint32 = conn.Conn().PgConn().PID()
	var small string
	if err := conn.QueryRow(ctx, `SELECT repeat('x', 60000)`).Scan(&small); err != nil || len(small) != 60000 {
		t.Fatalf("when a row is under the bound, want it read, got = %d bytes, %v", len(small), err)
	}
	rows, err := conn.Query(ctx, `SELECT repeat('x', 1 << 20), g FROM generate_series(1, 3) g`)
	if err == nil {
		for rows.Next() {
		}
		rows.Close()
		err = rows.Err()
	}
	size, ok := db.MessageTooLarge(err)
	if !ok || size < 1<<20 {
		t.Fatalf("when a row of 1 MiB exceeds MaxMessageBytes 64 KiB, want MessageTooLarge with its size, got = %d %v (%v)", size, ok, err)
	}
	if !conn.Conn().IsClosed() {
		t.Errorf("after an oversized message, want the connection closed, got open")
	}
	conn.Release()

	// The server session ends: pgconn cancels the statement and terminates it. Wait for it
	// to leave pg_stat_activity (an event; the deadline is far beyond honest work).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after an oversized message, want backend %d to end, it is still there", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 3 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Conn().PgConn().PID() == pid {
			t.Errorf("after an oversized message, want its connection gone from the pool, got it back")
		}
		if err := c.Ping(ctx); err != nil {
			t.Errorf("after an oversized message, want the pool's other connections usable, got = %v", err)
		}
		c.Release()
	}
	if _, ok := db.MessageTooLarge(errors.New("other")); ok {
		t.Errorf("MessageTooLarge of an unrelated error: want false, got true")
	}
}

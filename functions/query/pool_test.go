package query_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
)

// TestPooledConnectionsCarryNoState: after reads, writes, failures and timeouts, every
// idle connection of the function's pool is back to the login role with default settings.
// The timeouts are certain, whatever the machine's speed: those reads wait on a lock the
// test holds until every answer is in, and the lock timeout ends them.
func TestPooledConnectionsCarryNoState(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant(dev1, "write_accounts", time.Hour, true)
	h.grant(dev1, "unmasked_users", time.Hour, true)
	ctx := context.Background()
	lock, err := h.owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE public.deposits IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	// Concurrent requests so that several pooled connections are used.
	reqs := []query.Request{
		{SQL: `SELECT email FROM users LIMIT 3`},
		{SQL: `SELECT id FROM trades`, MaxRows: 5},
		{SQL: `SELECT 1/0`},
		{SQL: `SELECT count(*) FROM deposits`}, // waits on the test's lock
		{SQL: `UPDATE accounts SET updated_at = now() WHERE id = 9`, Mode: "write", DryRun: true, Reason: "ticket OPS-9 dry run"},
		{SQL: `UPDATE accounts SET updated_at = now() WHERE id = 9`, Mode: "write", Reason: "ticket OPS-9 real run"},
		{SQL: `UPDATE accounts SET updated_at = now() WHERE id <= 30`, Mode: "write", Reason: "ticket OPS-9 too many"},
	}
	done := make(chan response, len(reqs)*2)
	for range 2 {
		for _, req := range reqs {
			go func() { done <- h.post(dev1, req) }()
		}
	}
	statuses := map[int]int{}
	for range len(reqs) * 2 {
		statuses[(<-done).status]++
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if statuses[http.StatusOK] == 0 || statuses[http.StatusGatewayTimeout] == 0 {
		t.Errorf("want a mix of successes and timeouts, got statuses = %v", statuses)
	}

	var defaultPath string
	if err := h.admin.QueryRow(ctx, `SELECT boot_val FROM pg_settings WHERE name = 'search_path'`).Scan(&defaultPath); err != nil {
		t.Fatal(err)
	}
	login := h.d.Login("query")
	conns := h.deps.Pool.AcquireAllIdle(ctx)
	if len(conns) == 0 {
		t.Fatalf("want idle pooled connections after the requests, got none")
	}
	t.Logf("checking %d idle pooled connections", len(conns))
	for i, c := range conns {
		var user, sessUser, path, stmtTimeout, idleTimeout, app, reqID string
		var temp bool
		inTx := c.Conn().PgConn().TxStatus() != 'I'
		err := c.QueryRow(ctx, `
			SELECT current_user::text, session_user::text, current_setting('search_path'), current_setting('statement_timeout'),
			       current_setting('idle_in_transaction_session_timeout'), current_setting('application_name'),
			       coalesce(current_setting('airlock.request_id', true), ''),
			       pg_my_temp_schema() <> 0 AND EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = pg_my_temp_schema())`).
			Scan(&user, &sessUser, &path, &stmtTimeout, &idleTimeout, &app, &reqID, &temp)
		c.Release()
		if err != nil {
			t.Errorf("connection %d: %v", i, err)
			continue
		}
		want := []struct{ what, got, want string }{
			{"current_user", user, login},
			{"session_user", sessUser, login},
			{"search_path", path, defaultPath},
			{"statement_timeout", stmtTimeout, "0"},
			{"idle_in_transaction_session_timeout", idleTimeout, "0"},
			{"application_name", app, "airlock"},
			{"airlock.request_id", reqID, ""},
		}
		for _, w := range want {
			if w.got != w.want {
				t.Errorf("on pooled connection %d after requests, want %s = %q, got = %q", i, w.what, w.want, w.got)
			}
		}
		if inTx || temp {
			t.Errorf("on pooled connection %d, want no open transaction and no temp tables, got inTx=%v temp=%v", i, inTx, temp)
		}
	}
}

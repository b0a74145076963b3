package query_test

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/functions/query"
)

// allocated is how many bytes the process has allocated on the heap so far. What a
// request allocates is an upper bound on what it can hold at any moment, whatever the
// garbage collector does meanwhile and however fast the machine is.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

const mib = 1 << 20

// waitForBackend waits until a backend running a developer's statement waits for a lock,
// and returns its pid. done is where the request's answer will come: an answer before
// the wait is a failure of the test's premise, reported with the answer.
func (h *harness) waitForBackend(ctx context.Context, done chan response) uint32 {
	h.t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // an event; the deadline only stops a broken test
	for {
		var pid uint32
		// As the function's login: no one else may see its backends' wait events.
		err := h.login.QueryRow(ctx, `
			SELECT pid FROM pg_stat_activity
			 WHERE application_name LIKE 'airlock r=%' AND wait_event_type = 'Lock'`).Scan(&pid)
		if err == nil {
			return pid
		}
		if err != pgx.ErrNoRows {
			h.t.Fatalf("looking for the developer's backend: %v", err)
		}
		select {
		case r := <-done:
			h.t.Fatalf("want the statement waiting for the test's lock, got an answer first: %s", r)
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no developer backend waited for the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone waits until backend pid has ended.
func (h *harness) waitGone(ctx context.Context, pid uint32) {
	h.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n int
		if err := h.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
			h.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("backend %d is still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHugeStoredValueIsNeverBuffered: a 128 MiB value stored in a column any developer
// may read (the guard has nothing to refuse) is refused from the header of the row that
// carries it: 413 row_too_large naming the row and the cap, audited, the function
// allocating a small fraction of the value, the connection closed and out of the pool,
// and the server's statement ended.
func TestHugeStoredValueIsNeverBuffered(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: policyVariant(t, "lock_timeout: 3s", "lock_timeout: 5m", "statement_timeout: 30s", "statement_timeout: 5m")})
	ctx := context.Background()
	const valueSize = 128 * mib
	if _, err := h.owner.Exec(ctx, `UPDATE public.trades SET pair = repeat('x', $1) WHERE id = 1`, valueSize); err != nil {
		t.Fatal(err)
	}

	// The test holds a lock the read waits for, to learn its backend before the row comes.
	tx, err := h.owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE public.trades IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	before := allocated()
	done := make(chan response, 1)
	go func() { done <- h.query(dev1, `SELECT id, pair FROM trades WHERE id = 1`) }()
	pid := h.waitForBackend(ctx, done)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	grew := allocated() - before
	t.Logf("the request allocated %.1f MiB for a %d MiB value", float64(grew)/mib, valueSize/mib)
	if r.status != http.StatusRequestEntityTooLarge || r.err().Code != "row_too_large" {
		t.Fatalf("when a row holds a 128 MiB value, want = 413 row_too_large, got = %s", r)
	}
	h.waitGone(ctx, pid) // the statement was cancelled and the session ended
	if msg := r.err().Message; !strings.Contains(msg, "row 1 ") || !strings.Contains(msg, "4194304") || !strings.Contains(msg, "max_bytes") {
		t.Errorf("when a row is too large, want the message to name row 1 and max_bytes 4194304, got = %q", msg)
	}
	if grew > 12*mib {
		t.Errorf("when a row holds a 128 MiB value, want the function to allocate under 12 MiB (one message buffer of at most 8 MiB and rows of at most 4 MiB), got = %.1f MiB", float64(grew)/mib)
	}

	// The connection that met the row is not in the pool; the others work.
	for _, c := range h.deps.Pool.AcquireAllIdle(ctx) {
		if c.Conn().PgConn().PID() == pid {
			t.Errorf("after an oversized row, want its connection (backend %d) out of the pool, got it idle in the pool", pid)
		}
		if err := c.Ping(ctx); err != nil {
			t.Errorf("after an oversized row, want the pool's idle connections usable, got = %v", err)
		}
		c.Release()
	}
	if r := h.query(dev1, `SELECT id FROM trades WHERE id = 2`); r.status != http.StatusOK {
		t.Errorf("after an oversized row, want the next read answered, got = %s", r)
	}

	var rid struct {
		RequestID string `json:"request_id"`
	}
	json.Unmarshal(r.body, &rid)
	var audited bool
	for _, e := range h.entriesFor("query.result") {
		if e["request_id"] == rid.RequestID && e["error_class"] == "row_too_large" && e["decision"] == "error" {
			audited = true
		}
	}
	if !audited {
		t.Errorf("when a read is stopped by an oversized row, want a query.result entry with error_class row_too_large, got none for %s", rid.RequestID)
	}
}

// TestRowCapCountsWhatTheAnswerWouldHold: a row whose message is under the pool's bound
// but whose answer would not fit max_bytes (control characters JSON spells in six bytes
// each; many medium values) is refused before anything is built from it, in every
// format; a row of many values over the bound is refused from its header.
func TestRowCapCountsWhatTheAnswerWouldHold(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	// 600 KB of U+0001 in a column developers read unmasked: 1.8 MB for three copies
	// as sent, 10.8 MB as JSON (3.6 MB for one).
	if _, err := h.owner.Exec(ctx, `UPDATE public.users SET country = repeat(chr(1), 600000) WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := h.owner.Exec(ctx, `UPDATE public.trades SET pair = repeat('y', 200000) WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	wide := "SELECT " + strings.TrimSuffix(strings.Repeat("pair, ", 30), ", ") + " FROM trades WHERE id = 2" // 6 MB as sent

	cases := []struct {
		desc, sql, format string
	}{
		{"control characters as JSON", `SELECT country, country, country FROM users WHERE id = 1`, "json"},
		{"control characters as a table", `SELECT country, country, country FROM users WHERE id = 1`, "table"},
		{"control characters as CSV", `SELECT country, country, country FROM users WHERE id = 1`, "csv"},
		{"thirty medium values", wide, "json"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			before := allocated()
			r := h.post(dev1, query.Request{SQL: tc.sql, Format: tc.format})
			grew := allocated() - before
			if r.status != http.StatusRequestEntityTooLarge || r.err().Code != "row_too_large" || !strings.Contains(r.err().Message, "row 1 ") {
				t.Fatalf("when one row's %s answer exceeds max_bytes, want = 413 row_too_large naming row 1, got = %s", tc.format, r)
			}
			t.Logf("%s: allocated %.1f MiB", tc.desc, float64(grew)/mib)
			if grew > 12*mib {
				t.Errorf("when one row's %s answer exceeds max_bytes, want the function to allocate under 12 MiB, got = %.1f MiB", tc.format, float64(grew)/mib)
			}
		})
	}

	// A row that fits is still answered whole, and the first row that does not fit
	// beside the others truncates the answer (not an error).
	r := h.post(dev1, query.Request{SQL: `SELECT country FROM users WHERE id = 1`})
	if res := r.read(t); r.status != http.StatusOK || res.RowCount != 1 || res.Rows[0][0] != strings.Repeat("\x01", 600000) {
		t.Errorf("when one row's answer fits max_bytes, want it whole, got = %s", r)
	}
	r = h.post(dev1, query.Request{SQL: `SELECT country FROM users WHERE id = 1 UNION ALL SELECT country FROM users WHERE id = 1`})
	if res := r.read(t); r.status != http.StatusOK || res.RowCount != 1 || !res.Truncated {
		t.Errorf("when the second row would take the answer past max_bytes, want 1 row, truncated, got = %s", r)
	}
}

// TestWriteOfHugeRowIsRefusedUnread: a write's before- and after-images are read back to
// preview and audit it; a row too large for the function's bound is refused the same
// way, and nothing is committed.
func TestWriteOfHugeRowIsRefusedUnread(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	h.grant(dev1, "write_withdrawals", time.Hour, true)
	if _, err := h.owner.Exec(ctx, `UPDATE public.withdrawals SET status = repeat('s', 16 << 20) WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		before := h.checksum("withdrawals")
		start := allocated()
		r := h.post(dev1, query.Request{SQL: `UPDATE withdrawals SET currency = currency WHERE id = 1`, Mode: "write", DryRun: dry, Reason: "ticket OPS-3: huge row"})
		grew := allocated() - start
		if r.status != http.StatusRequestEntityTooLarge || r.err().Code != "row_too_large" || !strings.Contains(r.err().Message, "nothing was committed") {
			t.Errorf("when a write (dry run %v) changes a row of 16 MiB, want = 413 row_too_large, nothing committed, got = %s", dry, r)
		}
		if grew > 12*mib {
			t.Errorf("when a write (dry run %v) changes a row of 16 MiB, want the function to allocate under 12 MiB, got = %.1f MiB", dry, float64(grew)/mib)
		}
		if h.checksum("withdrawals") != before {
			t.Errorf("when a write (dry run %v) of a too large row is refused, want withdrawals unchanged", dry)
		}
	}
}

// TestTruncationDiscardsWithinABound: a FETCH asks for up to 200 rows; when the answer is
// full after a few large ones, what the server still sends is discarded only up to
// max_bytes, then the connection is closed (the server stops, the pool drops it) rather
// than reading the 200 MB the other rows hold.
func TestTruncationDiscardsWithinABound(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: policyVariant(t, "lock_timeout: 3s", "lock_timeout: 5m", "statement_timeout: 30s", "statement_timeout: 5m")})
	ctx := context.Background()
	if _, err := h.owner.Exec(ctx, `UPDATE public.trades SET pair = repeat('y', 1000000) WHERE id <= 200`); err != nil {
		t.Fatal(err)
	}
	tx, err := h.owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE public.trades IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	before := allocated()
	done := make(chan response, 1)
	go func() { done <- h.query(dev1, `SELECT id, pair FROM trades WHERE id <= 200 ORDER BY id`) }()
	pid := h.waitForBackend(ctx, done)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	grew := allocated() - before
	res := r.read(t)
	if r.status != http.StatusOK || res.RowCount != 4 || !res.Truncated {
		t.Fatalf("when rows of 1 MB exceed max_bytes 4 MiB, want = 200 with 4 rows, truncated, got = %s", r)
	}
	// The test's own client read the 4 MB answer into memory too (io.ReadAll: about twice
	// its size); the rest is the function's.
	if bound := 12*mib + 3*uint64(len(r.body)); grew > bound {
		t.Errorf("when rows of 1 MB exceed max_bytes 4 MiB, want the function and the client to allocate under %.1f MiB, got = %.1f MiB", float64(bound)/mib, float64(grew)/mib)
	}
	h.waitGone(ctx, pid)
	for _, c := range h.deps.Pool.AcquireAllIdle(ctx) {
		if c.Conn().PgConn().PID() == pid {
			t.Errorf("after discarding more than max_bytes, want the connection (backend %d) closed, got it idle in the pool", pid)
		}
		c.Release()
	}
	// A small truncation keeps its connection: the read after it is on a pooled one.
	if r := h.post(dev1, query.Request{SQL: `SELECT id FROM trades`, MaxRows: 3}); r.status != http.StatusOK || !r.read(t).Truncated {
		t.Errorf("when max_rows truncates, want = 200 truncated, got = %s", r)
	}
}

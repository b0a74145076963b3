package query_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
)

const (
	dev1 = "dev1@example.com"
	dev2 = "dev2@example.com"
)

func firstString(t *testing.T, r response) string {
	t.Helper()
	res := r.read(t)
	if len(res.Rows) == 0 || len(res.Rows[0]) == 0 {
		t.Fatalf("want at least one row, got %s", r)
	}
	s, _ := res.Rows[0][0].(string)
	return s
}

func TestUnmaskedGrantIsPerDeveloper(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	real := h.scalar(`SELECT email FROM public.users WHERE id = 1`)
	const sql = `SELECT email FROM users WHERE id = 1`

	if got := firstString(t, h.query(dev1, sql)); got == real || !strings.HasPrefix(got, "h:") {
		t.Errorf("when dev1 has no grant, want a masked email (h:…), got = %q", got)
	}
	h.grant(dev1, "unmasked_users", time.Hour, true)
	r := h.query(dev1, sql)
	if got := firstString(t, r); got != real {
		t.Errorf("when dev1 holds unmasked_users, want = %q, got = %q", real, got)
	}
	if res := r.read(t); res.Columns[0].Masked {
		t.Errorf("when dev1 holds unmasked_users, want column email masked = false, got = true")
	}
	r = h.query(dev2, sql)
	if got := firstString(t, r); got == real || !strings.HasPrefix(got, "h:") {
		t.Errorf("when only dev1 holds unmasked_users, want dev2 to see a masked email, got = %q", got)
	}
	if res := r.read(t); !res.Columns[0].Masked {
		t.Errorf("when dev2 reads email without a grant, want column masked = true, got = false")
	}
}

func TestExpiredGrantIsNotHonoured(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	real := h.scalar(`SELECT email FROM public.users WHERE id = 1`)
	const sql = `SELECT email FROM users WHERE id = 1`

	// A live grant, synced: the role holds the capability.
	id := h.grant(dev1, "unmasked_users", time.Hour, true)
	if got := firstString(t, h.query(dev1, sql)); got != real {
		t.Fatalf("when dev1 holds a live unmasked_users grant, want = %q, got = %q", real, got)
	}
	// It runs out while still marked active, and the sweeper has not run: no sync.
	if _, err := h.admin.Exec(context.Background(), `UPDATE airlock.grants SET starts_at = now() - interval '3 hours', expires_at = now() - interval '1 minute' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if got := firstString(t, h.query(dev1, sql)); got == real || !strings.HasPrefix(got, "h:") {
		t.Errorf("when dev1's grant expired but is still marked active, want the function to resync and mask, got = %q", got)
	}
	if got := h.scalar(`SELECT count(*)::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member JOIN airlock.developers d ON d.db_role = u.rolname WHERE d.email = $1 AND r.rolname LIKE '%unmasked_users'`, dev1); got != "0" {
		t.Errorf("after the resync, want dev1's role to hold unmasked_users = 0 times, got = %s", got)
	}

	// A write under an expired write grant (dev2, whose most recently ended grant is it:
	// the refusal names the last grant that ended, see grants.LastEnded).
	wid := h.grant(dev2, "write_accounts", -time.Hour, false)
	before := h.checksum("accounts")
	r := h.post(dev2, query.Request{SQL: `UPDATE accounts SET currency = currency WHERE id = 1`, Mode: "write", Reason: "ticket OPS-1 fix currency"})
	if r.status != http.StatusForbidden || r.err().Code != "grant_expired" {
		t.Fatalf("when writing under an expired write grant, want = 403 grant_expired, got = %s", r)
	}
	ended := h.scalar(`SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM airlock.grants WHERE id = $1`, wid)
	if msg := r.err().Message; !strings.Contains(msg, ended) {
		t.Errorf("when writing under an expired write grant, want the message to name when it ended (%s), got = %q", ended, msg)
	}
	if after := h.checksum("accounts"); after != before {
		t.Errorf("when a write under an expired grant is refused, want accounts unchanged, got a different checksum")
	}
}

func TestWriteMode(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant(dev1, "write_accounts", time.Hour, true)
	const reason = "ticket OPS-42: customer asked"
	ctx := context.Background()

	t.Run("reason required", func(t *testing.T) {
		r := h.post(dev1, query.Request{SQL: `UPDATE accounts SET currency = 'USDT' WHERE id = 1`, Mode: "write"})
		if r.status != http.StatusBadRequest || r.err().Code != "reason_required" {
			t.Errorf("when writing without a reason, want = 400 reason_required, got = %s", r)
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		before := h.checksum("accounts")
		r := h.post(dev1, query.Request{SQL: `UPDATE accounts SET balance = 1 WHERE id = 2`, Mode: "write", DryRun: true, Reason: reason})
		if r.status != http.StatusOK {
			t.Fatalf("when dry-running a granted UPDATE, want = 200, got = %s", r)
		}
		w := r.write(t)
		if w.RowsAffected != 1 || w.Committed || !w.DryRun {
			t.Errorf("when dry-running, want rows_affected=1 committed=false dry_run=true, got = %+v", w)
		}
		if len(w.Preview) != 1 || w.Preview[0]["balance"] != "[masked]" {
			t.Errorf("when dry-running without unmasked_accounts, want a preview with balance \"[masked]\", got = %v", w.Preview)
		}
		if after := h.checksum("accounts"); after != before {
			t.Errorf("when dry-running, want accounts unchanged, got a different checksum")
		}
	})

	t.Run("committed write changes exactly the row", func(t *testing.T) {
		before := h.collectStrings(`SELECT t::text FROM public.accounts t WHERE id <> 3 ORDER BY id`)
		r := h.post(dev1, query.Request{SQL: `UPDATE accounts SET balance = 12.5 WHERE id = 3`, Mode: "write", Reason: reason})
		if r.status != http.StatusOK {
			t.Fatalf("when committing a granted UPDATE, want = 200, got = %s", r)
		}
		if w := r.write(t); w.RowsAffected != 1 || !w.Committed {
			t.Errorf("when committing, want rows_affected=1 committed=true, got = %+v", w)
		}
		if got := h.scalar(`SELECT balance::text FROM public.accounts WHERE id = 3`); got != "12.50000000" {
			t.Errorf("after the write, want balance of account 3 = 12.50000000, got = %s", got)
		}
		after := h.collectStrings(`SELECT t::text FROM public.accounts t WHERE id <> 3 ORDER BY id`)
		if strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Errorf("after writing account 3, want every other account unchanged, got changes")
		}
		var found bool
		for _, e := range h.entriesFor("query.result") {
			if e["sql"] == `UPDATE accounts SET balance = 12.5 WHERE id = 3` && e["decision"] == "allowed" && e["rows"] == float64(1) {
				d, _ := e["details"].(map[string]any)
				found = d["committed"] == true
			}
		}
		if !found {
			t.Errorf("after a committed write, want a query.result audit entry with rows=1 committed=true, got none")
		}
		var n int
		h.admin.QueryRow(ctx, `SELECT count(*) FROM airlock.write_images WHERE table_name = 'accounts' AND op = 'UPDATE' AND (old_row->>'id')::int = 3`).Scan(&n)
		if n != 1 {
			t.Errorf("after a committed write, want 1 before-image in airlock.write_images, got = %d", n)
		}
	})

	t.Run("over max_rows", func(t *testing.T) {
		before := h.checksum("accounts")
		r := h.post(dev1, query.Request{SQL: `UPDATE accounts SET updated_at = now() WHERE id <= 25`, Mode: "write", Reason: reason})
		if r.status != http.StatusForbidden || r.err().Code != "row_limit_exceeded" {
			t.Errorf("when updating 25 rows with max_rows 20, want = 403 row_limit_exceeded, got = %s", r)
		}
		if after := h.checksum("accounts"); after != before {
			t.Errorf("when a write over max_rows is refused, want accounts unchanged, got a different checksum")
		}
	})

	t.Run("delete refused", func(t *testing.T) {
		before := h.checksum("accounts")
		r := h.post(dev1, query.Request{SQL: `DELETE FROM accounts WHERE id = 4`, Mode: "write", Reason: reason})
		if r.status != http.StatusForbidden || r.err().Rule != "delete_forbidden" {
			t.Errorf("when deleting under a write grant, want = 403 delete_forbidden, got = %s", r)
		}
		if after := h.checksum("accounts"); after != before {
			t.Errorf("when a DELETE is refused, want accounts unchanged")
		}
	})
}

func TestFormatsAndCaps(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: policyVariant(t, "max_bytes: 4194304", "max_bytes: 65536")})
	const sql = `SELECT id, pair FROM trades ORDER BY id LIMIT 3`

	t.Run("json", func(t *testing.T) {
		r := h.post(dev1, query.Request{SQL: sql, Format: "json"})
		res := r.read(t)
		if r.status != http.StatusOK || res.RowCount != 3 || len(res.Columns) != 2 || res.Columns[1].Name != "pair" || res.Truncated {
			t.Errorf("when asking for json, want 3 rows of (id, pair) not truncated, got = %s", r)
		}
	})
	t.Run("csv", func(t *testing.T) {
		r := h.post(dev1, query.Request{SQL: sql, Format: "csv"})
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("when asking for csv, want Content-Type text/csv, got = %q", ct)
		}
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil || len(recs) != 4 || recs[0][0] != "id" || recs[0][1] != "pair" || recs[1][0] != "1" {
			t.Errorf("when asking for csv, want a header and 3 records starting with id 1, got = %q (%v)", r.body, err)
		}
	})
	t.Run("table", func(t *testing.T) {
		r := h.post(dev1, query.Request{SQL: sql, Format: "table"})
		body := string(r.body)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !strings.Contains(body, " | ") || !strings.Contains(body, "(3 rows)") {
			t.Errorf("when asking for table, want a psql-style table ending (3 rows), got = %q", body)
		}
	})
	t.Run("max_rows", func(t *testing.T) {
		r := h.post(dev1, query.Request{SQL: `SELECT id FROM trades`, MaxRows: 7})
		if res := r.read(t); res.RowCount != 7 || !res.Truncated {
			t.Errorf("when max_rows is 7, want 7 rows truncated, got = %d rows truncated=%v", res.RowCount, res.Truncated)
		}
		r = h.post(dev1, query.Request{SQL: `SELECT id FROM trades LIMIT 7`, MaxRows: 7})
		if res := r.read(t); res.RowCount != 7 || res.Truncated {
			t.Errorf("when exactly max_rows rows exist, want 7 rows not truncated, got = %d rows truncated=%v", res.RowCount, res.Truncated)
		}
		r = h.post(dev1, query.Request{SQL: `SELECT 1`, MaxRows: 10001})
		if r.status != http.StatusBadRequest || r.err().Code != "invalid_max_rows" {
			t.Errorf("when max_rows is over the policy's 10000, want = 400 invalid_max_rows, got = %s", r)
		}
	})
	t.Run("byte cap", func(t *testing.T) {
		r := h.post(dev1, query.Request{SQL: `SELECT repeat('x', 1000) AS filler FROM generate_series(1, 5000)`, MaxRows: 5000})
		res := r.read(t)
		if r.status != http.StatusOK || !res.Truncated || res.RowCount == 0 || res.RowCount >= 70 {
			t.Errorf("when rows of 1 KB exceed max_bytes 64 KiB, want truncated with fewer than 70 rows, got = %d rows truncated=%v (%d)", res.RowCount, res.Truncated, r.status)
		}
	})
	t.Run("a million rows", func(t *testing.T) {
		start := time.Now()
		r := h.query(dev1, `SELECT g FROM generate_series(1, 1000000) g`)
		if r.status != http.StatusOK {
			t.Fatalf("when selecting a million rows, want = 200, got = %s", r)
		}
		res := r.read(t)
		if res.RowCount != 500 || !res.Truncated {
			t.Errorf("when selecting a million rows with default caps, want 500 rows truncated, got = %d truncated=%v", res.RowCount, res.Truncated)
		}
		if last := res.Rows[len(res.Rows)-1][0]; last != float64(500) {
			t.Errorf("when selecting a million rows, want the last row = 500, got = %v", last)
		}
		t.Logf("a million-row SELECT answered in %v", time.Since(start))
	})
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tok := h.token(dev1)
	cases := []struct {
		name       string
		method     string
		token      string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"malformed JSON", http.MethodPost, tok, `{"sql": "SELECT 1"`, 400, "malformed_json"},
		{"unknown field", http.MethodPost, tok, `{"sql": "SELECT 1", "role": "postgres"}`, 400, "unknown_field"},
		{"body over 64 KiB", http.MethodPost, tok, `{"sql": "SELECT '` + strings.Repeat("a", 70<<10) + `'"}`, 413, "body_too_large"},
		{"missing token", http.MethodPost, "", `{"sql": "SELECT 1"}`, 401, "unauthenticated"},
		{"forged token", http.MethodPost, tok[:len(tok)-4] + "AAAA", `{"sql": "SELECT 1"}`, 401, "unauthenticated"},
		{"non-member", http.MethodPost, h.token("eve@example.com"), `{"sql": "SELECT 1"}`, 403, "not_a_member"},
		{"GET", http.MethodGet, tok, ``, 405, "method_not_allowed"},
		{"mode admin", http.MethodPost, tok, `{"sql": "SELECT 1", "mode": "admin"}`, 400, "invalid_mode"},
		{"empty sql", http.MethodPost, tok, `{"sql": "  "}`, 400, "sql_required"},
		{"bad format", http.MethodPost, tok, `{"sql": "SELECT 1", "format": "xml"}`, 400, "invalid_format"},
		{"dry run read", http.MethodPost, tok, `{"sql": "SELECT 1", "dry_run": true}`, 400, "invalid_dry_run"},
		{"two statements", http.MethodPost, tok, `{"sql": "SELECT 1; SELECT 2"}`, 403, "denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.method, c.token, []byte(c.body))
			if r.status != c.wantStatus || r.err().Code != c.wantCode {
				t.Errorf("when sending %s, want = %d %s, got = %s", c.name, c.wantStatus, c.wantCode, r)
			}
		})
	}
}

// TestGuardRefusesRoleAndSessionTricks: the database checks SET ROLE against the session
// user, so the guard is what keeps a developer's statement from switching role or
// touching session state; each attempt is refused and nothing changes.
func TestGuardRefusesRoleAndSessionTricks(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	group := h.d.Roles.Group("query")
	h.grant(dev2, "unmasked_users", time.Hour, true)
	other := h.sync(dev2) // another developer's role, holding unmasked_users
	for _, sql := range []string{
		`SET ROLE ` + other,
		`SET LOCAL ROLE ` + other,
		`SELECT set_config('role', '` + other + `', true)`,
		`SELECT email FROM users, LATERAL (SELECT set_config('role', '` + other + `', true)) s`,
		`SET ROLE ` + group,
		`SET ROLE postgres`,
		`RESET ROLE`,
		`SET SESSION AUTHORIZATION postgres`,
		`SELECT set_config('role', '` + group + `', true)`,
		`SELECT set_config('search_path', 'public', false)`,
		`SELECT * FROM public.users`,
		`SELECT * FROM airlock.write_images`,
		`CREATE TEMP TABLE x (i int)`,
		`DISCARD ALL`,
	} {
		for _, mode := range []string{"read", "write"} {
			r := h.post(dev1, query.Request{SQL: sql, Mode: mode, Reason: "trying role tricks"})
			if r.status == http.StatusOK || r.err().Rule == "" {
				t.Errorf("when dev1 sends %q in %s mode, want a guard refusal with a rule, got = %s", sql, mode, r)
			}
		}
	}
}

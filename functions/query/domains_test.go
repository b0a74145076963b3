package query_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/migrate"
)

// textRows decodes a read's rows keeping numbers as their text.
func textRows(t *testing.T, r response) [][]string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want = 200, got = %s", r)
	}
	var v struct {
		Rows [][]any `json:"rows"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
	out := make([][]string, len(v.Rows))
	for i, row := range v.Rows {
		for _, c := range row {
			switch c := c.(type) {
			case nil:
				out[i] = append(out[i], "<null>")
			case json.Number:
				out[i] = append(out[i], c.String())
			case string:
				out[i] = append(out[i], c)
			default:
				b, _ := json.Marshal(c)
				out[i] = append(out[i], string(b))
			}
		}
	}
	return out
}

// count runs a one-value read as who and returns the value.
func (h *harness) count(who, sql string) string {
	h.t.Helper()
	rows := textRows(h.t, h.query(who, sql))
	if len(rows) != 1 || len(rows[0]) != 1 {
		h.t.Fatalf("when %s runs %q, want one value, got = %v", who, sql, rows)
	}
	return rows[0][0]
}

// domainHash is the masked views' hash of value in domain, computed with crypto/hmac
// from the master key as the README describes it: HMAC-SHA-256 under
// HMAC-SHA-256(master, label || domain), its first 20 hex digits.
func (h *harness) domainHash(domain, value string) string {
	h.t.Helper()
	var inner []byte
	if err := h.admin.QueryRow(context.Background(), `SELECT inner_key FROM airlock.masking_key WHERE id = 1`).Scan(&inner); err != nil {
		h.t.Fatal(err)
	}
	master := make([]byte, len(inner)) // the key, zero-padded to the block: HMAC pads it the same way
	for i, b := range inner {
		master[i] = b ^ 0x36
	}
	mac := hmac.New(sha256.New, master)
	mac.Write([]byte(migrate.DomainKeyLabel + domain))
	mac = hmac.New(sha256.New, mac.Sum(nil))
	mac.Write([]byte(value))
	return "h:" + hex.EncodeToString(mac.Sum(nil))[:20]
}

// TestWriteGrantConfirmsNoSensitiveValue is issue 11's finding 6 through ExecuteQuery:
// dev1, holding only write_withdrawals, tries every way to write a guessed e-mail and
// compare it with users.email (the right guess: user 42's real e-mail). No comparison
// may tell the right guess from a wrong one. Controls show that the same comparisons do
// find equal values where equality is meant to show (within a hash domain, or on the
// masked value itself), so the zeros below are not vacuous.
func TestWriteGrantConfirmsNoSensitiveValue(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	guess := h.scalar(`SELECT email FROM public.users WHERE id = 42`)
	maskedGuess := firstString(t, h.query(dev1, `SELECT email FROM users WHERE id = 42`))
	h.grant(dev1, "write_withdrawals", time.Hour, true)
	write := func(sql string) response {
		return h.post(dev1, query.Request{SQL: sql, Mode: "write", Reason: "ticket OPS-66 guess an e-mail"})
	}

	t.Run("the policy of the issue does not load", func(t *testing.T) {
		// The demo as it was: the destination hashed, with users' e-mails, and writable.
		doc := policyVariant(t, "destination_address: {mask: hash, domain: wallet_address}", "destination_address: {mask: hash}",
			"columns: [currency, status]", "columns: [user_id, currency, amount, destination_address, status, created_at]")
		_, err := app.Build(ctx, app.Config{Function: query.EntryPoint, Group: migrate.GroupQuery, Policy: doc})
		if err == nil || !strings.Contains(err.Error(), "tables.withdrawals.masked.destination_address: hashed (domain withdrawals.destination_address) and writable") {
			t.Errorf("when ExecuteQuery starts with a writable hashed destination, want it refused naming the column, got = %v", err)
		}
	})

	t.Run("writing the guess into the hashed column", func(t *testing.T) {
		before := h.checksum("withdrawals")
		for _, sql := range []string{
			`UPDATE withdrawals SET destination_address = '` + guess + `' WHERE id = 1`,
			`INSERT INTO withdrawals (user_id, currency, amount, destination_address, status, created_at) VALUES (1, 'BTC', 1, '` + guess + `', 'pending', now())`,
			`UPDATE withdrawals SET status = 'x', destination_address = '` + guess + `' WHERE id = 1`,
		} {
			if r := write(sql); r.status != http.StatusForbidden {
				t.Errorf("when dev1 writes the guess into the destination (%s), want = 403, got = %s", sql, r)
			}
		}
		if h.checksum("withdrawals") != before {
			t.Errorf("after the refused writes, want withdrawals unchanged")
		}
	})

	// What dev1 may write: the status. The guess goes there, and the application (a
	// customer entering an e-mail as a destination) puts it into withdrawal 2's hashed
	// destination, where Airlock's writes cannot.
	if r := write(`UPDATE withdrawals SET status = '` + guess + `' WHERE id = 1`); r.status != http.StatusOK || !r.write(t).Committed {
		t.Fatalf("when dev1 writes the guess into a status, want = 200 committed, got = %s", r)
	}
	if _, err := h.owner.Exec(ctx, `UPDATE public.withdrawals SET destination_address = $1 WHERE id = 2`, guess); err != nil {
		t.Fatal(err)
	}

	t.Run("reads comparing the guess with users' e-mails", func(t *testing.T) {
		for _, sql := range []string{
			// Issue 11's join, on the column the application wrote.
			`SELECT count(*) FROM withdrawals w JOIN users u ON u.email = w.destination_address`,
			`SELECT count(*) FROM withdrawals w JOIN users u ON u.email = w.status`,
			`SELECT count(*) FROM users WHERE email = (SELECT status FROM withdrawals WHERE id = 1)`,
			`SELECT count(*) FROM users u, withdrawals w WHERE w.id IN (1, 2) AND u.email IN (w.status, w.destination_address, w.currency)`,
			`SELECT count(*) FROM users u WHERE EXISTS (SELECT 1 FROM withdrawals w WHERE lower(w.status) = lower(u.email) OR w.destination_address = u.email)`,
			`SELECT count(*) FROM users WHERE email = '` + guess + `'`,
			`SELECT count(*) FROM users u JOIN withdrawals w ON w.id = 1 AND w.status = u.email`,
		} {
			if got := h.count(dev1, sql); got != "0" {
				t.Errorf("when dev1 runs %q, want = 0 (the masked views compare masked values, and each domain has its own key), got = %s", sql, got)
			}
		}
	})

	t.Run("controls: equal values do show where they should", func(t *testing.T) {
		// Within the wallet_address domain, a destination equal to a deposit's address joins.
		raw := h.scalar(`SELECT count(*)::text FROM public.withdrawals w JOIN public.deposits d ON d.wallet_address = w.destination_address`)
		if got := h.count(dev1, `SELECT count(*) FROM withdrawals w JOIN deposits d ON d.wallet_address = w.destination_address`); got != raw || raw != "400" {
			t.Errorf("when joining destinations to deposit addresses (one domain), want = %s rows as in the raw tables (the README says 400), got = %s", raw, got)
		}
		// The comparison is on what the view shows: writing the masked value matches, and
		// tells nothing the masked value did not.
		if r := write(`UPDATE withdrawals SET status = '` + maskedGuess + `' WHERE id = 3`); r.status != http.StatusOK {
			t.Fatalf("when dev1 writes a masked e-mail into a status, want = 200, got = %s", r)
		}
		if got := h.count(dev1, `SELECT count(*) FROM withdrawals w JOIN users u ON u.email = w.status`); got != "1" {
			t.Errorf("when a status holds user 42's masked e-mail, want it to join that user's masked e-mail once, got = %s", got)
		}
		// The hash the application's write produced is the guess's hash in
		// wallet_address's key, not users.email's.
		dest := firstString(t, h.query(dev1, `SELECT destination_address FROM withdrawals WHERE id = 2`))
		if want := h.domainHash("wallet_address", guess); dest != want || dest == maskedGuess {
			t.Errorf("withdrawal 2's destination (the guess): want = %s (domain wallet_address), not users.email's %s, got = %s", want, maskedGuess, dest)
		}
	})

	t.Run("writes comparing the guess", func(t *testing.T) {
		before := h.checksum("withdrawals")
		for _, c := range []struct{ sql, rule string }{
			{`UPDATE withdrawals SET status = 'x' WHERE id = 1 AND EXISTS (SELECT 1 FROM users WHERE email = '` + guess + `')`, "write_reads_other_table"},
			{`UPDATE withdrawals SET status = 'x' WHERE id = 1 AND destination_address = '` + guess + `'`, "write_reads_sensitive_column"},
			{`UPDATE withdrawals SET status = 'x' WHERE id = 2 AND destination_address = status`, "write_reads_sensitive_column"},
			{`UPDATE withdrawals SET status = destination_address WHERE id = 2`, "write_reads_sensitive_column"},
		} {
			for _, dry := range []bool{true, false} {
				r := h.post(dev1, query.Request{SQL: c.sql, Mode: "write", DryRun: dry, Reason: "ticket OPS-66 guess an e-mail"})
				if r.status != http.StatusForbidden || r.err().Rule != c.rule {
					t.Errorf("when dev1 writes %q (dry run %v), want = 403 %s, got = %s", c.sql, dry, c.rule, r)
				}
			}
		}
		if h.checksum("withdrawals") != before {
			t.Errorf("after the refused writes, want withdrawals unchanged")
		}
	})

	t.Run("the database alone", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, h.d.URL(migrate.GroupQuery))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		role := h.sync(dev1)
		for _, sql := range []string{
			`UPDATE public.withdrawals SET destination_address = '` + guess + `' WHERE id = 1`,
			`UPDATE public.withdrawals SET status = 'x' WHERE id = 1 AND destination_address = '` + guess + `'`,
			`UPDATE public.withdrawals SET status = 'x' WHERE id = 1 AND EXISTS (SELECT 1 FROM public.users WHERE email = '` + guess + `')`,
			`UPDATE public.withdrawals SET status = 'x' WHERE id = 1 RETURNING destination_address`,
			`SELECT * FROM airlock.masking_keys`,
		} {
			err := asDeveloper(t, conn, role, "domains", false, exec(sql))
			if got := sqlstate(err); got != "42501" {
				t.Errorf("when dev1's role runs %q with no guard, want SQLSTATE = 42501, got = %q", sql, got)
			}
		}
		var n string
		err = asDeveloper(t, conn, role, "domains", false, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `UPDATE public.withdrawals SET status = (SELECT count(*) FROM masked.users WHERE email = '`+guess+`')::text WHERE id = 1 RETURNING status`).Scan(&n)
		})
		if err != nil || n != "0" {
			t.Errorf("when dev1's role counts, inside a write, the users whose masked e-mail is the guess, want = 0, got = %q, %v", n, err)
		}
	})
}

// TestWritablePartialMaskConfirmsNothing: a writable column with a keyless mask may be
// compared with a sensitive column masked the same way (the phone keeping two
// digits), and the comparison tells the right guess of a phone number no more than a
// wrong one ending in the same two digits: both match every user whose masked phone is
// the same.
func TestWritablePartialMaskConfirmsNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: policyVariant(t,
		"destination_address: {mask: hash, domain: wallet_address}", "destination_address: {mask: partial, keep_last: 2}",
		"columns: [currency, status]", "columns: [currency, status, destination_address]")})
	phone := h.scalar(`SELECT phone FROM public.users WHERE id = 42`)
	wrong := "+999" + phone[len(phone)-6:] // same last two digits, not a phone of the data
	if h.scalar(`SELECT count(*)::text FROM public.users WHERE phone = $1`, wrong) != "0" {
		t.Fatalf("the wrong guess %s is some user's phone", wrong)
	}
	h.grant(dev1, "write_withdrawals", time.Hour, true)
	for id, v := range map[int]string{1: phone, 2: wrong} {
		r := h.post(dev1, query.Request{SQL: `UPDATE withdrawals SET destination_address = '` + v + `' WHERE id = ` + strconv.Itoa(id), Mode: "write", Reason: "ticket OPS-67 guess a phone"})
		if r.status != http.StatusOK || !r.write(t).Committed {
			t.Fatalf("when dev1 writes a guess into destination %d, want = 200 committed, got = %s", id, r)
		}
	}
	rows := textRows(t, h.query(dev1, `SELECT w.id, count(u.id) FROM withdrawals w JOIN users u ON u.phone = w.destination_address WHERE w.id IN (1, 2) GROUP BY w.id ORDER BY w.id`))
	same := h.scalar(`SELECT count(*)::text FROM public.users WHERE right(phone, 2) = $1 AND length(phone) > 4`, phone[len(phone)-2:])
	if len(rows) != 2 || rows[0][1] != rows[1][1] || rows[0][1] != same {
		t.Errorf("when the right and a wrong phone are compared with users' masked phones, want both to match the %s users sharing the last two digits, got = %v", same, rows)
	}
	if got := h.count(dev1, `SELECT count(*) FROM users WHERE phone = '`+phone+`'`); got != "0" {
		t.Errorf("when dev1 compares users' phones with the right guess, want = 0, got = %s", got)
	}
}

// TestDemoMasksLocateNoTransaction is finding 10: read with no grant, a deposit or a
// withdrawal keeps nothing that finds it on a public chain. Transaction hashes and
// addresses are the HMAC of the whole value in their domain's key (no digit kept),
// amounts keep one significant digit, times the day (UTC).
func TestDemoMasksLocateNoTransaction(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	hashRE := regexp.MustCompile(`^h:[0-9a-f]{20}$`)
	for _, tc := range []struct {
		table   string
		hashed  map[string]string // column -> domain
		columns string
	}{
		{"deposits", map[string]string{"tx_hash": "tx_hash", "wallet_address": "wallet_address"}, "id, amount::text, extract(epoch FROM created_at)::bigint::text, tx_hash, wallet_address"},
		{"withdrawals", map[string]string{"destination_address": "wallet_address"}, "id, amount::text, extract(epoch FROM created_at)::bigint::text, destination_address"},
	} {
		t.Run(tc.table, func(t *testing.T) {
			sql := `SELECT ` + tc.columns + ` FROM ` + tc.table + ` ORDER BY id`
			masked := textRows(t, h.post(dev1, query.Request{SQL: sql, MaxRows: 10000}))
			rows, err := h.owner.Query(context.Background(), strings.Replace(sql, " FROM "+tc.table, " FROM public."+tc.table, 1))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]string, error) {
				vals := make([]string, len(tc.hashed)+3)
				ptrs := make([]any, len(vals))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				return vals, row.Scan(ptrs...)
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(masked) != len(raw) || len(raw) < 1000 {
				t.Fatalf("want every row read (%d), got = %d", len(raw), len(masked))
			}
			names := strings.Split(tc.columns, ", ")
			amounts := map[string]bool{}
			for i, m := range masked {
				r := raw[i]
				if m[0] != r[0] {
					t.Fatalf("row %d: want id %s, got = %s", i, r[0], m[0])
				}
				if !oneSignificantDigit(m[1], r[1]) {
					t.Errorf("%s %s: amount %s reads %s, want one significant digit", tc.table, r[0], r[1], m[1])
				}
				amounts[m[1]] = true
				sec, _ := strconv.ParseInt(r[2], 10, 64)
				if want := strconv.FormatInt(sec-sec%86400, 10); m[2] != want {
					t.Errorf("%s %s: created_at (epoch %s) reads %s, want the day's start %s", tc.table, r[0], r[2], m[2], want)
				}
				for j := 3; j < len(m); j++ {
					domain := tc.hashed[names[j]]
					if !hashRE.MatchString(m[j]) || m[j] != h.domainHash(domain, r[j]) {
						t.Errorf("%s %s: %s %s reads %s, want = %s (its HMAC in domain %s)", tc.table, r[0], names[j], r[j], m[j], h.domainHash(domain, r[j]), domain)
					}
				}
				if t.Failed() {
					return
				}
			}
			if len(amounts) > 60 {
				t.Errorf("want the %d %s to share a few rounded amounts, got %d distinct", len(raw), tc.table, len(amounts))
			}
		})
	}
}

// oneSignificantDigit reports whether masked is raw rounded to one significant digit.
func oneSignificantDigit(masked, raw string) bool {
	m, err1 := strconv.ParseFloat(masked, 64)
	r, err2 := strconv.ParseFloat(raw, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	if r == 0 {
		return m == 0
	}
	digits := strings.Trim(strings.NewReplacer("-", "", ".", "").Replace(masked), "0")
	unit := math.Pow(10, math.Floor(math.Log10(math.Abs(r))))
	return len(digits) == 1 && math.Abs(m-r) <= unit/2+1e-9
}

package migrate_test

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
)

// TestMaskExpressions runs each mask's SQL on the server: the values it gives, and that
// no value (zero, NaN, the infinities, a type's largest) makes it fail, since a view
// that fails on some rows answers a question about them.
func TestMaskExpressions(t *testing.T) {
	ctx := t.Context()
	conn := connect(t, dbtest.AdminURL(t))
	// Truncation is in UTC whatever the reader's time zone: +05:30 moves day boundaries.
	if _, err := conn.Exec(ctx, `SET TimeZone = 'Asia/Kolkata'`); err != nil {
		t.Fatal(err)
	}
	round := func(d int) policy.Mask { return policy.Mask{Kind: policy.MaskRound, Digits: d} }
	trunc := func(u string) policy.Mask { return policy.Mask{Kind: policy.MaskTruncate, Unit: u} }
	null := "<null>"
	tcs := []struct {
		typ, value string
		mask       policy.Mask
		want       string
	}{
		{"numeric", "1.23456789", round(1), "1"},
		{"numeric", "0.0734", round(1), "0.07"},
		{"numeric", "4.6", round(1), "5"},
		{"numeric", "9.96", round(1), "10"},
		{"numeric", "-1234.5", round(2), "-1200"},
		{"numeric", "0.000123456", round(3), "0.000123"},
		{"numeric", "0", round(1), "0"},
		{"numeric", "NaN", round(1), "NaN"},
		{"numeric", "Infinity", round(1), "Infinity"},
		{"numeric", "-Infinity", round(2), "-Infinity"},
		{"numeric", "NULL", round(1), null},
		{"integer", "123456", round(2), "120000"},
		{"smallint", "32767", round(2), "33000"}, // above smallint's range: numeric, no overflow
		{"bigint", "-9223372036854775808", round(1), "-9" + strings.Repeat("0", 18)},
		{"double precision", "1e308", round(1), "1" + strings.Repeat("0", 308)},
		{"double precision", "-Infinity", round(1), "-Infinity"},
		{"double precision", "NaN", round(1), "NaN"},
		{"real", "0.000123456", round(3), "0.000123"},
		{"timestamp with time zone", "2024-05-14 23:30:00.123456+00", trunc("day"), "2024-05-14 05:30:00+05:30"},
		{"timestamp with time zone", "2024-05-16 10:00:00+00", trunc("week"), "2024-05-13 05:30:00+05:30"},
		{"timestamp with time zone", "2024-05-14 23:59:59.999999+00", trunc("hour"), "2024-05-15 04:30:00+05:30"}, // 23:00 UTC, not 05:00 in Kolkata,
		{"timestamp with time zone", "infinity", trunc("day"), "infinity"},
		{"timestamp without time zone", "2024-05-14 13:45:12.345678", trunc("hour"), "2024-05-14 13:00:00"},
		{"date", "2024-05-14", trunc("month"), "2024-05-01"},
		{"date", "2024-05-14", trunc("year"), "2024-01-01"},
		{"date", "NULL", trunc("day"), null},
	}
	for _, tc := range tcs {
		expr := migrate.MaskExpr("x", tc.typ, tc.mask)
		var got *string
		err := conn.QueryRow(ctx, `SELECT (`+expr+`)::text FROM (SELECT `+literalOf(tc.value)+`::`+tc.typ+` AS x) v`).Scan(&got)
		if err != nil {
			t.Errorf("when masking %s %s with %s, want = %s, got error = %v", tc.typ, tc.value, tc.mask, tc.want, err)
			continue
		}
		s := null
		if got != nil {
			s = *got
		}
		if s != tc.want {
			t.Errorf("when masking %s %s with %s, want = %s, got = %s", tc.typ, tc.value, tc.mask, tc.want, s)
		}
	}
}

func literalOf(v string) string {
	if v == "NULL" {
		return v
	}
	return "'" + v + "'"
}

// TestHashDomains: equal values hash alike within a domain and differently across
// domains, with the key the README describes, HMAC-SHA-256(master, label || domain).
// The application (the tables' owner) stores a customer's e-mail as a withdrawal's
// destination: through the masked views it matches no user, whereas a deposit address
// reused as a destination still joins.
func TestHashDomains(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	owner := connect(t, d.OwnerURL)
	admin := connect(t, d.AdminURL)
	var email string
	if err := owner.QueryRow(ctx, `UPDATE public.withdrawals SET destination_address = (SELECT email FROM public.users WHERE id = 7) WHERE id = 1 RETURNING destination_address`).Scan(&email); err != nil {
		t.Fatal(err)
	}
	const (
		byEmail  = `SELECT count(*) FROM withdrawals w JOIN users u ON u.email = w.destination_address`
		byWallet = `SELECT count(*) FROM withdrawals w JOIN deposits d ON d.wallet_address = w.destination_address`
	)
	count := func(q pgx.Tx, sql string) int {
		t.Helper()
		var n int
		if err := q.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	var rawEmail, rawWallet int
	err := pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = public`); err != nil {
			return err
		}
		rawEmail, rawWallet = count(tx, byEmail), count(tx, byWallet)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rawEmail != 1 || rawWallet < 100 {
		t.Fatalf("want the raw data to hold 1 e-mail destination and the demo's reused deposit addresses (≥ 100), got = %d, %d", rawEmail, rawWallet)
	}
	var maskedEmail, maskedDest, maskedWallet string
	err = asDeveloper(t, d, "dev1@example.com", func(tx pgx.Tx) error {
		if n := count(tx, byEmail); n != 0 {
			t.Errorf("when joining withdrawals' destinations to users' e-mails through the masked views, want = 0 rows (different domains), got = %d", n)
		}
		if n := count(tx, byWallet); n != rawWallet {
			t.Errorf("when joining withdrawals' destinations to deposits' addresses through the masked views, want = %d rows (the raw join: one domain), got = %d", rawWallet, n)
		}
		return tx.QueryRow(ctx, `SELECT (SELECT email FROM users WHERE id = 7), (SELECT destination_address FROM withdrawals WHERE id = 1),
		                                (SELECT wallet_address FROM deposits WHERE id = 10)`).Scan(&maskedEmail, &maskedDest, &maskedWallet)
	})
	if err != nil {
		t.Fatal(err)
	}
	var inner, outer []byte
	if err := admin.QueryRow(ctx, `SELECT inner_key, outer_key FROM airlock.masking_key WHERE id = 1`).Scan(&inner, &outer); err != nil {
		t.Fatal(err)
	}
	hash := func(domain, value string) string {
		di, do := migrate.HMACPads(migrate.HMACWithPads(inner, outer, []byte(migrate.DomainKeyLabel+domain)))
		return "h:" + hex.EncodeToString(migrate.HMACWithPads(di, do, []byte(value)))[:20]
	}
	var wallet string
	if err := owner.QueryRow(ctx, `SELECT wallet_address FROM public.deposits WHERE id = 10`).Scan(&wallet); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, got, want string }{
		{"users.email of user 7", maskedEmail, hash("users.email", email)},
		{"the same e-mail as withdrawal 1's destination", maskedDest, hash("wallet_address", email)},
		{"deposits.wallet_address of deposit 10", maskedWallet, hash("wallet_address", wallet)},
	} {
		if c.got != c.want {
			t.Errorf("%s: want = %s (HMAC under the domain's derived key), got = %s", c.what, c.want, c.got)
		}
	}
	if maskedEmail == maskedDest {
		t.Errorf("want one value to hash differently in two domains, got %s in both", maskedEmail)
	}
	rows, err := admin.Query(ctx, `SELECT domain FROM airlock.masking_keys ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	domains, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tx_hash", "users.email", "wallet_address"}; !slices.Equal(domains, want) {
		t.Errorf("airlock.masking_keys: want a key for each of the demo policy's domains %v, got = %v", want, domains)
	}
}

// TestMaskingKeysReadOnlyByMasker: the domains' keys are read by the role that owns the
// masked views and by no other Airlock role; the master key by none.
func TestMaskingKeysReadOnlyByMasker(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	admin := connect(t, d.AdminURL)
	if _, err := d.SyncDeveloper(ctx, "dev1@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `INSERT INTO airlock.grants (grantee, role, capabilities, starts_at, expires_at)
		VALUES ('dev2@example.com', 'breakglass', '{unmasked_users,unmasked_deposits,unmasked_withdrawals,write_withdrawals}', now(), now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SyncDeveloper(ctx, "dev2@example.com"); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string][]string{
		"airlock.masking_keys": {d.Roles.Prefix + "masker"},
		"airlock.masking_key":  nil,
	} {
		rows, err := admin.Query(ctx, `
			SELECT rolname::text FROM pg_roles
			 WHERE starts_with(rolname, $1) AND has_table_privilege(oid, $2, 'SELECT') ORDER BY 1`, d.Roles.Prefix, table)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Airlock's roles (developers, capabilities, function logins and groups) that may read %s: want = %v, got = %v", table, want, got)
		}
	}
	for _, who := range []string{"dev1@example.com", "dev2@example.com"} {
		for _, sql := range []string{`SELECT * FROM airlock.masking_keys`, `SELECT * FROM airlock.masking_key`} {
			err := asDeveloper(t, d, who, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, sql)
				return err
			})
			if got := sqlstate(err); got != "42501" {
				t.Errorf("when %s runs %q, want SQLSTATE = 42501, got = %q", who, sql, got)
			}
		}
	}
}

// TestDomainKeysAcrossMigrations: running the migrations again changes no hash; renaming
// a domain changes its columns' hashes (their key is the new name's), keeps them
// joining, leaves other domains alone and drops the old name's key.
func TestDomainKeysAcrossMigrations(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	admin := connect(t, d.AdminURL)
	type hashes struct{ email, wallet, dest string }
	read := func() hashes {
		t.Helper()
		var h hashes
		err := asDeveloper(t, d, "dev1@example.com", func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT (SELECT email FROM users WHERE id = 1), (SELECT wallet_address FROM deposits WHERE id = 10),
			                                (SELECT destination_address FROM withdrawals WHERE id = 10)`).Scan(&h.email, &h.wallet, &h.dest)
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	apply := func(doc []byte) {
		t.Helper()
		pol, err := policy.Load(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := migrate.Apply(ctx, admin, pol, migrate.Options{Prefix: d.Roles.Prefix, Role: d.AdminRole}); err != nil {
			t.Fatal(err)
		}
	}
	before := read()
	if before.wallet != before.dest {
		t.Fatalf("want deposit 10's address, reused by withdrawal 10, to hash alike in domain wallet_address, got = %s and %s", before.wallet, before.dest)
	}
	apply(demo.Policy)
	if again := read(); again != before {
		t.Errorf("after the migrations ran again, want every hash unchanged, got = %+v, want = %+v", again, before)
	}
	renamed := strings.ReplaceAll(string(demo.Policy), "domain: wallet_address", "domain: wallets")
	if strings.Count(renamed, "domain: wallets") != 2 {
		t.Fatal("want the demo policy to put two columns in domain wallet_address")
	}
	apply([]byte(renamed))
	after := read()
	if after.email != before.email {
		t.Errorf("after renaming domain wallet_address, want users.email's hash unchanged, got = %s, want = %s", after.email, before.email)
	}
	if after.wallet == before.wallet || after.wallet != after.dest {
		t.Errorf("after renaming domain wallet_address, want the addresses' hashes changed and still equal, got = %+v (before %+v)", after, before)
	}
	var stale int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM airlock.masking_keys WHERE domain = 'wallet_address'`).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Errorf("after renaming domain wallet_address, want its key dropped, got = %d rows", stale)
	}
}

// TestMaskNeedsItsType: a mask applied to a column of a type it cannot read is refused
// by the migrations, naming the column.
func TestMaskNeedsItsType(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	conn := connect(t, d.AdminURL)
	tcs := []struct{ old, new, want string }{
		{"email: {mask: hash}", "email: {mask: round, digits: 2}", "column email is text; mask round needs a number"},
		{"email: {mask: hash}", "email: {mask: truncate, unit: day}", "column email is text; mask truncate needs timestamptz"},
		{"amount: {mask: round, digits: 1}", "amount: {mask: truncate, unit: day}", "column amount is numeric(36,8); mask truncate needs"},
		{"amount: {mask: round, digits: 1}", "amount: {mask: hash}", "column amount is numeric(36,8); mask hash needs text"},
		{"created_at: {mask: truncate, unit: day}", "created_at: {mask: round, digits: 1}", "column created_at is timestamp with time zone; mask round needs a number"},
	}
	for _, tc := range tcs {
		doc := strings.Replace(string(demo.Policy), tc.old, tc.new, 1)
		if doc == string(demo.Policy) {
			t.Fatalf("the demo policy has no %q", tc.old)
		}
		pol, err := policy.Load([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		err = migrate.Apply(ctx, conn, pol, migrate.Options{Prefix: d.Roles.Prefix, Role: d.AdminRole})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("when the policy says %s, want Apply to fail with %q, got = %v", tc.new, tc.want, err)
		}
	}
}

func sqlstate(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	if err != nil {
		return "non-database error: " + err.Error()
	}
	return ""
}

// TestOraclesInTheTables: what in a table's definition lets a write confirm a value
// developers may not see makes the migrations refuse the policy, naming it. Each case
// is an application schema an insider could propose, with the policy that goes with it.
func TestOraclesInTheTables(t *testing.T) {
	tcs := []struct {
		desc  string
		ddl   string   // run by the tables' owner first
		edits []string // old, new pairs applied to the demo policy
		want  string   // a fragment of Apply's error; "" when it must succeed
	}{
		{"a unique index over a writable and a sensitive column",
			`CREATE UNIQUE INDEX w_currency_dest ON public.withdrawals (currency, destination_address)`, nil,
			"unique or exclusion index w_currency_dest covers writable column currency and sensitive column destination_address"},
		{"a unique index whose predicate reads a sensitive column",
			`CREATE UNIQUE INDEX w_big ON public.withdrawals (id, status) WHERE amount > 1`, nil,
			"unique or exclusion index w_big covers writable column status and sensitive column amount"},
		{"an exclusion constraint over a writable and a sensitive column",
			`ALTER TABLE public.withdrawals ADD CONSTRAINT w_excl EXCLUDE USING btree (status WITH =, destination_address WITH =)`, nil,
			"unique or exclusion index w_excl covers writable column status and sensitive column destination_address"},
		{"a unique index over writable, non-sensitive columns only",
			`CREATE UNIQUE INDEX w_id_status ON public.withdrawals (id, status)`, nil, ""},
		{"a check relating a writable column to a sensitive one",
			`ALTER TABLE public.withdrawals ADD CONSTRAINT w_check CHECK (status <> destination_address)`, nil,
			"check constraint w_check relates writable column status to sensitive column destination_address"},
		{"a check on a sensitive column alone",
			`ALTER TABLE public.withdrawals ADD CONSTRAINT w_positive CHECK (amount >= 0)`, nil, ""},
		{"a writable column referencing users' e-mails",
			`ALTER TABLE public.withdrawals ADD COLUMN contact text REFERENCES public.users (email)`,
			[]string{"columns: [currency, status]", "columns: [currency, status, contact]"},
			"foreign key withdrawals_contact_fkey ties writable column contact to sensitive column users.email"},
		{"a sensitive column referencing a writable one",
			`ALTER TABLE public.withdrawals ADD COLUMN ref text UNIQUE;
			 ALTER TABLE public.deposits ADD COLUMN withdrawal_ref text REFERENCES public.withdrawals (ref) ON UPDATE CASCADE`,
			[]string{"columns: [currency, status]", "columns: [currency, status, ref]",
				"tx_hash: {mask: hash, domain: tx_hash}", "tx_hash: {mask: hash, domain: tx_hash}\n      withdrawal_ref: {mask: redact}"},
			"foreign key deposits_withdrawal_ref_fkey ties writable column ref to sensitive column deposits.withdrawal_ref"},
		{"an unmasked column computed from a sensitive one",
			`ALTER TABLE public.users ADD COLUMN email_domain text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED`, nil,
			"generated column email_domain is computed from sensitive columns (email) but is not masked"},
		{"a hashed column computed from a writable one",
			`ALTER TABLE public.withdrawals ADD COLUMN status_key text GENERATED ALWAYS AS (lower(status)) STORED`,
			[]string{"destination_address: {mask: hash, domain: wallet_address}", "destination_address: {mask: hash, domain: wallet_address}\n      status_key: {mask: hash, domain: wallet_address}"},
			"generated column status_key is computed from writable columns (status) and hashed"},
		{"a column computed from a writable and a sensitive one, partly shown",
			`ALTER TABLE public.withdrawals ADD COLUMN probe text GENERATED ALWAYS AS (left(destination_address, length(status))) STORED`,
			[]string{"destination_address: {mask: hash, domain: wallet_address}", "destination_address: {mask: hash, domain: wallet_address}\n      probe: {mask: partial, keep_first: 2}"},
			"generated column probe is computed from writable and sensitive columns (destination_address, status) and its mask (partial (first 2, last 0)) shows part of it"},
		{"the same column redacted",
			`ALTER TABLE public.withdrawals ADD COLUMN probe text GENERATED ALWAYS AS (left(destination_address, length(status))) STORED`,
			[]string{"destination_address: {mask: hash, domain: wallet_address}", "destination_address: {mask: hash, domain: wallet_address}\n      probe: {mask: redact}"},
			""},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			d := dbtest.New(t)
			ctx := t.Context()
			owner := connect(t, d.OwnerURL)
			if _, err := owner.Exec(ctx, tc.ddl); err != nil {
				t.Fatalf("as the owner, %s: %v", tc.ddl, err)
			}
			doc := string(demo.Policy)
			for i := 0; i+1 < len(tc.edits); i += 2 {
				if !strings.Contains(doc, tc.edits[i]) {
					t.Fatalf("the demo policy has no %q", tc.edits[i])
				}
				doc = strings.Replace(doc, tc.edits[i], tc.edits[i+1], 1)
			}
			pol, err := policy.Load([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			admin := connect(t, d.AdminURL)
			err = migrate.Apply(ctx, admin, pol, migrate.Options{Prefix: d.Roles.Prefix, Role: d.AdminRole})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("when the owner ran %q, want Apply to succeed, got = %v", tc.ddl, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("when the owner ran %q, want Apply to fail with %q, got = %v", tc.ddl, tc.want, err)
			}
		})
	}
}

// connect opens a connection for the length of the test.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

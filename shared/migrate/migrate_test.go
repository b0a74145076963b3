package migrate_test

import (
	"context"
	"errors"
	"os"
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

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// asDeveloper runs fn in a transaction as a developer's role, the way the query function does.
func asDeveloper(t *testing.T, d *dbtest.DB, email string, fn func(tx pgx.Tx) error) error {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, d.URL(migrate.GroupQuery))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var role string
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{d.Roles.Group(migrate.GroupQuery)}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT airlock.sync_developer($1)`, email).Scan(&role); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{role}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL search_path = masked`); err != nil {
		t.Fatal(err)
	}
	return fn(tx)
}

// TestPrimaryKeyMustBeUnique: the SQL guard's memory rules count a join on a table's
// primary_key as matching one row, so a policy naming a column that is not unique is
// refused.
func TestPrimaryKeyMustBeUnique(t *testing.T) {
	d := dbtest.New(t)
	doc := strings.Replace(string(demo.Policy), "users:\n    primary_key: [id]", "users:\n    primary_key: [country]", 1)
	if doc == string(demo.Policy) {
		t.Fatal("the demo policy has no users primary_key to replace")
	}
	pol, err := policy.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	err = migrate.Apply(t.Context(), conn, pol, migrate.Options{Prefix: d.Roles.Prefix, Role: d.AdminRole})
	if err == nil || !strings.Contains(err.Error(), "primary_key [country] is not unique") {
		t.Errorf("when users' primary_key is country, want Apply to fail naming it, got = %v", err)
	}
}

func TestApplyTwiceIsIdempotent(t *testing.T) {
	d := dbtest.New(t)
	conn, err := pgx.Connect(t.Context(), d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if err := migrate.Apply(t.Context(), conn, d.Policy, migrate.Options{Prefix: d.Roles.Prefix, Role: d.AdminRole}); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if err := migrate.Apply(t.Context(), conn, d.Policy, migrate.Options{Prefix: "other_", Role: d.AdminRole}); err == nil {
		t.Fatal("Apply with another prefix succeeded; want an error naming the recorded prefix")
	}
}

func TestDeveloperReadsOnlyMaskedValues(t *testing.T) {
	d := dbtest.New(t)
	var email, phone string
	var balance *string
	err := asDeveloper(t, d, "dev1@example.com", func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT u.email, u.phone, (SELECT balance::text FROM accounts WHERE user_id = u.id LIMIT 1) FROM users u ORDER BY id LIMIT 1`).Scan(&email, &phone, &balance)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(email) != 22 || email[:2] != "h:" {
		t.Errorf("email = %q, want a keyed hash h:<20 hex>", email)
	}
	if phone[:3] != "***" {
		t.Errorf("phone = %q, want ***<last 2>", phone)
	}
	if balance != nil {
		t.Errorf("balance = %q, want NULL", *balance)
	}
	err = asDeveloper(t, d, "dev1@example.com", func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `SELECT email FROM public.users LIMIT 1`)
		return err
	})
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42501" {
		t.Errorf("reading public.users as a developer: err = %v, want permission denied", err)
	}
}

// TestNoSuperuserOwnsAnything: on the Cloud SQL emulation nothing in airlock, masked or
// the application's schema belongs to a superuser; the application's tables belong to
// their owner, not to the admin who ran the migrations nor to the role it ran them as.
func TestNoSuperuserOwnsAnything(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT kind || ' ' || name || ' owned by ' || owner::regrole::text
		  FROM (SELECT 'schema' AS kind, nspname::text AS name, nspowner AS owner FROM pg_namespace
		         WHERE nspname IN ('airlock', 'masked', 'public')
		        UNION ALL
		        SELECT 'relation', n.nspname || '.' || c.relname, c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		         WHERE n.nspname IN ('airlock', 'masked', 'public')
		        UNION ALL
		        SELECT 'function', p.oid::regprocedure::text, p.proowner FROM pg_proc p
		         WHERE p.pronamespace IN ('airlock'::regnamespace, 'masked'::regnamespace, 'public'::regnamespace)
		        UNION ALL
		        SELECT 'type', t.oid::regtype::text, t.typowner FROM pg_type t
		         WHERE t.typnamespace IN ('airlock'::regnamespace, 'masked'::regnamespace, 'public'::regnamespace)) o
		  JOIN pg_roles r ON r.oid = o.owner
		 WHERE r.rolsuper`)
	if err != nil {
		t.Fatal(err)
	}
	owned, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(owned) > 0 {
		t.Errorf("want nothing in airlock, masked or public owned by a superuser, got = %v", owned)
	}

	owner, err := pgx.ParseConfig(d.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.ParseConfig(d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range d.Policy.TableNames() {
		var got string
		if err := conn.QueryRow(ctx, `SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = to_regclass($1)`, "public."+table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != owner.User || got == d.AdminRole || got == admin.User {
			t.Errorf("public.%s: want owned by the application owner %s, not by the migrations' %s or %s, got = %s", table, owner.User, admin.User, d.AdminRole, got)
		}
	}
	// The views belong to the masker, the SECURITY DEFINER functions to the roles they
	// run as, and the role the migrations ran as inherits none of their privileges.
	for _, c := range []struct{ sql, want string }{
		{`SELECT relowner::regrole::text FROM pg_class WHERE oid = 'masked.users'::regclass`, d.Roles.Prefix + "masker"},
		{`SELECT proowner::regrole::text FROM pg_proc WHERE oid = 'airlock.sync_developer(text)'::regprocedure`, d.Roles.Prefix + "admin"},
		{`SELECT proowner::regrole::text FROM pg_proc WHERE oid = 'airlock.terminate_grant_sessions(bigint[])'::regprocedure`, d.Roles.Prefix + "reaper"},
		{`SELECT (has_table_privilege(current_user, 'public.users', 'SELECT') OR has_table_privilege(current_user, 'masked.users', 'SELECT'))::text`, "false"},
		{`SELECT (has_table_privilege($1, 'public.users', 'SELECT') OR has_table_privilege($1, 'masked.users', 'SELECT')
		          OR has_function_privilege($1, 'airlock.sync_developer(text)', 'EXECUTE'))::text`, "false"},
	} {
		var got string
		args := []any{}
		if strings.Contains(c.sql, "$1") {
			args = append(args, d.AdminRole)
		}
		if err := conn.QueryRow(ctx, c.sql, args...).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if got != c.want {
			t.Errorf("%s: want = %s, got = %s", c.sql, c.want, got)
		}
	}
}

// TestReaperHoldsOnlyTheQueryLogin: the role that ends sessions holds the query
// function's login, inherited and not SET, and through it nothing: no data, no
// developer's role, no capability.
func TestReaperHoldsOnlyTheQueryLogin(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	reaper := d.Roles.Prefix + "reaper"
	if _, err := d.SyncDeveloper(ctx, "dev1@example.com"); err != nil {
		t.Fatal(err)
	}
	var version int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	membership := `r.rolname::text || ' inherit=' || m.inherit_option || ' set=' || m.set_option || ' admin=' || m.admin_option`
	want := []string{d.Login(migrate.GroupQuery) + " inherit=true set=false admin=false"}
	if version < 160000 { // no per-grant INHERIT and SET before PostgreSQL 16
		membership = `r.rolname::text || ' admin=' || m.admin_option`
		want = []string{d.Login(migrate.GroupQuery) + " admin=false"}
	}
	rows, err := conn.Query(ctx, `
		SELECT `+membership+`
		  FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
		 WHERE m.member = $1::regrole ORDER BY 1`, reaper)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the reaper's memberships: want = %v, got = %v", want, got)
	}
	var leaks string
	err = conn.QueryRow(ctx, `
		SELECT coalesce(string_agg(what, ', '), '') FROM (
		  SELECT 'SELECT on ' || c.oid::regclass::text AS what FROM pg_class c
		   WHERE c.relnamespace IN ('public'::regnamespace, 'masked'::regnamespace, 'airlock'::regnamespace)
		     AND c.relkind IN ('r', 'v') AND has_table_privilege($1, c.oid, 'SELECT')
		  UNION ALL
		  SELECT 'privileges of ' || r.rolname FROM pg_roles r
		   WHERE starts_with(r.rolname, $2) AND r.rolname NOT IN ($1, $3) AND pg_has_role($1, r.oid, 'USAGE')) x`,
		reaper, d.Roles.Prefix, d.Login(migrate.GroupQuery)).Scan(&leaks)
	if err != nil {
		t.Fatal(err)
	}
	if leaks != "" {
		t.Errorf("want the reaper to hold no data and no other Airlock role, got = %s", leaks)
	}
}

// TestOwnerStatementsNeedTheOwner: what Airlock needs from the table owner cannot be
// taken by the admin who runs the migrations, nor by a function's login; run as the
// owner it leaves nothing pending.
func TestOwnerStatementsNeedTheOwner(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	stmts, err := migrate.OwnerStatements(ctx, admin, d.Policy, d.Roles.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]string{"admin": d.AdminURL, "query login": d.URL(migrate.GroupQuery)} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, migrate.OwnerScript(stmts))
		conn.Close(ctx)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42501" {
			t.Errorf("when the %s runs the owner's statements, want permission denied (42501), got = %v", name, err)
		}
	}
	if _, err := admin.Exec(ctx, `SET ROLE `+pgx.Identifier{d.AdminRole}.Sanitize()+`; `+migrate.OwnerScript(stmts)); err == nil {
		t.Errorf("when the admin runs the owner's statements as %s, want permission denied, got none", d.AdminRole)
	}
	if _, err := admin.Exec(ctx, `ROLLBACK; RESET ROLE`); err != nil {
		t.Fatal(err)
	}
	missing, err := migrate.Pending(ctx, admin, d.Policy, d.Roles.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("after the owner ran its statements (dbtest), want nothing pending, got = %v", missing)
	}
}

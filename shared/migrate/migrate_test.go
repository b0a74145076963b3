package migrate_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
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

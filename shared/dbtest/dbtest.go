// Package dbtest gives tests a real, throwaway Airlock database: the demo schema and
// rows, the migrations applied with a role prefix of its own, and a login role per
// function group. Databases and roles are dropped when the test ends, so test packages
// can share one PostgreSQL cluster and run in parallel.
//
// It needs DATABASE_URL, a superuser URL of that cluster (scripts/test.sh sets it); without
// it the calling test is skipped.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
)

// A DB is one throwaway database.
type DB struct {
	Name     string
	AdminURL string // superuser, connected to this database
	Roles    migrate.Roles
	Policy   *policy.Policy
	logins   map[string]string
}

// URL returns the connection URL of the login role that acts for a function group
// (migrate.GroupQuery, …).
func (d *DB) URL(group string) string { return d.logins[group] }

// Login returns the name of the login role of a function group.
func (d *DB) Login(group string) string { return d.Roles.Prefix + "login_" + group }

// AdminURL returns DATABASE_URL, skipping the test when it is not set.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Skip("DATABASE_URL is not set; scripts/test.sh starts a PostgreSQL and sets it")
	}
	return u
}

var templates sync.Map // admin URL -> *template

type template struct {
	once sync.Once
	name string
	err  error
}

// New creates a database for t with the demo policy.
func New(t testing.TB) *DB { return NewWithPolicy(t, demo.Policy) }

// NewWithPolicy creates a database for t whose masked views and roles follow doc.
func NewWithPolicy(t testing.TB, doc []byte) *DB {
	t.Helper()
	admin := AdminURL(t)
	pol, err := policy.Load(doc)
	if err != nil {
		t.Fatalf("dbtest: policy: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tpl, err := demoTemplate(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	suffix := randomHex(5)
	d := &DB{
		Name:   "airlock_test_" + suffix,
		Roles:  migrate.Roles{Prefix: "t" + suffix + "_"},
		Policy: pol,
		logins: map[string]string{},
	}
	root := mustConnect(t, ctx, admin)
	defer root.Close(context.WithoutCancel(ctx))
	if _, err := root.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, ident(d.Name), ident(tpl))); err != nil {
		t.Fatalf("dbtest: creating database: %v", err)
	}
	t.Cleanup(func() { d.drop(admin) })
	d.AdminURL = db.WithDatabase(admin, d.Name)

	conn := mustConnect(t, ctx, d.AdminURL)
	defer conn.Close(context.WithoutCancel(ctx))
	logins := map[string][]string{}
	for _, g := range migrate.Groups {
		login, password := d.Login(g), randomHex(12)
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN NOINHERIT PASSWORD '%s'`, ident(login), password)); err != nil {
			t.Fatalf("dbtest: creating login %s: %v", login, err)
		}
		logins[g] = []string{login}
		d.logins[g] = db.WithUser(d.AdminURL, login, password)
	}
	if err := migrate.Apply(ctx, conn, pol, migrate.Options{Prefix: d.Roles.Prefix, Logins: logins}); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return d
}

// demoTemplate builds, once per test binary, a database holding the demo schema and
// rows; each test's database is a cheap copy of it.
func demoTemplate(ctx context.Context, admin string) (string, error) {
	v, _ := templates.LoadOrStore(admin, &template{})
	tpl := v.(*template)
	tpl.once.Do(func() {
		tpl.name = "airlock_tpl_" + randomHex(5)
		root, err := pgx.Connect(ctx, admin)
		if err != nil {
			tpl.err = fmt.Errorf("connecting to DATABASE_URL: %w", err)
			return
		}
		defer root.Close(context.WithoutCancel(ctx))
		if _, err := root.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s`, ident(tpl.name))); err != nil {
			tpl.err = fmt.Errorf("creating template: %w", err)
			return
		}
		conn, err := pgx.Connect(ctx, db.WithDatabase(admin, tpl.name))
		if err != nil {
			tpl.err = fmt.Errorf("connecting to template: %w", err)
			return
		}
		defer conn.Close(context.WithoutCancel(ctx))
		tpl.err = demo.Load(ctx, conn)
	})
	return tpl.name, tpl.err
}

// DropTemplates removes the template databases; call it from TestMain after m.Run.
func DropTemplates() {
	templates.Range(func(k, v any) bool {
		tpl := v.(*template)
		if tpl.name == "" {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if root, err := pgx.Connect(ctx, k.(string)); err == nil {
			root.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, ident(tpl.name)))
			root.Close(ctx)
		}
		return true
	})
}

func (d *DB) drop(admin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := pgx.Connect(ctx, admin)
	if err != nil {
		return
	}
	defer root.Close(ctx)
	root.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, ident(d.Name)))
	rows, err := root.Query(ctx, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname`, d.Roles.Prefix)
	if err != nil {
		return
	}
	roles, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, r := range roles {
		root.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, ident(r)))
	}
}

func mustConnect(t testing.TB, ctx context.Context, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("dbtest: connecting: %v", err)
	}
	return conn
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

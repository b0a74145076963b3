// Package dbtest gives tests a real, throwaway Airlock database on a Cloud SQL emulation
// (shared/cloudsqlemu), set up the way an operator sets up production, with no superuser:
// a database created as Terraform creates one, the demo tables created and owned by the
// application owner, a login per function group created as Cloud SQL creates IAM users,
// the migrations applied by the admin login as cloudsqlsuperuser, with a role prefix of
// its own, and then the table owner's statements (migrate.OwnerStatements), run as the
// owner exactly as airlock-admin owner-grants prints them. Databases and roles are
// dropped when the test ends, so test packages can share one cluster and run in parallel.
//
// It needs AIRLOCK_CLOUDSQL, the path of a built emulation (scripts/test.sh builds one);
// without it the calling test is skipped.
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

	"airlock.dev/airlock/shared/cloudsqlemu"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
)

// A DB is one throwaway database.
type DB struct {
	Name     string
	AdminURL string // the admin login (a member of cloudsqlsuperuser, not a superuser), connected to this database
	OwnerURL string // the owner of the application's tables, connected to this database
	// AdminRole is the role the admin runs the migrations as (migrate.Options.Role).
	AdminRole string
	Roles     migrate.Roles
	Policy    *policy.Policy
	logins    map[string]string
	emu       *cloudsqlemu.Emulation
}

// URL returns the connection URL of the login role that acts for a function group
// (migrate.GroupQuery, …).
func (d *DB) URL(group string) string { return d.logins[group] }

// Login returns the name of the login role of a function group.
func (d *DB) Login(group string) string { return d.Roles.Prefix + "login_" + group }

// Emulation returns the emulation AIRLOCK_CLOUDSQL names, skipping the test when it is
// not set.
func Emulation(t testing.TB) *cloudsqlemu.Emulation {
	t.Helper()
	path := os.Getenv(cloudsqlemu.EnvFile)
	if path == "" {
		t.Skip(cloudsqlemu.EnvFile + " is not set; scripts/test.sh builds the Cloud SQL emulation and sets it")
	}
	e, err := cloudsqlemu.Load(path)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return e
}

// AdminURL returns the admin login's URL, skipping the test when there is no emulation.
func AdminURL(t testing.TB) string { t.Helper(); return Emulation(t).AdminURL }

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
	e := Emulation(t)
	pol, err := policy.Load(doc)
	if err != nil {
		t.Fatalf("dbtest: policy: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := Create(ctx, e, pol)
	if d != nil {
		t.Cleanup(d.Drop)
	}
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return d
}

// Create makes a throwaway database on e for pol, for callers without a testing.TB
// (scripts/cmd/bench). On error it returns what it made so far, for Drop.
func Create(ctx context.Context, e *cloudsqlemu.Emulation, pol *policy.Policy) (*DB, error) {
	tpl, err := demoTemplate(ctx, e)
	if err != nil {
		return nil, err
	}
	suffix := randomHex(5)
	d := &DB{
		Name:      "airlock_test_" + suffix,
		Roles:     migrate.Roles{Prefix: "t" + suffix + "_"},
		Policy:    pol,
		AdminRole: e.Role,
		logins:    map[string]string{},
		emu:       e,
	}
	root, err := pgx.Connect(ctx, e.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("connecting as the admin: %w", err)
	}
	defer root.Close(context.WithoutCancel(ctx))
	// CREATEDB is cloudsqlsuperuser's attribute, which its members use by acting as it.
	if _, err := root.Exec(ctx, `SET ROLE `+ident(e.Role)); err != nil {
		return nil, err
	}
	if _, err := root.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, ident(d.Name), ident(tpl))); err != nil {
		return nil, fmt.Errorf("creating database: %w", err)
	}
	if _, err := root.Exec(ctx, `RESET ROLE`); err != nil {
		return nil, err
	}
	d.AdminURL = db.WithDatabase(e.AdminURL, d.Name)
	d.OwnerURL = db.WithDatabase(e.OwnerURL, d.Name)
	logins := map[string][]string{}
	for _, g := range migrate.Groups {
		login, password := d.Login(g), randomHex(12)
		if err := cloudsqlemu.CreateLogin(ctx, root, login, password); err != nil {
			return d, err
		}
		logins[g] = []string{login}
		d.logins[g] = db.WithUser(d.AdminURL, login, password)
	}

	// What an operator runs, in order (terraform/README.md, step 8): the migrations as
	// the admin, then the owner's statements as the owner.
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		return d, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := migrate.Apply(ctx, conn, pol, migrate.Options{Prefix: d.Roles.Prefix, Logins: logins, Role: e.Role}); err != nil {
		return d, err
	}
	owner, err := pgx.Connect(ctx, d.OwnerURL)
	if err != nil {
		return d, fmt.Errorf("connecting as the owner: %w", err)
	}
	defer owner.Close(context.WithoutCancel(ctx))
	stmts, err := migrate.OwnerStatements(ctx, conn, pol, d.Roles.Prefix)
	if err != nil {
		return d, err
	}
	// The script airlock-admin owner-grants prints, as the owner would paste it into psql.
	if _, err := owner.Exec(ctx, migrate.OwnerScript(stmts)); err != nil {
		return d, fmt.Errorf("running the owner's statements: %w", err)
	}
	missing, err := migrate.Pending(ctx, conn, pol, d.Roles.Prefix)
	if err != nil {
		return d, err
	}
	if len(missing) > 0 {
		return d, fmt.Errorf("after the owner's statements, still missing: %v", missing)
	}
	return d, nil
}

// demoTemplate builds, once per test binary, a database holding the demo schema and
// rows, created by the application owner; each test's database is a cheap copy of it.
func demoTemplate(ctx context.Context, e *cloudsqlemu.Emulation) (string, error) {
	v, _ := templates.LoadOrStore(e.AdminURL, &template{})
	tpl := v.(*template)
	tpl.once.Do(func() {
		name := "airlock_tpl_" + randomHex(5)
		root, err := pgx.Connect(ctx, e.AdminURL)
		if err != nil {
			tpl.err = fmt.Errorf("connecting as the admin: %w", err)
			return
		}
		defer root.Close(context.WithoutCancel(ctx))
		owner, err := pgx.ParseConfig(e.OwnerURL)
		if err != nil {
			tpl.err = err
			return
		}
		if err := cloudsqlemu.CreateDatabase(ctx, root, name, owner.User); err != nil {
			tpl.err = fmt.Errorf("creating template: %w", err)
			return
		}
		tpl.name = name
		conn, err := pgx.Connect(ctx, db.WithDatabase(e.OwnerURL, name))
		if err != nil {
			tpl.err = fmt.Errorf("connecting to template as the owner: %w", err)
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

// Drop removes the database and its roles. Connections still open to it (a pool being
// closed) are waited for: the admin may not end other logins' sessions.
func (d *DB) Drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := pgx.Connect(ctx, d.emu.AdminURL)
	if err != nil {
		return
	}
	defer root.Close(ctx)
	for {
		_, err := root.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, ident(d.Name)))
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows, err := root.Query(ctx, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname`, d.Roles.Prefix)
	if err != nil {
		return
	}
	roles, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	root.Exec(ctx, `SET ROLE `+ident(d.emu.Role))
	for _, r := range roles {
		root.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, ident(r)))
	}
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// SyncDeveloper runs airlock.sync_developer(email) the way the query function runs it
// (its login, acting as its group) and returns the developer's role.
func (d *DB) SyncDeveloper(ctx context.Context, email string) (string, error) {
	conn, err := pgx.Connect(ctx, d.URL(migrate.GroupQuery))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var role string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+ident(d.Roles.Group(migrate.GroupQuery))); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT airlock.sync_developer($1)`, email).Scan(&role)
	})
	if err != nil {
		return "", fmt.Errorf("dbtest: syncing %s: %w", email, err)
	}
	return role, nil
}

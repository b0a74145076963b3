// Package cloudsqlemu builds, on a PostgreSQL server where it is given a superuser, the
// roles and settings of a Cloud SQL for PostgreSQL instance, so that Airlock runs locally
// the way it runs in production: with no superuser anywhere.
//
// Build uses the superuser once, the way Google builds an instance:
//
//   - cloudsqlsuperuser: NOLOGIN CREATEROLE CREATEDB and nothing else (no SUPERUSER,
//     REPLICATION or BYPASSRLS, no membership of, let alone ADMIN OPTION on, predefined
//     roles such as pg_signal_backend);
//   - an admin login that is a member of it, standing for the Cloud SQL IAM admin of step 8
//     of terraform/README.md (its own attributes are LOGIN only, as an IAM user's are, so
//     it must SET ROLE cloudsqlsuperuser to create roles or databases);
//   - the application owner, a plain login that owns the application's tables;
//   - the server flags terraform/sql.tf sets as database_flags (ReadFlags), at cluster
//     level (ALTER SYSTEM), skipping the Cloud SQL switches and pgAudit's, which have no
//     meaning here.
//
// Everything after that goes through the admin login: databases are created as
// Terraform's google_sql_database creates them (owned by cloudsqlsuperuser,
// CreateDatabase), and the functions' logins as Cloud SQL creates IAM service-account
// users (a LOGIN role holding nothing, on which cloudsqlsuperuser holds ADMIN OPTION
// only, CreateLogin).
//
// The result is an Emulation: the URLs of the admin, the owner and the function logins
// (and, for tests that observe the server from its own machine, its data directory),
// saved as JSON. scripts/test.sh passes its path in AIRLOCK_CLOUDSQL.
package cloudsqlemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SuperuserRole is Cloud SQL's administrative role: the nearest thing to a superuser a
// customer gets.
const SuperuserRole = "cloudsqlsuperuser"

// EnvFile names the environment variable holding the path of a saved Emulation.
const EnvFile = "AIRLOCK_CLOUDSQL"

// Defaults of Options.
const (
	DefaultAdmin = "admin@example.com" // an IAM user's name, as Cloud SQL spells it
	DefaultOwner = "app_owner"
)

// Options configures Build.
type Options struct {
	Admin string // the admin login; DefaultAdmin if empty
	Owner string // the application owner; DefaultOwner if empty
	// Logins maps a function group to the name of its login, created with CreateLogin.
	Logins map[string]string
	// Databases are created with CreateDatabase if they do not exist.
	Databases []string
	// Flags are applied with ALTER SYSTEM (see ReadFlags).
	Flags []Flag
}

// An Emulation is what Build made: connection URLs (to the maintenance database
// "postgres"; use db.WithDatabase for another) of roles that are not superusers.
type Emulation struct {
	AdminURL string            `json:"admin"`
	OwnerURL string            `json:"owner"`
	Logins   map[string]string `json:"logins,omitempty"` // function group -> URL
	// Role is what the admin sets its role to before creating anything: SuperuserRole.
	Role string `json:"role"`
	// Skipped lists the flags of terraform/sql.tf that were not applied, and why.
	Skipped []string `json:"skipped_flags,omitempty"`
	// DataDirectory is the server's data directory as its superuser saw it at Build. It
	// is no part of Cloud SQL and nothing of Airlock's reads it: tests that run on the
	// server's own machine use it to observe the server from outside (the memory tests
	// read its temporary files), so that no database login needs pg_monitor for them.
	DataDirectory string `json:"data_directory,omitempty"`
}

// Load reads an Emulation saved with Save.
func Load(path string) (*Emulation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cloudsqlemu: %w", err)
	}
	var e Emulation
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("cloudsqlemu: reading %s: %w", path, err)
	}
	if e.AdminURL == "" || e.OwnerURL == "" {
		return nil, fmt.Errorf("cloudsqlemu: %s names no admin or owner", path)
	}
	return &e, nil
}

// Save writes e to path, readable by its owner only (it holds passwords).
func (e *Emulation) Save(path string) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("cloudsqlemu: %w", err)
	}
	return nil
}

// Build makes the emulation on the server superuserURL names, idempotently. Passwords
// are set anew on every call.
func Build(ctx context.Context, superuserURL string, opts Options) (*Emulation, error) {
	if opts.Admin == "" {
		opts.Admin = DefaultAdmin
	}
	if opts.Owner == "" {
		opts.Owner = DefaultOwner
	}
	su, err := pgx.Connect(ctx, superuserURL)
	if err != nil {
		return nil, fmt.Errorf("cloudsqlemu: connecting as the superuser: %w", err)
	}
	defer su.Close(context.WithoutCancel(ctx))
	var super bool
	if err := su.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return nil, fmt.Errorf("cloudsqlemu: %w", err)
	}
	if !super {
		return nil, errors.New("cloudsqlemu: the URL must name a superuser: only a superuser can build what Google builds")
	}
	var dataDir string
	if err := su.QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dataDir); err != nil {
		return nil, fmt.Errorf("cloudsqlemu: reading the data directory: %w", err)
	}
	adminPW, ownerPW := randomHex(16), randomHex(16)
	stmts := []string{
		// Roles are cluster-wide: two builds at once would race on them.
		`SELECT pg_advisory_lock(hashtext('airlock.cloudsqlemu'))`,
		ensureRole(SuperuserRole),
		`ALTER ROLE ` + ident(SuperuserRole) + ` NOLOGIN NOSUPERUSER NOREPLICATION NOBYPASSRLS CREATEROLE CREATEDB INHERIT`,
		ensureRole(opts.Admin),
		// An IAM user's own attributes: LOGIN, nothing else.
		`ALTER ROLE ` + ident(opts.Admin) + ` LOGIN NOSUPERUSER NOREPLICATION NOBYPASSRLS NOCREATEROLE NOCREATEDB INHERIT PASSWORD ` + literal(adminPW),
		// As step 8 does, as the built-in postgres user: GRANT cloudsqlsuperuser TO "you@example.com".
		`GRANT ` + ident(SuperuserRole) + ` TO ` + ident(opts.Admin),
		ensureRole(opts.Owner),
		`ALTER ROLE ` + ident(opts.Owner) + ` LOGIN NOSUPERUSER NOREPLICATION NOBYPASSRLS NOCREATEROLE NOCREATEDB INHERIT PASSWORD ` + literal(ownerPW),
	}
	for _, s := range stmts {
		if _, err := su.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("cloudsqlemu: %s: %w", firstWords(s), err)
		}
	}
	defer su.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('airlock.cloudsqlemu'))`)
	// Nothing of what Cloud SQL withholds: membership in predefined roles is taken away.
	if err := revokePredefined(ctx, su); err != nil {
		return nil, err
	}
	skipped, err := applyFlags(ctx, su, superuserURL, opts.Flags)
	if err != nil {
		return nil, err
	}
	e := &Emulation{
		AdminURL: withUser(superuserURL, opts.Admin, adminPW, "postgres"),
		OwnerURL: withUser(superuserURL, opts.Owner, ownerPW, "postgres"),
		Logins:   map[string]string{},
		Role:     SuperuserRole,
		Skipped:  skipped,

		DataDirectory: dataDir,
	}
	// From here on, as Google's API and Terraform would: through the admin.
	admin, err := pgx.Connect(ctx, e.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("cloudsqlemu: connecting as the admin: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	for _, name := range opts.Databases {
		if err := CreateDatabase(ctx, admin, name, opts.Owner); err != nil {
			return nil, err
		}
	}
	for group, login := range opts.Logins {
		pw := randomHex(16)
		if err := CreateLogin(ctx, admin, login, pw); err != nil {
			return nil, err
		}
		e.Logins[group] = withUser(superuserURL, login, pw, "postgres")
	}
	return e, nil
}

// revokePredefined removes the emulated roles from predefined roles (pg_*), should an
// earlier setup of this server have granted them any.
func revokePredefined(ctx context.Context, su *pgx.Conn) error {
	rows, err := su.Query(ctx, `
		SELECT r.rolname, m.rolname
		  FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
		 WHERE starts_with(r.rolname, 'pg_') AND m.rolname = $1`, SuperuserRole)
	if err != nil {
		return fmt.Errorf("cloudsqlemu: listing memberships: %w", err)
	}
	pairs, err := pgx.CollectRows(rows, pgx.RowTo[[2]string])
	if err != nil {
		return fmt.Errorf("cloudsqlemu: listing memberships: %w", err)
	}
	for _, p := range pairs {
		if _, err := su.Exec(ctx, `REVOKE `+ident(p[0])+` FROM `+ident(p[1])+` CASCADE`); err != nil {
			return fmt.Errorf("cloudsqlemu: revoking %s from %s: %w", p[0], p[1], err)
		}
	}
	return nil
}

// CreateDatabase creates database name as Terraform's google_sql_database does, through
// admin (a member of cloudsqlsuperuser): owned by cloudsqlsuperuser. The application
// owner gets CREATE on its schema public, as the application's own setup would give it,
// so that its migrations can create its tables. An existing database is left as it is.
func CreateDatabase(ctx context.Context, admin *pgx.Conn, name, owner string) error {
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("cloudsqlemu: looking up database %s: %w", name, err)
	}
	if !exists {
		// CREATEDB is an attribute, never inherited: the admin acts as cloudsqlsuperuser.
		if _, err := admin.Exec(ctx, `SET ROLE `+ident(SuperuserRole)); err != nil {
			return fmt.Errorf("cloudsqlemu: %w", err)
		}
		_, err := admin.Exec(ctx, `CREATE DATABASE `+ident(name))
		admin.Exec(ctx, `RESET ROLE`)
		if err != nil {
			return fmt.Errorf("cloudsqlemu: creating database %s: %w", name, err)
		}
	}
	cfg := admin.Config().Copy()
	cfg.Database = name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("cloudsqlemu: connecting to %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `GRANT CREATE ON SCHEMA public TO `+ident(owner)); err != nil {
		return fmt.Errorf("cloudsqlemu: letting %s create its tables in %s: %w", owner, name, err)
	}
	return nil
}

// CreateLogin creates (or resets the password of) a function's login the way Cloud SQL
// creates an IAM service-account user: a LOGIN role with no privileges of its own, on
// which cloudsqlsuperuser holds ADMIN OPTION and nothing else, so that its members can
// grant it to other roles but neither act as it nor inherit from it. admin is a member of
// cloudsqlsuperuser.
func CreateLogin(ctx context.Context, admin *pgx.Conn, name, password string) error {
	tx, err := admin.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cloudsqlemu: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("cloudsqlemu: looking up %s: %w", name, err)
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return fmt.Errorf("cloudsqlemu: %w", err)
	}
	stmts := []string{`SET LOCAL ROLE ` + ident(SuperuserRole)}
	if !exists {
		if version >= 160000 {
			// A non-superuser creator with CREATEROLE receives exactly ADMIN OPTION on
			// the new role when createrole_self_grant is empty: the state Cloud SQL
			// leaves. (Before 16, CREATEROLE alone administers every role.)
			stmts = append(stmts, `SET LOCAL createrole_self_grant = ''`)
		}
		stmts = append(stmts, `CREATE ROLE `+ident(name)+` LOGIN`)
	}
	stmts = append(stmts, `ALTER ROLE `+ident(name)+` LOGIN PASSWORD `+literal(password))
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("cloudsqlemu: creating login %s: %s: %w", name, firstWords(s), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("cloudsqlemu: creating login %s: %w", name, err)
	}
	return nil
}

func ensureRole(name string) string {
	return fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) THEN CREATE ROLE %s; END IF; END $$`,
		literal(name), ident(name))
}

func withUser(u, user, password, database string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.User = url.UserPassword(user, password)
	p.Path = "/" + database
	return p.String()
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func firstWords(s string) string {
	if i := strings.Index(s, " PASSWORD "); i > 0 {
		s = s[:i] // never print a password
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// settleTimeout bounds the wait for a reloaded setting to reach new sessions. Reaching
// it means the server did not reload, not that it was slow.
const settleTimeout = time.Minute

// Package migrate creates Airlock's schema and makes the database enforce the policy:
// capability roles, security-barrier views that mask sensitive columns, column-level
// write privileges, before-image and row-limit triggers, and the function roles.
//
// Apply is run by an administrator (scripts/dev.sh locally, the bootstrap step in
// production), never by the functions, and is idempotent: running it again after a
// policy change brings the database in line with the new policy.
package migrate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/policy"
)

//go:embed schema.sql
var schemaSQL string

//go:embed admin.sql
var adminSQL string

//go:embed reaper.sql
var reaperSQL string

// DefaultPrefix is the role-name prefix of a production database.
const DefaultPrefix = "airlock_"

// The function groups: each function's login role is granted exactly one of these.
const (
	GroupQuery     = "query"
	GroupRequests  = "requests"
	GroupApprovals = "approvals"
	GroupSweeper   = "sweeper"
)

// Groups lists the function groups.
var Groups = []string{GroupQuery, GroupRequests, GroupApprovals, GroupSweeper}

// Options configures Apply.
type Options struct {
	// Prefix starts the name of every role Apply creates. Defaults to DefaultPrefix.
	Prefix string
	// Logins maps a function group (GroupQuery, …) to the login roles that act for it.
	// Each login is granted the group without inheritance, so it can SET ROLE to the
	// group (and, for the query function, to developers' roles) but holds nothing itself.
	// The logins of GroupQuery are also granted, inherited but never SET, to the reaper
	// role, which ends their sessions when grants end.
	Logins map[string][]string
	// Role, when set, is the role the migrations run as (SET ROLE), so that what they
	// create belongs to it: on Cloud SQL, cloudsqlsuperuser. Role attributes such as
	// CREATEROLE are never inherited, and an IAM user has none of its own.
	Role string
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,19}_$`)

// Roles names the database roles of one Airlock database.
type Roles struct{ Prefix string }

// Group returns the role of a function group.
func (r Roles) Group(g string) string { return r.Prefix + g }

// Developer is the role every developer's role belongs to: it reads the masked views.
func (r Roles) Developer() string { return r.Prefix + "developer" }

// Unmasked returns the capability role that shows table's real values.
func (r Roles) Unmasked(table string) string { return r.Prefix + "unmasked_" + table }

// Write returns the capability role that may INSERT/UPDATE table.
func (r Roles) Write(table string) string { return r.Prefix + "write_" + table }

func (r Roles) admin() string  { return r.Prefix + "admin" }
func (r Roles) reaper() string { return r.Prefix + "reaper" }
func (r Roles) masker() string { return r.Prefix + "masker" }

// ErrSuperuser is returned when the migrations are asked to run as a superuser: Cloud SQL
// has none, so a migration that works only as one would not work where it matters.
var ErrSuperuser = errors.New("migrate: connected as a superuser; run the migrations as an admin without superuser powers (on Cloud SQL: a member of cloudsqlsuperuser, with --role cloudsqlsuperuser)")

// Apply brings the database behind conn in line with pol, in one transaction. It needs
// the application's tables to exist, not any privilege on them: what Airlock needs from
// their owner is OwnerStatements, which the owner runs after Apply (Pending says what is
// missing).
func Apply(ctx context.Context, conn *pgx.Conn, pol *policy.Policy, opts Options) error {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(opts.Prefix) {
		return fmt.Errorf("migrate: role prefix %q must be lower-case letters, digits and _, ending in _", opts.Prefix)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	super, err := isSuperuser(ctx, tx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if super {
		return ErrSuperuser
	}
	if opts.Role != "" {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+ident(opts.Role)); err != nil {
			return fmt.Errorf("migrate: acting as %s: %w", opts.Role, err)
		}
	}
	m := &migration{ctx: ctx, tx: tx, roles: Roles{Prefix: opts.Prefix}, pol: pol}
	if err := tx.QueryRow(ctx, `SELECT current_user::text, current_setting('server_version_num')::int`).Scan(&m.migrator, &m.version); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.run(opts); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

type migration struct {
	ctx      context.Context
	tx       pgx.Tx
	roles    Roles
	pol      *policy.Policy
	migrator string // the role the migrations run as
	version  int    // server_version_num
}

// isSuperuser reports whether the session's login is a superuser.
func isSuperuser(ctx context.Context, q querier) (bool, error) {
	var super bool
	err := q.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = session_user`).Scan(&super)
	if err != nil {
		return false, fmt.Errorf("reading the session's attributes: %w", err)
	}
	return super, nil
}

// as runs fn acting as role (SET LOCAL ROLE), then acts as the migrator again. Objects
// fn creates belong to role.
func (m *migration) as(role string, fn func() error) error {
	if err := m.exec(`SET LOCAL ROLE ` + ident(role)); err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	return m.exec(`SET LOCAL ROLE ` + ident(m.migrator))
}

func (m *migration) exec(sql string, args ...any) error {
	if _, err := m.tx.Exec(m.ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", firstLine(sql), err)
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (m *migration) run(opts Options) error {
	r := m.roles
	// Roles are cluster-wide: serialise migrations of databases that share a cluster.
	if err := m.exec(`SELECT pg_advisory_xact_lock(hashtext('airlock.migrate'))`); err != nil {
		return err
	}
	if m.version >= 160000 {
		// On PostgreSQL 16 a role's creator gets only ADMIN OPTION on it. It also needs
		// SET, to create objects as the roles that own them (functions, views), but not
		// INHERIT: whoever administers Airlock's roles does not thereby hold their
		// privileges (reading the tables, the masking key, the before-images).
		if err := m.exec(`SET LOCAL createrole_self_grant = 'set'`); err != nil {
			return err
		}
	}

	if err := m.ensureRole(r.admin(), "NOLOGIN NOINHERIT CREATEROLE"); err != nil {
		return err
	}
	for _, role := range []string{r.reaper(), r.masker(), r.Developer()} {
		if err := m.ensureRole(role, "NOLOGIN INHERIT"); err != nil {
			return err
		}
	}
	for _, g := range Groups {
		if err := m.ensureRole(r.Group(g), "NOLOGIN NOINHERIT"); err != nil {
			return err
		}
	}

	if err := m.exec(strings.ReplaceAll(schemaSQL, "{{p}}", r.Prefix)); err != nil {
		return err
	}
	if err := m.exec(audit.HeadsTableDDL); err != nil {
		return err
	}
	var prefix string
	err := m.tx.QueryRow(m.ctx, `
		INSERT INTO airlock.settings (key, value) VALUES ('role_prefix', $1)
		ON CONFLICT (key) DO UPDATE SET value = airlock.settings.value
		RETURNING value`, r.Prefix).Scan(&prefix)
	if err != nil {
		return fmt.Errorf("recording role prefix: %w", err)
	}
	if prefix != r.Prefix {
		return fmt.Errorf("this database was set up with role prefix %q, not %q", prefix, r.Prefix)
	}
	if err := m.maskingKey(); err != nil {
		return err
	}
	if err := m.domainKeys(); err != nil {
		return err
	}
	if err := m.functionOwners(); err != nil {
		return err
	}
	if err := m.ownedFunctions(); err != nil {
		return err
	}
	if err := m.exec(fmt.Sprintf(`GRANT CREATE ON SCHEMA masked TO %s`, ident(r.masker()))); err != nil {
		return err
	}
	for _, name := range m.pol.TableNames() {
		if err := m.table(m.pol.Tables[name]); err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
	}
	if err := m.dropStaleViews(); err != nil {
		return err
	}
	// The masker needed CREATE only to create its views, in this transaction.
	if err := m.exec(fmt.Sprintf(`REVOKE CREATE ON SCHEMA masked FROM %s`, ident(r.masker()))); err != nil {
		return err
	}
	if err := m.groupPrivileges(); err != nil {
		return err
	}
	if err := m.logins(opts.Logins); err != nil {
		return err
	}
	if err := m.tableOwners(); err != nil {
		return err
	}
	if m.version < 160000 {
		// Before PostgreSQL 16 a membership always carries inheritance: the migrator was
		// a member of the owning roles for this transaction only.
		return m.exec(fmt.Sprintf(`REVOKE %s, %s, %s FROM %s`, ident(r.admin()), ident(r.reaper()), ident(r.masker()), ident(m.migrator)))
	}
	return nil
}

// grantOption is the WITH clause of a role grant: PostgreSQL 16 sets inheritance (and
// SET) per grant; before it, inheritance was the member's attribute.
func (m *migration) grantOptions(opts string) string {
	if m.version >= 160000 {
		return " WITH " + opts
	}
	return ""
}

// logins grants each function's login its group, and the query function's logins to
// the reaper.
func (m *migration) logins(logins map[string][]string) error {
	r := m.roles
	for _, g := range Groups {
		for _, login := range logins[g] {
			if m.version < 160000 {
				if err := m.exec(fmt.Sprintf(`ALTER ROLE %s NOINHERIT`, ident(login))); err != nil {
					return err
				}
			}
			// Not inherited: the login holds nothing until it sets its role to the group.
			if err := m.exec(fmt.Sprintf(`GRANT %s TO %s%s`, ident(r.Group(g)), ident(login), m.grantOptions("INHERIT FALSE, SET TRUE"))); err != nil {
				return err
			}
			if g != GroupQuery {
				continue
			}
			for _, s := range QuerySettings {
				if err := m.exec(fmt.Sprintf(`ALTER ROLE %s SET %s = %s`, ident(login), s.Name, literal(s.Value))); err != nil {
					return err
				}
			}
		}
	}
	for _, login := range logins[GroupQuery] {
		// The reaper holds the query login's privileges (none: its group is not
		// inherited), which is what lets it end the login's backends. It may not SET ROLE
		// to it.
		if err := m.exec(fmt.Sprintf(`GRANT %s TO %s%s`, ident(login), ident(r.reaper()), m.grantOptions("INHERIT TRUE, SET FALSE"))); err != nil {
			return fmt.Errorf("%w (the reaper ends the query function's sessions through this membership; the admin needs ADMIN OPTION on the login, which Cloud SQL gives cloudsqlsuperuser on the IAM users it creates)", err)
		}
	}
	return nil
}

// ownedFunctions creates the SECURITY DEFINER functions as the roles they run as, which
// may create in schema airlock only for the length of this transaction.
func (m *migration) ownedFunctions() error {
	r := m.roles
	owners := ident(r.admin()) + ", " + ident(r.reaper())
	if m.version < 160000 {
		// Before PostgreSQL 16, creating a role made its creator no member of it.
		if err := m.exec(fmt.Sprintf(`GRANT %s, %s, %s TO %s`, ident(r.admin()), ident(r.reaper()), ident(r.masker()), ident(m.migrator))); err != nil {
			return err
		}
	}
	if err := m.exec(`GRANT CREATE ON SCHEMA airlock TO ` + owners); err != nil {
		return err
	}
	err := m.as(r.admin(), func() error {
		stmts := []string{
			strings.ReplaceAll(adminSQL, "{{p}}", r.Prefix),
			`REVOKE ALL ON FUNCTION airlock.sync_developer(text), airlock.capture_write() FROM PUBLIC`,
			fmt.Sprintf(`GRANT EXECUTE ON FUNCTION airlock.sync_developer(text) TO %s, %s, %s`,
				ident(r.Group(GroupQuery)), ident(r.Group(GroupApprovals)), ident(r.Group(GroupSweeper))),
		}
		for _, s := range stmts {
			if err := m.exec(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = m.as(r.reaper(), func() error {
		stmts := []string{
			strings.ReplaceAll(reaperSQL, "{{p}}", r.Prefix),
			`REVOKE ALL ON FUNCTION airlock.terminate_grant_sessions(bigint[]) FROM PUBLIC`,
			fmt.Sprintf(`GRANT EXECUTE ON FUNCTION airlock.terminate_grant_sessions(bigint[]) TO %s, %s`,
				ident(r.Group(GroupApprovals)), ident(r.Group(GroupSweeper))),
		}
		for _, s := range stmts {
			if err := m.exec(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return m.exec(`REVOKE CREATE ON SCHEMA airlock FROM ` + owners)
}

// tableOwners lets the owners of the policy's tables attach Airlock's triggers to them
// (see OwnerStatements): USAGE on schema airlock and EXECUTE on the trigger functions,
// nothing else.
func (m *migration) tableOwners() error {
	r := m.roles
	rows, err := m.tx.Query(m.ctx, `
		SELECT DISTINCT pg_get_userbyid(c.relowner)::text
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relname = ANY ($1)`, m.pol.TableNames())
	if err != nil {
		return fmt.Errorf("finding the tables' owners: %w", err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("finding the tables' owners: %w", err)
	}
	for _, o := range owners {
		if o == m.migrator {
			continue
		}
		if err := m.exec(fmt.Sprintf(`GRANT USAGE ON SCHEMA airlock TO %s`, ident(o))); err != nil {
			return err
		}
		if err := m.exec(fmt.Sprintf(`GRANT EXECUTE ON FUNCTION airlock.enforce_write_limit() TO %s`, ident(o))); err != nil {
			return err
		}
		err := m.as(r.admin(), func() error {
			return m.exec(fmt.Sprintf(`GRANT EXECUTE ON FUNCTION airlock.capture_write() TO %s`, ident(o)))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// A Setting is one server parameter and its value.
type Setting struct{ Name, Value string }

// QuerySettings are set on the query function's logins (ALTER ROLE ... SET), so
// every developer statement runs with them: PostgreSQL applies them when the login
// connects, SET ROLE to a developer's role does not change them, DISCARD ALL returns
// to them, and the guard refuses SET and set_config. With shared/sqlguard's memory
// rules they bound what one statement can make a backend hold: each sort, hash
// aggregate or tuple store spills past work_mem; a hash join could not (its inner rows
// stay in memory when they share one key), so the planner uses merge and nested-loop
// joins instead; parallel workers would each get their own work_mem; JIT compiles code
// in the backend. temp_file_limit can only be set by a superuser, so it is a Cloud SQL
// database flag (terraform/sql.tf) instead.
var QuerySettings = []Setting{
	{"work_mem", "4MB"},
	{"hash_mem_multiplier", "1"},
	{"enable_hashjoin", "off"},
	{"max_parallel_workers_per_gather", "0"},
	{"jit", "off"},
}

// ensureRole creates role if it is missing and (re)asserts its attributes.
func (m *migration) ensureRole(role, attrs string) error {
	var exists bool
	if err := m.tx.QueryRow(m.ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return fmt.Errorf("looking up role %s: %w", role, err)
	}
	if !exists {
		if err := m.exec(fmt.Sprintf(`CREATE ROLE %s %s`, ident(role), attrs)); err != nil {
			return err
		}
	}
	return m.exec(fmt.Sprintf(`ALTER ROLE %s %s`, ident(role), attrs))
}

// maskingKey creates the master key of the keyed-hash masks once. It is stored as
// HMAC's inner and outer padded keys: HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)).
func (m *migration) maskingKey() error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("making masking key: %w", err)
	}
	inner, outer := hmacPads(key)
	return m.exec(`INSERT INTO airlock.masking_key (id, inner_key, outer_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`, inner, outer)
}

// DomainKeyLabel starts the message whose HMAC under the master key is a hash domain's
// key: HMAC-SHA-256(master, DomainKeyLabel + domain).
const DomainKeyLabel = "airlock masking domain\x00"

// domainKeys derives the key of every hash domain of the policy from the master key and
// drops the keys of domains the policy no longer has. Keys depend only on the master
// key and the domain's name, so running the migrations again changes no hash.
func (m *migration) domainKeys() error {
	var inner, outer []byte
	if err := m.tx.QueryRow(m.ctx, `SELECT inner_key, outer_key FROM airlock.masking_key WHERE id = 1`).Scan(&inner, &outer); err != nil {
		return fmt.Errorf("reading the master masking key: %w", err)
	}
	domains := make([]string, 0)
	for d := range m.pol.HashDomains() {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		di, do := hmacPads(hmacWithPads(inner, outer, []byte(DomainKeyLabel+d)))
		if err := m.exec(`
			INSERT INTO airlock.masking_keys (domain, inner_key, outer_key) VALUES ($1, $2, $3)
			ON CONFLICT (domain) DO UPDATE SET inner_key = excluded.inner_key, outer_key = excluded.outer_key`, d, di, do); err != nil {
			return err
		}
	}
	return m.exec(`DELETE FROM airlock.masking_keys WHERE domain <> ALL ($1)`, domains)
}

// hmacPads returns a SHA-256 HMAC key's inner and outer padded keys (key ^ ipad,
// key ^ opad, key zero-padded to the 64-byte block).
func hmacPads(key []byte) (inner, outer []byte) {
	block := make([]byte, sha256.BlockSize)
	copy(block, key) // keys here are 32 bytes, never longer than a block
	inner, outer = make([]byte, len(block)), make([]byte, len(block))
	for i, b := range block {
		inner[i], outer[i] = b^0x36, b^0x5c
	}
	return inner, outer
}

// hmacWithPads computes HMAC-SHA-256 from the padded keys, as the masked views do.
func hmacWithPads(inner, outer, msg []byte) []byte {
	h := sha256.Sum256(append(append([]byte{}, inner...), msg...))
	sum := sha256.Sum256(append(append([]byte{}, outer...), h[:]...))
	return sum[:]
}

func (m *migration) functionOwners() error {
	r := m.roles
	stmts := []string{
		// admin changes memberships; it must hold ADMIN on every role it hands out.
		fmt.Sprintf(`GRANT %s TO %s WITH ADMIN OPTION`, ident(r.Developer()), ident(r.admin())),
		fmt.Sprintf(`GRANT %s TO %s WITH ADMIN OPTION`, ident(r.Group(GroupQuery)), ident(r.admin())),
		fmt.Sprintf(`GRANT USAGE ON SCHEMA airlock TO %s, %s`, ident(r.admin()), ident(r.reaper())),
		fmt.Sprintf(`GRANT SELECT ON airlock.settings, airlock.grants TO %s`, ident(r.admin())),
		fmt.Sprintf(`GRANT SELECT, INSERT ON airlock.developers, airlock.write_images TO %s`, ident(r.admin())),
		fmt.Sprintf(`GRANT USAGE ON SEQUENCE airlock.write_images_id_seq TO %s`, ident(r.admin())),
		`REVOKE ALL ON FUNCTION airlock.enforce_write_limit() FROM PUBLIC`,
		fmt.Sprintf(`GRANT USAGE ON SCHEMA masked TO %s`, ident(r.Developer())),
		// The masker reads the domains' keys, never the master key they come from.
		fmt.Sprintf(`REVOKE ALL ON airlock.masking_key FROM %s`, ident(r.masker())),
		fmt.Sprintf(`GRANT SELECT ON airlock.masking_keys TO %s`, ident(r.masker())),
		fmt.Sprintf(`GRANT USAGE ON SCHEMA airlock, masked TO %s`, ident(r.masker())),
	}
	for _, s := range stmts {
		if err := m.exec(s); err != nil {
			return err
		}
	}
	return nil
}

type column struct {
	name, typ string
	text      bool   // text, varchar, char or name: what partial and hash masks read
	number    bool   // an integer, numeric or floating-point type: what round reads
	time      string // timestamptz, timestamp or date: what truncate reads; "" otherwise
}

func (m *migration) columns(table string) ([]column, error) { return readColumns(m.ctx, m.tx, table) }

// A querier runs queries: a *pgx.Conn, a pgx.Tx or a pool.
type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

func readColumns(ctx context.Context, q querier, table string) ([]column, error) {
	rows, err := q.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod),
		       a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype),
		       a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype, 'float4'::regtype, 'float8'::regtype),
		       CASE WHEN a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN a.atttypid::regtype::text ELSE '' END
		  FROM pg_attribute a
		 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY a.attnum`, "public."+table)
	if err != nil {
		return nil, fmt.Errorf("reading columns: %w", err)
	}
	cols, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (column, error) {
		var c column
		return c, row.Scan(&c.name, &c.typ, &c.text, &c.number, &c.time)
	})
	if err != nil {
		return nil, fmt.Errorf("reading columns: %w", err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("public.%s does not exist", table)
	}
	return cols, nil
}

// table checks t against the table's columns, makes its capability roles, and (re)creates
// its masked view. Privileges on the table itself and its triggers are its owner's to
// give: OwnerStatements.
func (m *migration) table(t *policy.Table) error {
	r := m.roles
	cols, err := m.columns(t.Name)
	if err != nil {
		return err
	}
	if err := checkColumns(t, cols); err != nil {
		return err
	}
	// Reverts find rows by the primary key, and the SQL guard's memory rules count a join
	// on it as matching at most one row: a unique index on some of its columns must say so.
	var unique bool
	if err := m.tx.QueryRow(m.ctx, `
		SELECT EXISTS (
		  SELECT 1 FROM pg_index i
		   WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
		     AND NOT EXISTS (SELECT 1 FROM pg_attribute a
		                      WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		                        AND a.attname <> ALL ($2::text[])))`, ident("public", t.Name), t.PrimaryKey).Scan(&unique); err != nil {
		return fmt.Errorf("checking the primary key: %w", err)
	}
	if !unique {
		return fmt.Errorf("primary_key %v is not unique: no unique index or constraint of public.%s uses only these columns", t.PrimaryKey, t.Name)
	}
	if err := m.oracles(t); err != nil {
		return err
	}
	for _, role := range capabilityRoles(r, t) {
		if err := m.ensureRole(role, "NOLOGIN INHERIT"); err != nil {
			return err
		}
		if err := m.exec(fmt.Sprintf(`GRANT %s TO %s WITH ADMIN OPTION`, ident(role), ident(r.admin()))); err != nil {
			return err
		}
		if t.Write != nil && role == r.Write(t.Name) {
			// PUBLIC has USAGE on schema public by default; a database that revoked it
			// must give it back to the roles that write there.
			var usage bool
			if err := m.tx.QueryRow(m.ctx, `SELECT has_schema_privilege($1, 'public', 'USAGE')`, role).Scan(&usage); err != nil {
				return fmt.Errorf("checking USAGE on schema public: %w", err)
			}
			if !usage {
				if err := m.exec(fmt.Sprintf(`GRANT USAGE ON SCHEMA public TO %s`, ident(role))); err != nil {
					return err
				}
			}
		}
	}
	return m.as(r.masker(), func() error { return m.view(t, cols) })
}

// capabilityRoles are the roles a grant on t can give: unmasked and write.
func capabilityRoles(r Roles, t *policy.Table) []string {
	var roles []string
	if len(t.Masked) > 0 {
		roles = append(roles, r.Unmasked(t.Name))
	}
	if t.Write != nil {
		roles = append(roles, r.Write(t.Name))
	}
	return roles
}

// checkColumns checks that every column the policy names exists and suits its mask.
func checkColumns(t *policy.Table, cols []column) error {
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.name] = c
	}
	for _, c := range t.SensitiveColumns() {
		col, ok := byName[c]
		if !ok {
			return fmt.Errorf("masked column %s does not exist", c)
		}
		switch mk := t.Masked[c].Kind; {
		case mk == policy.MaskRound && !col.number:
			return fmt.Errorf("column %s is %s; mask round needs a number (integer, numeric or floating point)", c, col.typ)
		case mk == policy.MaskTruncate && col.time == "":
			return fmt.Errorf("column %s is %s; mask truncate needs timestamptz, timestamp or date", c, col.typ)
		case mk != policy.MaskNull && mk != policy.MaskRound && mk != policy.MaskTruncate && !col.text:
			return fmt.Errorf("column %s is %s; mask %s needs text, use mask: null", c, col.typ, mk)
		}
	}
	for _, c := range t.PrimaryKey {
		if _, ok := byName[c]; !ok {
			return fmt.Errorf("primary key column %s does not exist", c)
		}
	}
	if t.Write != nil {
		for _, c := range t.Write.Columns {
			if _, ok := byName[c]; !ok {
				return fmt.Errorf("writable column %s does not exist", c)
			}
		}
	}
	return nil
}

// view (re)creates masked.<table>: every column, sensitive ones masked unless the
// current role holds the table's unmasked capability. It runs as the masker role, which
// owns the view, so developers read the base table only through it.
func (m *migration) view(t *policy.Table, cols []column) error {
	r := m.roles
	var sel []string
	for _, c := range cols {
		mask, sensitive := t.Masked[c.name]
		if !sensitive {
			sel = append(sel, ident(c.name))
			continue
		}
		sel = append(sel, fmt.Sprintf("CASE WHEN pg_has_role(%s, 'USAGE') THEN %s ELSE %s END AS %s",
			literal(r.Unmasked(t.Name)), ident(c.name), maskExpr(ident(c.name), c, mask), ident(c.name)))
	}
	qv := ident("masked", t.Name)
	// A security barrier keeps the planner from flattening the view, which also keeps
	// ORDER BY … LIMIT off the table's indexes. It is what the masking views are; a
	// table with nothing to mask gets a plain view, which hides nothing and is planned
	// as the table itself.
	with := ""
	if len(t.Masked) > 0 {
		with = " WITH (security_barrier)"
	}
	stmts := []string{
		fmt.Sprintf(`DROP VIEW IF EXISTS %s`, qv),
		fmt.Sprintf("CREATE VIEW %s%s AS\nSELECT %s\n  FROM %s", qv, with, strings.Join(sel, ",\n       "), ident("public", t.Name)),
		fmt.Sprintf(`GRANT SELECT ON %s TO %s`, qv, ident(r.Developer())),
	}
	for _, s := range stmts {
		if err := m.exec(s); err != nil {
			return err
		}
	}
	return nil
}

// maskExpr is the SQL that replaces col (the quoted name of column c) for someone
// without the unmasked capability.
func maskExpr(col string, c column, mask policy.Mask) string {
	switch mask.Kind {
	case policy.MaskRedact:
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN NULL ELSE '[redacted]'::text END", col)
	case policy.MaskPartial:
		// Values too short to hide anything are redacted whole.
		return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL WHEN length(%[1]s) <= %[4]d THEN '***'::text ELSE left(%[1]s, %[2]d) || '***' || right(%[1]s, %[3]d) END",
			col, mask.KeepFirst, mask.KeepLast, 2*(mask.KeepFirst+mask.KeepLast))
	case policy.MaskHash:
		// HMAC-SHA-256 under the key of the mask's domain. A domain without a key (never:
		// the migrations write both in one transaction) would read as NULL, not as a hash
		// under some other key.
		key := func(part string) string {
			return fmt.Sprintf("(SELECT %s FROM airlock.masking_keys WHERE domain = %s)", part, literal(mask.Domain))
		}
		return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL ELSE 'h:' || left(encode(sha256(%[2]s || sha256(%[3]s || convert_to(%[1]s::text, 'UTF8'))), 'hex'), 20) END",
			col, key("outer_key"), key("inner_key"))
	case policy.MaskRound:
		// Significant digits: the rounding position follows the value's magnitude. Zero,
		// NaN and the infinities have nothing to hide and no logarithm, and are passed
		// through, so that no value makes the view fail (a failure would be an oracle).
		// The result is numeric whatever the column's type, so rounding up never
		// overflows it.
		return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL WHEN %[1]s::numeric = 0 OR %[1]s::numeric IN ('NaN', 'Infinity', '-Infinity') THEN %[1]s::numeric "+
			"ELSE round(%[1]s::numeric, %[2]d - 1 - floor(log(abs(%[1]s::numeric)))::int) END", col, mask.Digits)
	case policy.MaskTruncate:
		unit := literal(mask.Unit)
		switch c.time {
		case "timestamp with time zone":
			// In UTC, whatever the session's time zone, so that every reader sees the
			// same boundaries.
			return fmt.Sprintf("date_trunc(%s, %s, 'UTC')", unit, col)
		case "date":
			return fmt.Sprintf("date_trunc(%s, %s::timestamp)::date", unit, col)
		default:
			return fmt.Sprintf("date_trunc(%s, %s)", unit, col)
		}
	default:
		return "NULL::" + c.typ
	}
}

// dropStaleViews removes masked views of tables the policy no longer lists.
func (m *migration) dropStaleViews() error {
	rows, err := m.tx.Query(m.ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'masked' AND c.relkind = 'v'`)
	if err != nil {
		return fmt.Errorf("listing masked views: %w", err)
	}
	views, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing masked views: %w", err)
	}
	return m.as(m.roles.masker(), func() error {
		for _, v := range views {
			if _, ok := m.pol.Tables[v]; !ok {
				if err := m.exec(fmt.Sprintf(`DROP VIEW %s`, ident("masked", v))); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// groupPrivileges gives each function's group exactly what that function does (and
// ownedFunctions the functions it may call).
func (m *migration) groupPrivileges() error {
	r := m.roles
	grants := map[string][]string{
		GroupQuery: {
			`SELECT ON airlock.grants, airlock.developers, airlock.write_images, airlock.access_requests`,
			`SELECT, INSERT, DELETE ON airlock.denials`,
			`SELECT, INSERT ON airlock.reverts`,
		},
		GroupRequests: {
			`SELECT, INSERT ON airlock.access_requests`,
			`SELECT ON airlock.approvals, airlock.grants`,
		},
		GroupApprovals: {
			`SELECT, UPDATE ON airlock.access_requests`,
			`SELECT, INSERT ON airlock.approvals`,
			`SELECT, INSERT, UPDATE ON airlock.grants`,
			`USAGE ON SEQUENCE airlock.grants_id_seq`,
			`SELECT, INSERT, DELETE ON airlock.slack_replays`,
			`SELECT ON airlock.write_images`,
		},
		GroupSweeper: {
			`SELECT, UPDATE ON airlock.access_requests, airlock.grants`,
			`SELECT ON airlock.approvals`,
		},
	}
	groups := make([]string, 0, len(grants))
	for g := range grants {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		role := ident(r.Group(g))
		common := []string{
			`USAGE ON SCHEMA airlock`,
			`SELECT, INSERT, UPDATE ON airlock.audit_heads`, // never DELETE: heads only move forward
			`SELECT, INSERT, UPDATE ON airlock.notifications`,
			`USAGE ON SEQUENCE airlock.notifications_id_seq`,
			`SELECT, INSERT, UPDATE ON airlock.notification_limits`,
		}
		for _, priv := range append(common, grants[g]...) {
			if err := m.exec(fmt.Sprintf(`GRANT %s TO %s`, priv, role)); err != nil {
				return err
			}
		}
	}
	return nil
}

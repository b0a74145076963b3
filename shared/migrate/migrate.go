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
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/policy"
)

//go:embed schema.sql
var schemaSQL string

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
	// Each login is made NOINHERIT and granted the group, so it can SET ROLE to the
	// group (and, for the query function, to developers' roles) but holds nothing itself.
	Logins map[string][]string
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

// Apply brings the database behind conn in line with pol, in one transaction.
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
	m := &migration{ctx: ctx, tx: tx, roles: Roles{Prefix: opts.Prefix}, pol: pol}
	if err := m.run(opts); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

type migration struct {
	ctx   context.Context
	tx    pgx.Tx
	roles Roles
	pol   *policy.Policy
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
	var version int
	if err := m.tx.QueryRow(m.ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return fmt.Errorf("reading server version: %w", err)
	}
	if version >= 160000 {
		// On PostgreSQL 16 a non-superuser creator gets only ADMIN on the roles it makes;
		// it also needs SET to hand objects over to them (Cloud SQL's IAM admins).
		if err := m.exec(`SET LOCAL createrole_self_grant = 'set, inherit'`); err != nil {
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
	if err := m.functionOwners(); err != nil {
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
	if err := m.groupPrivileges(); err != nil {
		return err
	}
	for _, g := range Groups {
		for _, login := range opts.Logins[g] {
			if err := m.exec(fmt.Sprintf(`ALTER ROLE %s NOINHERIT`, ident(login))); err != nil {
				return err
			}
			if err := m.exec(fmt.Sprintf(`GRANT %s TO %s`, ident(r.Group(g)), ident(login))); err != nil {
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

// maskingKey creates the keyed-hash key once. It is stored as HMAC's inner and outer
// padded keys: HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)).
func (m *migration) maskingKey() error {
	key := make([]byte, 64) // a 32-byte secret, zero-padded to SHA-256's block size
	if _, err := rand.Read(key[:32]); err != nil {
		return fmt.Errorf("making masking key: %w", err)
	}
	inner, outer := make([]byte, 64), make([]byte, 64)
	for i, b := range key {
		inner[i], outer[i] = b^0x36, b^0x5c
	}
	return m.exec(`INSERT INTO airlock.masking_key (id, inner_key, outer_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`, inner, outer)
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
		fmt.Sprintf(`GRANT pg_signal_backend, pg_read_all_stats TO %s`, ident(r.reaper())),
		fmt.Sprintf(`ALTER FUNCTION airlock.sync_developer(text) OWNER TO %s`, ident(r.admin())),
		fmt.Sprintf(`ALTER FUNCTION airlock.capture_write() OWNER TO %s`, ident(r.admin())),
		fmt.Sprintf(`ALTER FUNCTION airlock.terminate_grant_sessions(bigint[]) OWNER TO %s`, ident(r.reaper())),
		`REVOKE ALL ON FUNCTION airlock.sync_developer(text), airlock.capture_write(),
		        airlock.terminate_grant_sessions(bigint[]), airlock.enforce_write_limit() FROM PUBLIC`,
		fmt.Sprintf(`GRANT USAGE ON SCHEMA masked TO %s`, ident(r.Developer())),
		fmt.Sprintf(`GRANT SELECT ON airlock.masking_key TO %s`, ident(r.masker())),
		fmt.Sprintf(`GRANT USAGE ON SCHEMA airlock TO %s`, ident(r.masker())),
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
	text      bool
}

func (m *migration) columns(table string) ([]column, error) {
	rows, err := m.tx.Query(m.ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod),
		       a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype)
		  FROM pg_attribute a
		 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY a.attnum`, "public."+table)
	if err != nil {
		return nil, fmt.Errorf("reading columns: %w", err)
	}
	cols, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (column, error) {
		var c column
		return c, row.Scan(&c.name, &c.typ, &c.text)
	})
	if err != nil {
		return nil, fmt.Errorf("reading columns: %w", err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("public.%s does not exist", table)
	}
	return cols, nil
}

func (m *migration) table(t *policy.Table) error {
	r := m.roles
	cols, err := m.columns(t.Name)
	if err != nil {
		return err
	}
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.name] = c
	}
	for _, c := range t.SensitiveColumns() {
		col, ok := byName[c]
		if !ok {
			return fmt.Errorf("masked column %s does not exist", c)
		}
		if mk := t.Masked[c].Kind; mk != policy.MaskNull && !col.text {
			return fmt.Errorf("column %s is %s; mask %s needs text, use mask: null", c, col.typ, mk)
		}
	}
	for _, c := range t.PrimaryKey {
		if _, ok := byName[c]; !ok {
			return fmt.Errorf("primary key column %s does not exist", c)
		}
	}
	qt := ident("public", t.Name)
	// Reverts find rows by the primary key, and the SQL guard's memory rules count a join
	// on it as matching at most one row: a unique index on some of its columns must say so.
	var unique bool
	if err := m.tx.QueryRow(m.ctx, `
		SELECT EXISTS (
		  SELECT 1 FROM pg_index i
		   WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
		     AND NOT EXISTS (SELECT 1 FROM pg_attribute a
		                      WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		                        AND a.attname <> ALL ($2::text[])))`, qt, t.PrimaryKey).Scan(&unique); err != nil {
		return fmt.Errorf("checking the primary key: %w", err)
	}
	if !unique {
		return fmt.Errorf("primary_key %v is not unique: no unique index or constraint of public.%s uses only these columns", t.PrimaryKey, t.Name)
	}

	capRoles := []string{}
	if len(t.Masked) > 0 {
		capRoles = append(capRoles, r.Unmasked(t.Name))
	}
	if t.Write != nil {
		capRoles = append(capRoles, r.Write(t.Name))
	}
	for _, role := range capRoles {
		if err := m.ensureRole(role, "NOLOGIN INHERIT"); err != nil {
			return err
		}
		if err := m.exec(fmt.Sprintf(`GRANT %s TO %s WITH ADMIN OPTION`, ident(role), ident(r.admin()))); err != nil {
			return err
		}
	}
	// Start from nothing, so that a column dropped from the policy loses its privileges.
	revokeFrom := append([]string{r.Developer(), r.masker()}, capRoles...)
	for _, role := range revokeFrom {
		if err := m.exec(fmt.Sprintf(`REVOKE ALL ON %s FROM %s`, qt, ident(role))); err != nil {
			return err
		}
	}
	if err := m.exec(fmt.Sprintf(`GRANT SELECT ON %s TO %s`, qt, ident(r.masker()))); err != nil {
		return err
	}
	if len(t.Masked) > 0 {
		if err := m.exec(fmt.Sprintf(`GRANT SELECT ON %s TO %s`, qt, ident(r.Unmasked(t.Name)))); err != nil {
			return err
		}
	}
	if err := m.view(t, cols); err != nil {
		return err
	}
	if t.Write != nil {
		if err := m.writePrivileges(t, cols); err != nil {
			return err
		}
	}
	return m.triggers(t)
}

// view (re)creates masked.<table>: every column, sensitive ones masked unless the
// current role holds the table's unmasked capability. It is owned by the masker role,
// so developers read the base table only through it.
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
			literal(r.Unmasked(t.Name)), ident(c.name), maskExpr(ident(c.name), c.typ, mask), ident(c.name)))
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
		fmt.Sprintf(`ALTER VIEW %s OWNER TO %s`, qv, ident(r.masker())),
		fmt.Sprintf(`GRANT SELECT ON %s TO %s`, qv, ident(r.Developer())),
	}
	for _, s := range stmts {
		if err := m.exec(s); err != nil {
			return err
		}
	}
	return nil
}

// maskExpr is the SQL that replaces col for someone without the unmasked capability.
func maskExpr(col, typ string, mask policy.Mask) string {
	switch mask.Kind {
	case policy.MaskRedact:
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN NULL ELSE '[redacted]'::text END", col)
	case policy.MaskPartial:
		// Values too short to hide anything are redacted whole.
		return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL WHEN length(%[1]s) <= %[4]d THEN '***'::text ELSE left(%[1]s, %[2]d) || '***' || right(%[1]s, %[3]d) END",
			col, mask.KeepFirst, mask.KeepLast, 2*(mask.KeepFirst+mask.KeepLast))
	case policy.MaskHash:
		return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL ELSE 'h:' || left(encode(sha256("+
			"(SELECT outer_key FROM airlock.masking_key) || sha256((SELECT inner_key FROM airlock.masking_key) || convert_to(%[1]s::text, 'UTF8'))), 'hex'), 20) END", col)
	default:
		return "NULL::" + typ
	}
}

func (m *migration) writePrivileges(t *policy.Table, cols []column) error {
	r := m.roles
	role := ident(r.Write(t.Name))
	qt := ident("public", t.Name)
	var readable, writable []string
	for _, c := range cols {
		if _, sensitive := t.Masked[c.name]; !sensitive {
			readable = append(readable, ident(c.name))
		}
	}
	for _, c := range t.Write.Columns {
		found := slices.ContainsFunc(cols, func(col column) bool { return col.name == c })
		if !found {
			return fmt.Errorf("writable column %s does not exist", c)
		}
		writable = append(writable, ident(c))
	}
	list := strings.Join(writable, ", ")
	stmts := []string{
		fmt.Sprintf(`GRANT USAGE ON SCHEMA public TO %s`, role),
		// Reading the non-sensitive columns lets a WHERE clause find rows; reading
		// sensitive ones needs the unmasked capability as well.
		fmt.Sprintf(`GRANT SELECT (%s) ON %s TO %s`, strings.Join(readable, ", "), qt, role),
	}
	if t.Write.Insert {
		stmts = append(stmts, fmt.Sprintf(`GRANT INSERT (%s) ON %s TO %s`, list, qt, role))
	}
	if t.Write.Update {
		stmts = append(stmts, fmt.Sprintf(`GRANT UPDATE (%s) ON %s TO %s`, list, qt, role))
	}
	for _, s := range stmts {
		if err := m.exec(s); err != nil {
			return err
		}
	}
	if t.Write.Insert {
		// Defaults such as a serial id call nextval on the table's own sequences.
		rows, err := m.tx.Query(m.ctx, `
			SELECT pg_get_serial_sequence($1, a.attname)
			  FROM pg_attribute a
			 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
			   AND pg_get_serial_sequence($1, a.attname) IS NOT NULL`, "public."+t.Name)
		if err != nil {
			return fmt.Errorf("finding sequences: %w", err)
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("finding sequences: %w", err)
		}
		for _, s := range seqs {
			if err := m.exec(fmt.Sprintf(`GRANT USAGE ON SEQUENCE %s TO %s`, s, role)); err != nil {
				return err
			}
		}
	}
	return nil
}

// triggers installs the before-image and row-limit triggers on a writable table, and
// removes them from a table that is no longer writable. They fire only for developers'
// roles, whose names start with the prefix and "u_", so the application's own writes
// pay nothing.
func (m *migration) triggers(t *policy.Table) error {
	qt := ident("public", t.Name)
	stmts := []string{
		fmt.Sprintf(`DROP TRIGGER IF EXISTS airlock_capture ON %s`, qt),
		fmt.Sprintf(`DROP TRIGGER IF EXISTS airlock_limit_update ON %s`, qt),
		fmt.Sprintf(`DROP TRIGGER IF EXISTS airlock_limit_insert ON %s`, qt),
	}
	if t.Write != nil {
		when := fmt.Sprintf("WHEN (starts_with(current_user::text, %s))", literal(m.roles.Prefix+"u_"))
		stmts = append(stmts,
			fmt.Sprintf(`CREATE TRIGGER airlock_capture AFTER INSERT OR UPDATE ON %s FOR EACH ROW %s EXECUTE FUNCTION airlock.capture_write()`, qt, when),
			fmt.Sprintf(`CREATE TRIGGER airlock_limit_update AFTER UPDATE ON %s REFERENCING NEW TABLE AS changed FOR EACH STATEMENT %s EXECUTE FUNCTION airlock.enforce_write_limit(%s)`, qt, when, literal(fmt.Sprint(t.Write.MaxRows))),
			fmt.Sprintf(`CREATE TRIGGER airlock_limit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS changed FOR EACH STATEMENT %s EXECUTE FUNCTION airlock.enforce_write_limit(%s)`, qt, when, literal(fmt.Sprint(t.Write.MaxRows))),
		)
	}
	for _, s := range stmts {
		if err := m.exec(s); err != nil {
			return err
		}
	}
	return nil
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
	for _, v := range views {
		if _, ok := m.pol.Tables[v]; !ok {
			if err := m.exec(fmt.Sprintf(`DROP VIEW %s`, ident("masked", v))); err != nil {
				return err
			}
		}
	}
	return nil
}

// groupPrivileges gives each function's group exactly what that function does.
func (m *migration) groupPrivileges() error {
	r := m.roles
	grants := map[string][]string{
		GroupQuery: {
			`SELECT ON airlock.grants, airlock.developers, airlock.write_images, airlock.access_requests`,
			`SELECT, INSERT, DELETE ON airlock.denials`,
			`SELECT, INSERT ON airlock.reverts`,
			`EXECUTE ON FUNCTION airlock.sync_developer(text)`,
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
			`EXECUTE ON FUNCTION airlock.sync_developer(text), airlock.terminate_grant_sessions(bigint[])`,
		},
		GroupSweeper: {
			`SELECT, UPDATE ON airlock.access_requests, airlock.grants`,
			`SELECT ON airlock.approvals`,
			`EXECUTE ON FUNCTION airlock.sync_developer(text), airlock.terminate_grant_sessions(bigint[])`,
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
		}
		for _, priv := range append(common, grants[g]...) {
			if err := m.exec(fmt.Sprintf(`GRANT %s TO %s`, priv, role)); err != nil {
				return err
			}
		}
	}
	return nil
}

package sqlguard

import "testing"

// TestForbidden tries to hide an attempt at what Airlock never allows behind a rule that
// fires first, so that security alerting would miss it.
func TestForbidden(t *testing.T) {
	g := New(demoCatalog())
	tcs := []struct {
		desc, sql string
		perms     Permissions
		want      string
	}{
		{desc: "plain DELETE", sql: `DELETE FROM trades`, want: ForbiddenDelete},
		{desc: "DELETE in write mode", sql: `DELETE FROM accounts WHERE id = 1`, perms: writeGranted, want: ForbiddenDelete},
		{desc: "DELETE in a CTE", sql: `WITH x AS (DELETE FROM trades RETURNING 1) SELECT * FROM x`, want: ForbiddenDelete},
		{desc: "DELETE in a CTE of an allowed write", sql: `WITH x AS (DELETE FROM trades RETURNING id) UPDATE accounts SET currency = 'EUR' WHERE id IN (SELECT id FROM x)`, perms: writeGranted, want: ForbiddenDelete},
		{desc: "DELETE under EXPLAIN ANALYZE", sql: `EXPLAIN ANALYZE DELETE FROM trades`, want: ForbiddenDelete},
		{desc: "DELETE under EXPLAIN", sql: `EXPLAIN DELETE FROM trades`, want: ForbiddenDelete},
		{desc: "DELETE as a second statement", sql: `SELECT 1; DELETE FROM trades`, want: ForbiddenDelete},
		{desc: "DELETE behind a comment", sql: "/* maintenance */ DELETE FROM trades -- ok", want: ForbiddenDelete},
		{desc: "TRUNCATE", sql: `TRUNCATE trades, users CASCADE`, want: ForbiddenTruncate},
		{desc: "MERGE", sql: `MERGE INTO accounts a USING trades t ON a.id = t.id WHEN MATCHED THEN DELETE`, perms: writeGranted, want: ForbiddenMerge},
		{desc: "DROP TABLE", sql: `DROP TABLE users`, want: ForbiddenDDL},
		{desc: "ALTER TABLE", sql: `ALTER TABLE accounts DISABLE TRIGGER ALL`, want: ForbiddenDDL},
		{desc: "CREATE FUNCTION", sql: `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`, want: ForbiddenDDL},
		{desc: "CREATE TABLE AS under EXPLAIN ANALYZE", sql: `EXPLAIN ANALYZE CREATE TABLE leak AS SELECT * FROM users`, want: ForbiddenDDL},
		{desc: "DDL after a read", sql: `SELECT 1; DROP TABLE users`, want: ForbiddenDDL},
		{desc: "GRANT", sql: `GRANT SELECT ON users TO PUBLIC`, want: ForbiddenPrivilege},
		{desc: "CREATE ROLE", sql: `CREATE ROLE x SUPERUSER`, want: ForbiddenPrivilege},
		{desc: "SET ROLE", sql: `SET ROLE airlock_admin`, want: ForbiddenPrivilege},
		{desc: "SET LOCAL ROLE", sql: `SET LOCAL ROLE airlock_u_dev2`, want: ForbiddenPrivilege},
		{desc: "RESET ROLE", sql: `RESET ROLE`, want: ForbiddenPrivilege},
		{desc: "SET SESSION AUTHORIZATION", sql: `SET SESSION AUTHORIZATION postgres`, want: ForbiddenPrivilege},
		{desc: "set_config role", sql: `SELECT set_config('role', 'airlock_admin', false)`, want: ForbiddenPrivilege},
		{desc: "set_config role in upper case", sql: `SELECT pg_catalog.set_config(' ROLE', 'x', true)`, want: ForbiddenPrivilege},
		{desc: "set_config with a computed name", sql: `SELECT set_config(lower('ROLE'), 'x', false)`, want: ForbiddenPrivilege},
		{desc: "set_config in a subquery", sql: `SELECT (SELECT set_config('session_authorization', 'x', false)) FROM trades`, want: ForbiddenPrivilege},

		// Refused, but not what alerting calls forbidden: no false alarms.
		{desc: "set_config of another setting", sql: `SELECT set_config('search_path', 'public', false)`},
		{desc: "SET statement_timeout", sql: `SET statement_timeout = 0`},
		{desc: "COPY", sql: `COPY users TO STDOUT`},
		{desc: "pg_sleep", sql: `SELECT pg_sleep(10)`},
		{desc: "UPDATE in read mode", sql: `UPDATE accounts SET currency = 'EUR' WHERE id = 1`},
		{desc: "INSERT in a CTE", sql: `WITH x AS (INSERT INTO trades (fee) VALUES (1) RETURNING 1) SELECT * FROM x`},
		{desc: "a parse error", sql: `DELETE FRM trades`},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			p := tc.perms
			if p.Mode == Read && p.Write == nil {
				p = readNoGrants
			}
			d := g.Check(tc.sql, p)
			if d.Allowed {
				t.Fatalf("when checking %q, want it denied, got allowed", tc.sql)
			}
			if d.Forbidden != tc.want {
				t.Errorf("when checking %q (denied by %s), want Forbidden = %q, got = %q", tc.sql, d.Rule, tc.want, d.Forbidden)
			}
		})
	}

	// An allowed statement never carries Forbidden.
	if d := g.Check(`SELECT id FROM trades WHERE id = 1`, readNoGrants); !d.Allowed || d.Forbidden != "" {
		t.Errorf("when checking a plain read, want allowed with Forbidden = \"\", got allowed = %v, Forbidden = %q", d.Allowed, d.Forbidden)
	}
}

package sqlguard

import (
	"strings"
	"testing"
)

// Permission sets for the rule tests.
var (
	// writeMasked: insert+update on withdrawals and accounts, no unmasked grant.
	writeMasked = Permissions{Mode: Write, Write: map[string]WriteGrant{
		"withdrawals": {Insert: true, Update: true},
		"accounts":    {Insert: true, Update: true},
	}}
	writeInsertOnly = Permissions{Mode: Write, Write: map[string]WriteGrant{"withdrawals": {Insert: true}}}
	writeUpdateOnly = Permissions{Mode: Write, Write: map[string]WriteGrant{"withdrawals": {Update: true}}}
	writeNeither    = Permissions{Mode: Write, Write: map[string]WriteGrant{"withdrawals": {}}}
	// writeTrades: a full grant on trades, as in the write-grant-abuse corpus.
	writeTrades  = Permissions{Mode: Write, Write: map[string]WriteGrant{"trades": {Insert: true, Update: true}}}
	readUnmasked = Permissions{Mode: Read, Unmasked: map[string]bool{"users": true}}
)

// permissiveCatalog makes every trades column writable and locks users
// against writes, so that the write-grant-abuse tests reach the rules that
// matter (other tables, sensitive reads) rather than the column list.
func permissiveCatalog() Catalog {
	cat := demoCatalog()
	for i := range cat.Tables {
		switch cat.Tables[i].Name {
		case "trades":
			cat.Tables[i].WritableColumns = []string{"user_id", "pair", "side", "price", "quantity", "fee", "executed_at"}
		case "users":
			cat.Tables[i].WritableColumns = nil
		}
	}
	return cat
}

type ruleCase struct {
	desc string
	sql  string
	p    Permissions
	want string // rule id, or "" for allowed
	cat  func() Catalog
}

func ruleCases() []ruleCase {
	deep := func(open, mid, close string, n int) string {
		return "SELECT " + strings.Repeat(open, n) + mid + strings.Repeat(close, n)
	}
	R, W := readNoGrants, writeMasked
	return []ruleCase{
		// input_too_large
		{desc: "over the byte limit", sql: "SELECT 1 -- " + strings.Repeat("x", DefaultMaxBytes), p: R, want: RuleInputTooLarge},
		{desc: "over the byte limit in write mode", sql: "UPDATE withdrawals SET status = '" + strings.Repeat("x", DefaultMaxBytes) + "' WHERE id = 1", p: W, want: RuleInputTooLarge},
		{desc: "just under the byte limit", sql: "SELECT 1" + strings.Repeat(" ", DefaultMaxBytes-8), p: R},

		// input_too_deep
		{desc: "65 nested parentheses", sql: deep("(", "1", ")", 65), p: R, want: RuleInputTooDeep},
		{desc: "64 nested parentheses are fine", sql: deep("(", "1", ")", 64), p: R},
		{desc: "nested brackets", sql: deep("ARRAY[", "1", "]", 70), p: R, want: RuleInputTooDeep},
		{desc: "nested scalar subqueries", sql: deep("(SELECT ", "1", ")", 70), p: R, want: RuleInputTooDeep},
		{desc: "501 additions", sql: "SELECT 1" + strings.Repeat("+1", 501), p: R, want: RuleInputTooDeep},
		{desc: "NOT chain without parentheses", sql: "SELECT " + strings.Repeat("NOT ", 600) + "true", p: R, want: RuleInputTooDeep},
		{desc: "lower-case not chain", sql: "select " + strings.Repeat("not ", 600) + "true", p: R, want: RuleInputTooDeep},
		{desc: "nested CASE without parentheses", sql: "SELECT " + strings.Repeat("CASE WHEN true THEN ", 300) + "1" + strings.Repeat(" END", 300), p: R, want: RuleInputTooDeep},
		{desc: "cast chain", sql: "SELECT 1" + strings.Repeat("::int", 501), p: R, want: RuleInputTooDeep},
		{desc: "UNION chain", sql: "SELECT 1" + strings.Repeat(" UNION SELECT 1", 501), p: R, want: RuleInputTooDeep},
		{desc: "JOIN chain", sql: "SELECT 1 FROM trades t0" + strings.Repeat(" JOIN trades USING (id)", 501), p: R, want: RuleInputTooDeep},
		{desc: "parentheses inside a string literal are not nesting", sql: "SELECT '" + strings.Repeat("(", 200) + "'", p: R},
		{desc: "operators inside a comment are not operators", sql: "SELECT 1 /* " + strings.Repeat("+", 600) + " */", p: R},
		{desc: "deep nesting after a dollar-quoted string", sql: "SELECT $q$ ' $q$, " + strings.Repeat("(", 70) + "1" + strings.Repeat(")", 70), p: R, want: RuleInputTooDeep},
		{desc: "deep nesting hidden behind a quote in a comment", sql: "SELECT 1 -- '\n, " + strings.Repeat("(", 70) + "1" + strings.Repeat(")", 70), p: R, want: RuleInputTooDeep},

		// invalid_input
		{desc: "NUL byte hides a second statement from C", sql: "SELECT 1\x00; DELETE FROM trades", p: R, want: RuleInvalidInput},
		{desc: "invalid UTF-8", sql: "SELECT '\xff'", p: R, want: RuleInvalidInput},

		// empty_statement
		{desc: "empty", sql: "", p: R, want: RuleEmptyStatement},
		{desc: "whitespace and CR", sql: " \t\r\n ", p: R, want: RuleEmptyStatement},
		{desc: "line comment only", sql: "-- SELECT 1", p: R, want: RuleEmptyStatement},
		{desc: "block comment only", sql: "/* SELECT 1 */", p: R, want: RuleEmptyStatement},
		{desc: "semicolons only", sql: " ; ;; ", p: R, want: RuleEmptyStatement},

		// multiple_statements
		{desc: "two selects", sql: "SELECT 1; SELECT 2", p: R, want: RuleMultipleStatements},
		{desc: "CR ends a line comment", sql: "SELECT 1 --\r; DELETE FROM trades", p: R, want: RuleMultipleStatements},
		{desc: "dollar quote then write", sql: "SELECT $$;$$; DELETE FROM trades", p: R, want: RuleMultipleStatements},
		{desc: "COMMIT then write", sql: "commit; update accounts set balance = 0 where id = 1", p: W, want: RuleMultipleStatements},
		{desc: "empty statements between", sql: "SELECT 1;;SELECT 2", p: R, want: RuleMultipleStatements},
		{desc: "trailing semicolons are one statement", sql: "SELECT 1;;; ", p: R},
		{desc: "write then read in write mode", sql: "UPDATE withdrawals SET status = 'x' WHERE id = 1; SELECT 1", p: W, want: RuleMultipleStatements},

		// parse_error
		{desc: "typo", sql: "SELEC 1", p: R, want: RuleParseError},
		{desc: "unterminated string", sql: "SELECT 'abc", p: R, want: RuleParseError},
		{desc: "unbalanced parenthesis", sql: "SELECT (1", p: R, want: RuleParseError},

		// ambiguous_literal
		{desc: "backslash in a standard string (A179)", sql: `SELECT 'a\', ' , (SELECT string_agg(email, chr(44)) FROM users) -- ', 'z'`, p: R, want: RuleAmbiguousLiteral},
		{desc: "backslash in an N'' string", sql: `SELECT n'a\'`, p: R, want: RuleAmbiguousLiteral},
		{desc: "backslash in a continued string", sql: "SELECT 'x'\n'y\\'", p: R, want: RuleAmbiguousLiteral},
		{desc: "backslash in a LIKE pattern", sql: `SELECT id FROM trades WHERE pair LIKE 'BTC\_%'`, p: R, want: RuleAmbiguousLiteral},
		{desc: "non-ASCII in E'' (A181)", sql: `SELECT E'ĉ\' , (SELECT string_agg(phone, chr(44)) FROM users) -- '`, p: R, want: RuleAmbiguousLiteral},
		{desc: "lower-case e'' with non-ASCII", sql: `select e'é'`, p: R, want: RuleAmbiguousLiteral},
		{desc: "backslash string in a write", sql: `UPDATE withdrawals SET status = 'a\' WHERE id = 1`, p: W, want: RuleAmbiguousLiteral},
		{desc: "ASCII E'' with escapes is fine", sql: `SELECT E'a\\b\n'`, p: R},
		{desc: "non-ASCII standard string is fine", sql: `SELECT 'ĉé'`, p: R},
		{desc: "backslash in a dollar quote is fine", sql: `SELECT $$a\b$$`, p: R},
		{desc: "backslash in a comment is fine", sql: "-- C:\\temp\nSELECT 1", p: R},

		// statement_not_allowed
		{desc: "SET", sql: "SET statement_timeout = 0", p: R, want: RuleStatementNotAllowed},
		{desc: "SET LOCAL after a comment", sql: "/* hi */ set local search_path = pg_temp", p: R, want: RuleStatementNotAllowed},
		{desc: "SET TRANSACTION", sql: "SET TRANSACTION READ WRITE", p: W, want: RuleStatementNotAllowed},
		{desc: "RESET ALL", sql: "RESET ALL", p: R, want: RuleStatementNotAllowed},
		{desc: "SHOW", sql: "SHOW search_path", p: R, want: RuleStatementNotAllowed},
		{desc: "COPY TO PROGRAM", sql: "COPY (SELECT 1) TO PROGRAM 'id'", p: R, want: RuleStatementNotAllowed},
		{desc: "COPY FROM in write mode", sql: "COPY withdrawals (status) FROM STDIN", p: W, want: RuleStatementNotAllowed},
		{desc: "DO", sql: "DO $$ BEGIN PERFORM 1; END $$", p: R, want: RuleStatementNotAllowed},
		{desc: "CALL", sql: "CALL p()", p: W, want: RuleStatementNotAllowed},
		{desc: "PREPARE", sql: "PREPARE s AS SELECT email FROM users", p: R, want: RuleStatementNotAllowed},
		{desc: "EXECUTE", sql: "EXECUTE s", p: R, want: RuleStatementNotAllowed},
		{desc: "DEALLOCATE", sql: "DEALLOCATE ALL", p: R, want: RuleStatementNotAllowed},
		{desc: "DECLARE", sql: "DECLARE c CURSOR WITH HOLD FOR SELECT 1", p: R, want: RuleStatementNotAllowed},
		{desc: "FETCH", sql: "FETCH ALL FROM c", p: R, want: RuleStatementNotAllowed},
		{desc: "MOVE", sql: "MOVE NEXT IN c", p: R, want: RuleStatementNotAllowed},
		{desc: "CLOSE", sql: "CLOSE c", p: R, want: RuleStatementNotAllowed},
		{desc: "LISTEN", sql: "LISTEN x", p: R, want: RuleStatementNotAllowed},
		{desc: "UNLISTEN", sql: "UNLISTEN *", p: R, want: RuleStatementNotAllowed},
		{desc: "NOTIFY", sql: "NOTIFY x, 'y'", p: R, want: RuleStatementNotAllowed},
		{desc: "LOAD", sql: "LOAD 'auto_explain'", p: R, want: RuleStatementNotAllowed},
		{desc: "LOCK", sql: "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE", p: W, want: RuleStatementNotAllowed},
		{desc: "VACUUM", sql: "VACUUM FULL accounts", p: R, want: RuleStatementNotAllowed},
		{desc: "ANALYZE", sql: "analyse users", p: R, want: RuleStatementNotAllowed},
		{desc: "CLUSTER", sql: "CLUSTER accounts", p: R, want: RuleStatementNotAllowed},
		{desc: "REINDEX", sql: "REINDEX TABLE accounts", p: R, want: RuleStatementNotAllowed},
		{desc: "CHECKPOINT", sql: "CHECKPOINT", p: R, want: RuleStatementNotAllowed},
		{desc: "BEGIN", sql: "BEGIN", p: R, want: RuleStatementNotAllowed},
		{desc: "START TRANSACTION READ WRITE", sql: "START TRANSACTION READ WRITE", p: R, want: RuleStatementNotAllowed},
		{desc: "COMMIT", sql: "COMMIT", p: W, want: RuleStatementNotAllowed},
		{desc: "END", sql: "END", p: R, want: RuleStatementNotAllowed},
		{desc: "ABORT", sql: "ABORT", p: R, want: RuleStatementNotAllowed},
		{desc: "SAVEPOINT", sql: "SAVEPOINT s", p: R, want: RuleStatementNotAllowed},
		{desc: "PREPARE TRANSACTION", sql: "PREPARE TRANSACTION 'x'", p: R, want: RuleStatementNotAllowed},
		{desc: "DISCARD", sql: "DISCARD ALL", p: R, want: RuleStatementNotAllowed},
		{desc: "SET CONSTRAINTS", sql: "SET CONSTRAINTS ALL DEFERRED", p: W, want: RuleStatementNotAllowed},
		{desc: "EXPLAIN of INSERT", sql: "EXPLAIN INSERT INTO trades (fee) VALUES (1)", p: R, want: RuleStatementNotAllowed},
		{desc: "EXPLAIN EXECUTE", sql: "EXPLAIN EXECUTE s", p: R, want: RuleStatementNotAllowed},

		// delete_forbidden / truncate_forbidden / merge_forbidden
		{desc: "DELETE", sql: "DELETE FROM trades", p: R, want: RuleDeleteForbidden},
		{desc: "DELETE with every grant", sql: "delete from withdrawals where id = 1", p: writeGranted, want: RuleDeleteForbidden},
		{desc: "DELETE behind a WITH", sql: "WITH x AS (SELECT 1) DELETE FROM withdrawals USING x", p: W, want: RuleDeleteForbidden},
		{desc: "EXPLAIN DELETE", sql: "EXPLAIN DELETE FROM trades", p: R, want: RuleDeleteForbidden},
		{desc: "TRUNCATE", sql: "TRUNCATE trades", p: R, want: RuleTruncateForbidden},
		{desc: "TRUNCATE ONLY with grants", sql: "truncate only withdrawals", p: writeGranted, want: RuleTruncateForbidden},
		{desc: "MERGE with grants", sql: "MERGE INTO withdrawals w USING (VALUES (1)) v(id) ON w.id = v.id WHEN MATCHED THEN UPDATE SET status = 'x'", p: writeGranted, want: RuleMergeForbidden},

		// ddl_forbidden
		{desc: "CREATE TEMP TABLE", sql: "CREATE TEMP TABLE t (x int)", p: R, want: RuleDDLForbidden},
		{desc: "CREATE TABLE AS", sql: "CREATE TABLE t AS SELECT email FROM users", p: W, want: RuleDDLForbidden},
		{desc: "EXPLAIN CREATE TABLE AS", sql: "EXPLAIN CREATE TABLE t AS SELECT 1", p: R, want: RuleDDLForbidden},
		{desc: "CREATE INDEX", sql: "CREATE INDEX ON trades (fee)", p: R, want: RuleDDLForbidden},
		{desc: "CREATE FUNCTION", sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", p: R, want: RuleDDLForbidden},
		{desc: "CREATE VIEW", sql: "CREATE VIEW v AS SELECT 1", p: R, want: RuleDDLForbidden},
		{desc: "CREATE MATERIALIZED VIEW", sql: "create materialized view v as select 1", p: R, want: RuleDDLForbidden},
		{desc: "REFRESH MATERIALIZED VIEW", sql: "REFRESH MATERIALIZED VIEW v", p: R, want: RuleDDLForbidden},
		{desc: "ALTER TABLE", sql: "ALTER TABLE accounts DISABLE TRIGGER ALL", p: writeGranted, want: RuleDDLForbidden},
		{desc: "DROP TABLE", sql: "DROP TABLE IF EXISTS trades", p: R, want: RuleDDLForbidden},
		{desc: "ALTER SYSTEM", sql: "ALTER SYSTEM SET log_statement = 'none'", p: R, want: RuleDDLForbidden},
		{desc: "CREATE EXTENSION", sql: "CREATE EXTENSION dblink", p: R, want: RuleDDLForbidden},
		{desc: "COMMENT ON", sql: "COMMENT ON TABLE trades IS 'x'", p: R, want: RuleDDLForbidden},
		{desc: "CREATE SEQUENCE", sql: "CREATE SEQUENCE s", p: R, want: RuleDDLForbidden},

		// privilege_change_forbidden
		{desc: "GRANT", sql: "GRANT SELECT ON users TO PUBLIC", p: R, want: RulePrivilegeChangeForbidden},
		{desc: "REVOKE", sql: "REVOKE ALL ON users FROM PUBLIC", p: writeGranted, want: RulePrivilegeChangeForbidden},
		{desc: "GRANT role", sql: "GRANT airlock_unmasked_users TO me", p: R, want: RulePrivilegeChangeForbidden},
		{desc: "CREATE ROLE", sql: "CREATE ROLE x SUPERUSER", p: R, want: RulePrivilegeChangeForbidden},
		{desc: "ALTER ROLE SET", sql: "ALTER ROLE x SET default_transaction_read_only = off", p: R, want: RulePrivilegeChangeForbidden},
		{desc: "DROP ROLE", sql: "DROP ROLE x", p: R, want: RulePrivilegeChangeForbidden},
		{desc: "ALTER DEFAULT PRIVILEGES", sql: "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC", p: R, want: RulePrivilegeChangeForbidden},
		{desc: "SET ROLE", sql: "SET ROLE postgres", p: R, want: RulePrivilegeChangeForbidden},
		{desc: "SET LOCAL ROLE", sql: "set local role airlock_unmasked_users", p: W, want: RulePrivilegeChangeForbidden},
		{desc: "RESET ROLE", sql: "RESET ROLE", p: R, want: RulePrivilegeChangeForbidden},
		{desc: "SET SESSION AUTHORIZATION", sql: "SET SESSION AUTHORIZATION DEFAULT", p: R, want: RulePrivilegeChangeForbidden},

		// write_requires_write_mode / write_mode_requires_write
		{desc: "UPDATE in read mode", sql: "UPDATE withdrawals SET status = 'x' WHERE id = 1", p: R, want: RuleWriteRequiresWriteMode},
		{desc: "INSERT in read mode even with grants", sql: "INSERT INTO withdrawals (status) VALUES ('x')", p: Permissions{Mode: Read, Write: writeGranted.Write}, want: RuleWriteRequiresWriteMode},
		{desc: "data-modifying WITH + UPDATE in read mode", sql: "WITH x AS (UPDATE trades SET fee = 0 WHERE id = 1 RETURNING 1) UPDATE accounts SET balance = 0 WHERE id = 1", p: R, want: RuleWriteRequiresWriteMode},
		{desc: "SELECT in write mode", sql: "SELECT 1", p: W, want: RuleWriteModeRequiresWrite},
		{desc: "VALUES in write mode", sql: "VALUES (1)", p: W, want: RuleWriteModeRequiresWrite},
		{desc: "TABLE in write mode", sql: "TABLE withdrawals", p: W, want: RuleWriteModeRequiresWrite},
		{desc: "EXPLAIN in write mode", sql: "EXPLAIN SELECT 1", p: W, want: RuleWriteModeRequiresWrite},

		// explain_analyze / explain_option
		{desc: "EXPLAIN ANALYZE", sql: "EXPLAIN ANALYZE SELECT 1", p: R, want: RuleExplainAnalyze},
		{desc: "British spelling", sql: "explain analyse select 1", p: R, want: RuleExplainAnalyze},
		{desc: "option list", sql: "EXPLAIN (ANALYZE) SELECT 1", p: R, want: RuleExplainAnalyze},
		{desc: "boolean option", sql: "EXPLAIN (FORMAT JSON, ANALYZE true) SELECT 1", p: R, want: RuleExplainAnalyze},
		{desc: "ANALYZE off is still refused", sql: "EXPLAIN (ANALYZE off) SELECT 1", p: R, want: RuleExplainAnalyze},
		{desc: "quoted option name", sql: `EXPLAIN ("analyze") SELECT 1`, p: R, want: RuleExplainAnalyze},
		{desc: "ANALYZE VERBOSE", sql: "EXPLAIN ANALYZE VERBOSE SELECT 1", p: R, want: RuleExplainAnalyze},
		{desc: "EXPLAIN ANALYZE of SELECT INTO", sql: "EXPLAIN ANALYZE SELECT * INTO t FROM users", p: R, want: RuleExplainAnalyze},
		{desc: "BUFFERS", sql: "EXPLAIN (BUFFERS) SELECT 1", p: R, want: RuleExplainOption},
		{desc: "TIMING", sql: "EXPLAIN (costs off, timing on) SELECT 1", p: R, want: RuleExplainOption},
		{desc: "GENERIC_PLAN", sql: "EXPLAIN (GENERIC_PLAN) SELECT $1", p: R, want: RuleExplainOption},
		{desc: "WAL", sql: "EXPLAIN (WAL) SELECT 1", p: R, want: RuleExplainOption},
		{desc: "allowed options", sql: "EXPLAIN (COSTS OFF, VERBOSE, FORMAT YAML, SETTINGS) SELECT id FROM trades", p: R},

		// node_not_allowed
		{desc: "DEFAULT in a read", sql: "VALUES (DEFAULT)", p: R, want: RuleNodeNotAllowed},
		{desc: "DEFAULT in a subquery", sql: "SELECT * FROM (VALUES (1), (DEFAULT)) v", p: R, want: RuleNodeNotAllowed},
		{desc: "WHERE CURRENT OF names no column", sql: "UPDATE withdrawals SET status = 'x' WHERE CURRENT OF c", p: W, want: RuleUpdateWhereConstant},

		// data_modifying_cte
		{desc: "DELETE in a CTE", sql: "WITH d AS (DELETE FROM trades RETURNING *) SELECT count(*) FROM d", p: R, want: RuleDataModifyingCTE},
		{desc: "INSERT in a CTE", sql: "with i as (insert into trades (fee) values (1) returning 1) select * from i", p: R, want: RuleDataModifyingCTE},
		{desc: "UPDATE in a CTE in a WHERE subquery", sql: "SELECT 1 WHERE EXISTS (WITH u AS (UPDATE accounts SET balance = 0 RETURNING 1) SELECT 1 FROM u)", p: R, want: RuleDataModifyingCTE},
		{desc: "DELETE in a CTE in LATERAL", sql: "SELECT * FROM trades t, LATERAL (WITH d AS (DELETE FROM trades RETURNING id) SELECT * FROM d) x", p: R, want: RuleDataModifyingCTE},
		{desc: "DELETE in a CTE under EXPLAIN", sql: "EXPLAIN WITH d AS (DELETE FROM trades RETURNING 1) SELECT * FROM d", p: R, want: RuleDataModifyingCTE},
		{desc: "write chained to another write (A320)", sql: "WITH x AS (UPDATE trades SET fee = fee WHERE id = 1 RETURNING user_id) UPDATE accounts SET currency = 'x' WHERE user_id IN (SELECT user_id FROM x)", p: writeGranted, want: RuleDataModifyingCTE},
		{desc: "DELETE in a CTE inside a write's subquery", sql: "UPDATE withdrawals SET status = (WITH d AS (DELETE FROM trades RETURNING 'x') SELECT * FROM d) WHERE id = 1", p: W, want: RuleDataModifyingCTE},

		// select_into
		{desc: "SELECT INTO", sql: "SELECT * INTO stolen FROM users", p: R, want: RuleSelectInto},
		{desc: "SELECT INTO TEMP", sql: "select 1 into temp t", p: R, want: RuleSelectInto},
		{desc: "SELECT INTO in a UNION", sql: "SELECT 1 INTO t UNION SELECT 2", p: R, want: RuleSelectInto},
		{desc: "EXPLAIN SELECT INTO", sql: "EXPLAIN SELECT * INTO t FROM trades", p: R, want: RuleSelectInto},

		// locking_clause
		{desc: "FOR UPDATE", sql: "SELECT id FROM withdrawals FOR UPDATE SKIP LOCKED", p: R, want: RuleLockingClause},
		{desc: "FOR SHARE", sql: "select id from trades for share", p: R, want: RuleLockingClause},
		{desc: "FOR KEY SHARE OF", sql: "SELECT t.id FROM trades t FOR KEY SHARE OF t NOWAIT", p: R, want: RuleLockingClause},
		{desc: "FOR NO KEY UPDATE in a subquery", sql: "SELECT * FROM (SELECT id FROM users FOR NO KEY UPDATE) s", p: R, want: RuleLockingClause},
		{desc: "FOR UPDATE in a CTE", sql: "WITH c AS (SELECT id FROM accounts FOR UPDATE) SELECT * FROM c", p: R, want: RuleLockingClause},
		{desc: "FOR UPDATE in a write's subquery", sql: "UPDATE withdrawals SET status = 'x' WHERE id = (SELECT id FROM withdrawals WHERE status = 'p' LIMIT 1 FOR UPDATE)", p: W, want: RuleLockingClause},

		// parameter_not_allowed
		{desc: "parameter", sql: "SELECT $1", p: R, want: RuleParameterNotAllowed},
		{desc: "parameter in a subquery", sql: "SELECT * FROM trades WHERE id IN (SELECT $1::bigint)", p: R, want: RuleParameterNotAllowed},
		{desc: "parameter in a write", sql: "UPDATE withdrawals SET status = $1 WHERE id = 1", p: W, want: RuleParameterNotAllowed},

		// function_not_allowed
		{desc: "pg_sleep", sql: "SELECT pg_sleep(1)", p: R, want: RuleFunctionNotAllowed},
		{desc: "pg_catalog-qualified", sql: "SELECT pg_catalog.pg_sleep(1)", p: R, want: RuleFunctionNotAllowed},
		{desc: "upper case", sql: "SELECT PG_SLEEP(1)", p: R, want: RuleFunctionNotAllowed},
		{desc: "quoted", sql: `SELECT "pg_sleep"(1)`, p: R, want: RuleFunctionNotAllowed},
		{desc: "U& escaped name", sql: `SELECT U&"\0070g_sleep"(1)`, p: R, want: RuleFunctionNotAllowed},
		{desc: "other schema, allowed name", sql: "SELECT public.lower('x')", p: R, want: RuleFunctionNotAllowed},
		{desc: "three-part name", sql: "SELECT a.pg_catalog.lower('x')", p: R, want: RuleFunctionNotAllowed},
		{desc: "in ORDER BY", sql: "SELECT id FROM trades ORDER BY pg_advisory_lock(1)", p: R, want: RuleFunctionNotAllowed},
		{desc: "in FILTER", sql: "SELECT count(*) FILTER (WHERE pg_try_advisory_lock(1)) FROM trades", p: R, want: RuleFunctionNotAllowed},
		{desc: "in a window", sql: "SELECT sum(fee) OVER (PARTITION BY pg_backend_pid()) FROM trades", p: R, want: RuleFunctionNotAllowed},
		{desc: "in JOIN ON", sql: "SELECT 1 FROM trades t JOIN accounts a ON pg_sleep(1) IS NULL", p: R, want: RuleFunctionNotAllowed},
		{desc: "in LATERAL", sql: "SELECT * FROM trades t, LATERAL (SELECT nextval('s')) x", p: R, want: RuleFunctionNotAllowed},
		{desc: "in ROWS FROM", sql: "SELECT * FROM ROWS FROM (generate_series(1, 2), pg_ls_dir('.'))", p: R, want: RuleFunctionNotAllowed},
		{desc: "in VALUES", sql: "VALUES (1), (txid_current())", p: R, want: RuleFunctionNotAllowed},
		{desc: "in a CTE", sql: "WITH c AS (SELECT set_config('role', 'x', false)) SELECT * FROM c", p: R, want: RuleFunctionNotAllowed},
		{desc: "in GROUP BY", sql: "SELECT count(*) FROM trades GROUP BY pg_backend_pid()", p: R, want: RuleFunctionNotAllowed},
		{desc: "in HAVING", sql: "SELECT pair FROM trades GROUP BY pair HAVING pg_sleep(1) IS NULL", p: R, want: RuleFunctionNotAllowed},
		{desc: "in LIMIT", sql: "SELECT 1 LIMIT pg_backend_pid()", p: R, want: RuleFunctionNotAllowed},
		{desc: "in a subscript", sql: "SELECT (ARRAY[1])[pg_backend_pid()]", p: R, want: RuleFunctionNotAllowed},
		{desc: "in a type modifier", sql: "SELECT 1::numeric(pg_backend_pid())", p: R, want: RuleFunctionNotAllowed},
		{desc: "in TABLESAMPLE arguments", sql: "SELECT * FROM trades TABLESAMPLE SYSTEM (pg_backend_pid())", p: R, want: RuleFunctionNotAllowed},
		{desc: "in XMLTABLE", sql: "SELECT * FROM XMLTABLE('/r' PASSING query_to_xml('select 1', true, false, '') COLUMNS a text)", p: R, want: RuleFunctionNotAllowed},
		{desc: "in COALESCE", sql: "SELECT COALESCE(NULL, current_setting('x'))", p: R, want: RuleFunctionNotAllowed},
		{desc: "nested in an allowed function", sql: "SELECT upper(version())", p: R, want: RuleFunctionNotAllowed},
		{desc: "under EXPLAIN", sql: "EXPLAIN SELECT pg_sleep(1)", p: R, want: RuleFunctionNotAllowed},
		{desc: "in a write's SET", sql: "UPDATE withdrawals SET status = pg_backend_pid()::text WHERE id = 1", p: W, want: RuleFunctionNotAllowed},
		{desc: "in a write's VALUES", sql: "INSERT INTO withdrawals (status) VALUES (nextval('s')::text)", p: W, want: RuleFunctionNotAllowed},
		{desc: "in RETURNING", sql: "UPDATE withdrawals SET status = 'x' WHERE id = 1 RETURNING pg_sleep(1)", p: W, want: RuleFunctionNotAllowed},
		{desc: "CURRENT_USER", sql: "SELECT current_user", p: R, want: RuleFunctionNotAllowed},
		{desc: "SESSION_USER", sql: "SELECT session_user", p: R, want: RuleFunctionNotAllowed},
		{desc: "CURRENT_SCHEMA", sql: "SELECT current_schema", p: R, want: RuleFunctionNotAllowed},
		{desc: "schema-qualified operator", sql: "SELECT 1 OPERATOR(public.+) 1", p: R, want: RuleFunctionNotAllowed},
		{desc: "pg_catalog operator is fine", sql: "SELECT 1 OPERATOR(pg_catalog.+) 1", p: R},
		{desc: "extension TABLESAMPLE method", sql: "SELECT * FROM trades TABLESAMPLE system_rows(10)", p: R, want: RuleFunctionNotAllowed},
		{desc: "clock functions are fine", sql: "SELECT now(), current_date, current_timestamp(3), localtimestamp, clock_timestamp()", p: R},
		{desc: "SQL-syntax functions are fine", sql: "SELECT extract(epoch FROM now()), substring('abc' FROM 2 FOR 1), trim(both ' ' FROM 'x'), position('b' IN 'abc'), now() AT TIME ZONE 'UTC', 'a' SIMILAR TO 'b', 'a' LIKE 'b' ESCAPE '!'", p: R},

		// cast_not_allowed
		{desc: "regclass cast", sql: "SELECT 'users'::regclass", p: R, want: RuleCastNotAllowed},
		{desc: "CAST AS regproc", sql: "SELECT CAST('now' AS regproc)", p: R, want: RuleCastNotAllowed},
		{desc: "typed literal", sql: "SELECT regtype 'int4'", p: R, want: RuleCastNotAllowed},
		{desc: "pg_catalog-qualified", sql: "SELECT 'x'::pg_catalog.regnamespace", p: R, want: RuleCastNotAllowed},
		{desc: "array of regclass", sql: "SELECT '{users}'::regclass[]", p: R, want: RuleCastNotAllowed},
		{desc: "internal array type name", sql: "SELECT '{users}'::_regclass", p: R, want: RuleCastNotAllowed},
		{desc: "quoted mixed case", sql: `SELECT 'x'::"RegRole"`, p: R, want: RuleCastNotAllowed},
		{desc: "column definition list", sql: `SELECT * FROM json_to_record('{"x":"pg_authid"}') AS t(x regclass)`, p: R, want: RuleCastNotAllowed},
		{desc: "regconfig", sql: "SELECT to_tsvector('simple'::regconfig, 'x')", p: R, want: RuleCastNotAllowed},
		{desc: "user schema type", sql: "SELECT 'x'::public.mytype", p: R, want: RuleCastNotAllowed},
		{desc: "in a write", sql: "UPDATE withdrawals SET status = 'accounts'::regclass::text WHERE id = 1", p: W, want: RuleCastNotAllowed},
		{desc: "ordinary casts are fine", sql: "SELECT '1'::int, 1::text, '2024-01-01'::date, '{1}'::int[], CAST(1 AS numeric(10,2)), 'x'::pg_catalog.text", p: R},

		// relation_not_allowed
		{desc: "unknown table", sql: "SELECT * FROM secrets", p: R, want: RuleRelationNotAllowed},
		{desc: "quoted upper case is another name", sql: `SELECT * FROM "Users"`, p: R, want: RuleRelationNotAllowed},
		{desc: "information_schema view unqualified", sql: "SELECT * FROM tables", p: R, want: RuleRelationNotAllowed},
		{desc: "TABLE on an unknown table", sql: "TABLE grants", p: R, want: RuleRelationNotAllowed},
		{desc: "CTE out of scope", sql: "SELECT * FROM (WITH c AS (SELECT 1) SELECT 1) s, c", p: R, want: RuleRelationNotAllowed},
		{desc: "forward reference in a non-recursive WITH", sql: "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", p: R, want: RuleRelationNotAllowed},
		{desc: "non-recursive self reference means the real relation", sql: "WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets", p: R, want: RuleRelationNotAllowed},
		{desc: "CTE shadowing a table is fine", sql: "WITH users AS (SELECT 1 AS id) SELECT id FROM users", p: R},
		{desc: "recursive forward reference is fine", sql: "WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", p: R},

		// system_catalog
		{desc: "pg_stats", sql: "SELECT * FROM pg_stats", p: R, want: RuleSystemCatalog},
		{desc: "upper case", sql: "SELECT * FROM PG_AUTHID", p: R, want: RuleSystemCatalog},
		{desc: "pg_catalog-qualified", sql: `SELECT * FROM "pg_catalog"."pg_class"`, p: R, want: RuleSystemCatalog},
		{desc: "information_schema", sql: "SELECT * FROM information_schema.tables", p: R, want: RuleSystemCatalog},
		{desc: "pg_temp schema", sql: "SELECT * FROM pg_temp.x", p: R, want: RuleSystemCatalog},
		{desc: "U& escaped name", sql: `SELECT * FROM U&"\0070g_authid"`, p: R, want: RuleSystemCatalog},
		{desc: "in a JOIN", sql: "SELECT 1 FROM trades t JOIN pg_stat_activity a ON true", p: R, want: RuleSystemCatalog},
		{desc: "in a scalar subquery", sql: "SELECT (SELECT count(*) FROM pg_locks)", p: R, want: RuleSystemCatalog},
		{desc: "in a CTE", sql: "WITH s AS (SELECT * FROM pg_settings) SELECT * FROM s", p: R, want: RuleSystemCatalog},
		{desc: "under EXPLAIN", sql: "EXPLAIN SELECT * FROM pg_authid", p: R, want: RuleSystemCatalog},
		{desc: "in a write's subquery", sql: "UPDATE withdrawals SET status = (SELECT rolname FROM pg_roles LIMIT 1) WHERE id = 1", p: W, want: RuleSystemCatalog},
		{desc: "CTE named like a catalog is fine", sql: "WITH pg_authid AS (SELECT 1 AS x) SELECT x FROM pg_authid", p: R},

		// schema_not_allowed
		{desc: "public.users", sql: "SELECT id FROM public.users", p: R, want: RuleSchemaNotAllowed},
		{desc: "upper case", sql: "SELECT id FROM PUBLIC.USERS", p: R, want: RuleSchemaNotAllowed},
		{desc: "quoted", sql: `SELECT id FROM "public"."users"`, p: R, want: RuleSchemaNotAllowed},
		{desc: "three-part name", sql: "SELECT id FROM db.public.users", p: R, want: RuleSchemaNotAllowed},
		{desc: "ONLY", sql: "SELECT wallet_address FROM ONLY public.deposits", p: R, want: RuleSchemaNotAllowed},
		{desc: "masked schema", sql: "SELECT * FROM masked.users", p: R, want: RuleSchemaNotAllowed},
		{desc: "TABLESAMPLE", sql: "SELECT * FROM public.deposits TABLESAMPLE SYSTEM (100)", p: R, want: RuleSchemaNotAllowed},
		{desc: "in a subquery", sql: "SELECT (SELECT max(balance) FROM public.accounts)", p: R, want: RuleSchemaNotAllowed},
		{desc: "qualified column", sql: "SELECT public.users.email FROM users", p: R, want: RuleSchemaNotAllowed},
		{desc: "write target", sql: "UPDATE public.withdrawals SET status = 'x' WHERE id = 1", p: W, want: RuleSchemaNotAllowed},

		// airlock_schema
		{desc: "airlock.grants", sql: "SELECT * FROM airlock.grants", p: R, want: RuleAirlockSchema},
		{desc: "upper case", sql: "SELECT * FROM AIRLOCK.approvals", p: R, want: RuleAirlockSchema},
		{desc: "three-part", sql: `SELECT * FROM db."airlock".developers`, p: R, want: RuleAirlockSchema},
		{desc: "write target", sql: "INSERT INTO airlock.grants (x) VALUES (1)", p: W, want: RuleAirlockSchema},

		// table_not_writable / no_write_grant / write_operation_not_granted
		{desc: "table without writable columns", sql: "UPDATE users SET country = 'JP' WHERE id = 1", p: Permissions{Mode: Write, Write: map[string]WriteGrant{"users": {Update: true}}}, want: RuleTableNotWritable, cat: permissiveCatalog},
		{desc: "no grant on the table", sql: "UPDATE trades SET fee = 0 WHERE id = 1", p: W, want: RuleNoWriteGrant},
		{desc: "grant with no operation", sql: "UPDATE withdrawals SET status = 'x' WHERE id = 1", p: writeNeither, want: RuleNoWriteGrant},
		{desc: "UPDATE under an insert grant", sql: "UPDATE withdrawals SET status = 'x' WHERE id = 1", p: writeInsertOnly, want: RuleWriteOperationNotGranted},
		{desc: "INSERT under an update grant", sql: "INSERT INTO withdrawals (status) VALUES ('x')", p: writeUpdateOnly, want: RuleWriteOperationNotGranted},
		{desc: "write to a system catalog", sql: "UPDATE pg_authid SET rolsuper = true WHERE rolname = 'me'", p: W, want: RuleSystemCatalog},
		{desc: "write to an unknown table", sql: "INSERT INTO secrets (x) VALUES (1)", p: W, want: RuleRelationNotAllowed},

		// update_without_where / update_where_constant
		{desc: "UPDATE without WHERE", sql: "UPDATE withdrawals SET status = 'x'", p: W, want: RuleUpdateWithoutWhere},
		{desc: "UPDATE without WHERE with RETURNING", sql: "update withdrawals set status = 'x' returning id", p: W, want: RuleUpdateWithoutWhere},
		{desc: "WHERE true", sql: "UPDATE withdrawals SET status = 'x' WHERE true", p: W, want: RuleUpdateWhereConstant},
		{desc: "WHERE 1=1", sql: "UPDATE withdrawals SET status = 'x' WHERE 1 = 1", p: W, want: RuleUpdateWhereConstant},
		{desc: "WHERE NOT false", sql: "UPDATE withdrawals SET status = 'x' WHERE NOT false", p: W, want: RuleUpdateWhereConstant},
		{desc: "WHERE EXISTS over the table", sql: "UPDATE withdrawals SET status = 'x' WHERE EXISTS (SELECT 1 FROM withdrawals w WHERE w.id = 1)", p: W, want: RuleUpdateWhereConstant},
		{desc: "WHERE scalar subquery", sql: "UPDATE withdrawals SET status = 'x' WHERE (SELECT true)", p: W, want: RuleUpdateWhereConstant},

		// write_reads_other_table
		{desc: "UPDATE ... FROM", sql: "UPDATE withdrawals SET status = 'x' FROM users u WHERE u.id = withdrawals.user_id", p: W, want: RuleWriteReadsOtherTable},
		{desc: "SET from another table", sql: "UPDATE withdrawals SET status = (SELECT email FROM users LIMIT 1) WHERE id = 1", p: W, want: RuleWriteReadsOtherTable},
		{desc: "WHERE over another table", sql: "UPDATE withdrawals SET status = 'x' WHERE user_id IN (SELECT id FROM users WHERE country = 'JP')", p: W, want: RuleWriteReadsOtherTable},
		{desc: "RETURNING subquery on users (A316)", sql: "INSERT INTO trades (user_id, pair, side, price, quantity, fee, executed_at) VALUES (1, 'BTC-USDT', 'buy', 1, 1, 0, now()) RETURNING (SELECT string_agg(email, ',') FROM users)", p: writeTrades, want: RuleWriteReadsOtherTable, cat: permissiveCatalog},
		{desc: "INSERT ... SELECT from users (A318)", sql: "INSERT INTO trades (user_id, pair, side, price, quantity, fee, executed_at) SELECT id, full_name, 'buy', 0, 0, 0, now() FROM users", p: writeTrades, want: RuleWriteReadsOtherTable, cat: permissiveCatalog},
		{desc: "plain WITH", sql: "WITH x AS (SELECT 1) UPDATE withdrawals SET status = 'x' WHERE id = 1", p: W, want: RuleWriteReadsOtherTable},
		{desc: "WITH in a subquery", sql: "UPDATE withdrawals SET status = (WITH c AS (SELECT 'x') SELECT * FROM c) WHERE id = 1", p: W, want: RuleWriteReadsOtherTable},
		{desc: "other table in a JOIN inside a subquery", sql: "UPDATE withdrawals SET status = (SELECT w.status FROM withdrawals w JOIN accounts a ON a.user_id = w.user_id LIMIT 1) WHERE id = 1", p: W, want: RuleWriteReadsOtherTable},
		{desc: "INSERT ... SELECT from another granted table", sql: "INSERT INTO withdrawals (status) SELECT currency FROM accounts", p: W, want: RuleWriteReadsOtherTable},
		{desc: "reading the target itself is fine", sql: "INSERT INTO withdrawals (status) SELECT status FROM withdrawals WHERE id = 1", p: W},

		// write_reads_sensitive_column
		{desc: "WHERE on a sensitive column", sql: "UPDATE withdrawals SET status = 'x' WHERE destination_address LIKE 'bc1%'", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "upper-case sensitive column", sql: "UPDATE withdrawals SET status = 'x' WHERE id = 1 AND DESTINATION_ADDRESS = 'a'", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "SET from a sensitive column", sql: "UPDATE withdrawals SET status = destination_address WHERE id = 1", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "RETURNING a sensitive column", sql: "UPDATE withdrawals SET status = 'x' WHERE id = 1 RETURNING destination_address", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "RETURNING *", sql: "INSERT INTO withdrawals (status) VALUES ('x') RETURNING *", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "RETURNING alias.*", sql: "UPDATE withdrawals w SET status = 'x' WHERE id = 1 RETURNING w.*", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "RETURNING whole row", sql: "UPDATE withdrawals w SET status = 'x' WHERE id = 1 RETURNING w", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "whole row cast to text", sql: "UPDATE withdrawals SET status = withdrawals::text WHERE id = 1", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "whole row through a function", sql: "UPDATE withdrawals SET status = 'x' WHERE id = 1 RETURNING row_to_json(withdrawals)", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "field of a whole row", sql: "UPDATE withdrawals w SET status = (w).destination_address WHERE id = 1", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "INSERT ... SELECT of a sensitive column", sql: "INSERT INTO withdrawals (status) SELECT destination_address FROM withdrawals", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "renamed by an alias column list", sql: "UPDATE withdrawals SET status = (SELECT x FROM withdrawals AS w(a, b, c, d, x) LIMIT 1) WHERE id = 1", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "through a derived table", sql: "UPDATE withdrawals SET status = (SELECT d FROM (SELECT destination_address AS d FROM withdrawals) s LIMIT 1) WHERE id = 1", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "correlated subquery reads the outer row", sql: "UPDATE accounts SET currency = (SELECT balance::text) WHERE id = 1", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "ON CONFLICT on a sensitive column", sql: "INSERT INTO withdrawals (status) VALUES ('x') ON CONFLICT (destination_address) DO NOTHING", p: W, want: RuleWriteReadsSensitiveColumn},
		{desc: "unmasked grant allows reading the target", sql: "UPDATE withdrawals SET status = 'x' WHERE destination_address LIKE 'bc1%' RETURNING *", p: writeGranted},

		// write_column_not_allowed
		{desc: "SET a non-writable column", sql: "UPDATE accounts SET balance = 0 WHERE id = 1", p: writeGranted, want: RuleWriteColumnNotAllowed},
		{desc: "quoted upper-case column", sql: `UPDATE withdrawals SET "STATUS" = 'x' WHERE id = 1`, p: W, want: RuleWriteColumnNotAllowed},
		{desc: "multi-assignment", sql: "UPDATE withdrawals SET (status, amount) = ('x', 1) WHERE id = 1", p: W, want: RuleWriteColumnNotAllowed},
		{desc: "multi-assignment from a subquery", sql: "UPDATE withdrawals SET (status, amount) = (SELECT 'x', 1) WHERE id = 1", p: W, want: RuleWriteColumnNotAllowed},
		{desc: "INSERT a non-writable column", sql: "INSERT INTO withdrawals (status, amount) VALUES ('x', 1)", p: W, want: RuleWriteColumnNotAllowed},

		// insert_columns_required
		{desc: "INSERT without columns", sql: "INSERT INTO withdrawals VALUES (1)", p: W, want: RuleInsertColumnsRequired},
		{desc: "DEFAULT VALUES", sql: "INSERT INTO withdrawals DEFAULT VALUES", p: W, want: RuleInsertColumnsRequired},
		{desc: "INSERT ... SELECT without columns", sql: "INSERT INTO withdrawals SELECT * FROM withdrawals", p: W, want: RuleInsertColumnsRequired},

		// on_conflict_update
		{desc: "ON CONFLICT DO UPDATE", sql: "INSERT INTO withdrawals (status) VALUES ('x') ON CONFLICT (id) DO UPDATE SET status = excluded.status", p: W, want: RuleOnConflictUpdate},
		{desc: "ON CONFLICT DO NOTHING is fine", sql: "INSERT INTO withdrawals AS w (status) VALUES ('x') ON CONFLICT (id) DO NOTHING RETURNING id, status", p: W},

		// value_too_large: a value the statement manufactures from almost nothing.
		{desc: "the issue's example (issue 11, finding 2)", sql: "SELECT cardinality(array_agg(repeat(repeat('x',1000),400000))) FROM generate_series(1,16)", p: R, want: RuleValueTooLarge},
		{desc: "repeat just over 1 MiB", sql: "SELECT repeat('x', 1048577)", p: R, want: RuleValueTooLarge},
		{desc: "repeat of 1 MiB is the limit", sql: "SELECT length(repeat('x', 1048576))", p: R},
		{desc: "repeat count from a column", sql: "SELECT repeat('x', id) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "repeat count from a scalar subquery", sql: "SELECT repeat('x', (SELECT 400000000))", p: R, want: RuleValueTooLarge},
		{desc: "repeat count hidden in a cast string", sql: "SELECT repeat('x', '400000000'::int)", p: R, want: RuleValueTooLarge},
		{desc: "repeat count as constant arithmetic", sql: "SELECT repeat('x', 10 * 10 * 10 * 10 * 10 * 10 * 10 * 10 * 10)", p: R, want: RuleValueTooLarge},
		{desc: "repeat count under GREATEST has no upper bound", sql: "SELECT repeat('x', greatest(id, 1)) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "repeat count under LEAST with a huge constant", sql: "SELECT repeat('x', least(id, 100000000)) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "repeat count under LEAST with a small constant is fine", sql: "SELECT repeat('*', least(count(*)::int / 10, 80)) FROM trades GROUP BY pair", p: R},
		{desc: "repeat of a column 65 times", sql: "SELECT repeat(email, 65) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "repeat by named arguments", sql: "SELECT repeat(str => 'x', number => 5)", p: R, want: RuleValueTooLarge},
		{desc: "named arguments reorder what a size rule reads", sql: "SELECT jsonb_set(new_value => to_jsonb(repeat('x', 100000)), path => '{a}', jsonb_in => '{}')", p: R, want: RuleValueTooLarge},
		{desc: "named arguments to a fixed-size function are fine", sql: "SELECT make_interval(days => 1, hours => 2)", p: R},
		{desc: "bpchar's length coercion pads to its typmod", sql: "SELECT length(bpchar('x', 10485764, true))", p: R, want: RuleValueTooLarge},
		{desc: "lpad to 300,000 characters", sql: "SELECT lpad('x', 300000)", p: R, want: RuleValueTooLarge},
		{desc: "rpad to a length computed from a column", sql: "SELECT rpad('x', length(email) * 100000) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "lpad with a constant small length is fine", sql: "SELECT lpad(id::text, 8, '0') FROM users", p: R},
		{desc: "array_fill of a million elements", sql: "SELECT cardinality(array_fill(0, ARRAY[1000, 1000]))", p: R, want: RuleValueTooLarge},
		{desc: "array_fill of NULLs (one bit each, five bytes as text)", sql: "SELECT array_fill(NULL::int, ARRAY[100000])", p: R, want: RuleValueTooLarge},
		{desc: "array_fill with dimensions from a subquery", sql: "SELECT array_fill(0, ARRAY[(SELECT max(id) FROM trades)::int])", p: R, want: RuleValueTooLarge},
		{desc: "format with a huge width", sql: "SELECT format('%999999999s', 'x')", p: R, want: RuleValueTooLarge},
		{desc: "format with a width taken from an argument", sql: "SELECT format('%*s', 100, 'x')", p: R, want: RuleValueTooLarge},
		{desc: "format with a format string from a column", sql: "SELECT format(status, 'x') FROM withdrawals", p: R, want: RuleValueTooLarge},
		{desc: "format repeating one argument 100 times", sql: "SELECT format('" + strings.Repeat("%1$s", 100) + "', email) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "format with VARIADIC", sql: "SELECT format('%s %s', VARIADIC ARRAY['a', 'b'])", p: R, want: RuleValueTooLarge},
		{desc: "nested replace multiplies by 11 at each level", sql: "SELECT length(" + strings.Repeat("replace(", 7) + "'aaaaaaaaaa'" + strings.Repeat(", 'a', 'aaaaaaaaaa')", 7) + ")", p: R, want: RuleValueTooLarge},
		{desc: "replace with a replacement from the database", sql: "SELECT replace(email, '@', email) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "regexp_replace copying every character 40 times", sql: "SELECT regexp_replace(email, '(.)', E'" + strings.Repeat(`\\1`, 40) + "', 'g') FROM users", p: R, want: RuleValueTooLarge},
		{desc: "regexp_replace with a replacement from the database", sql: "SELECT regexp_replace(email, '.', full_name, 'g') FROM users", p: R, want: RuleValueTooLarge},
		{desc: "regexp_match with a pattern from the database", sql: "SELECT regexp_match(email, full_name) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "jsonb_pretty of a deeply nested literal", sql: "SELECT length(jsonb_pretty('" + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + "'))", p: R, want: RuleValueTooLarge},
		{desc: "jsonb_pretty of a database value", sql: "SELECT jsonb_pretty(to_jsonb(u)) FROM users u", p: R, want: RuleValueTooLarge},
		{desc: "jsonb_path_query with ** over a database value", sql: "SELECT jsonb_path_query_array(to_jsonb(t), '$.**') FROM trades t", p: R, want: RuleValueTooLarge},
		{desc: "a numeric array literal in exponent notation", sql: "SELECT '{" + strings.TrimSuffix(strings.Repeat("1e131071,", 8), ",") + "}'::numeric[]", p: R, want: RuleValueTooLarge},
		{desc: "jsonb numbers in exponent notation", sql: "SELECT jsonb_array_elements('[" + strings.TrimSuffix(strings.Repeat("1e131071,", 8), ",") + "]')", p: R, want: RuleValueTooLarge},
		{desc: "a computed string cast to numeric[]", sql: "SELECT ('{' || repeat('1e131071,', 10) || '1}')::numeric[]", p: R, want: RuleValueTooLarge},
		{desc: "a computed string cast to jsonb", sql: "SELECT ('[' || repeat('[', 1000) || repeat(']', 1000) || ']')::jsonb", p: R, want: RuleValueTooLarge},
		{desc: "thirty numbers of 131,072 digits in one row", sql: "SELECT " + strings.TrimSuffix(strings.Repeat("1e131071::text, ", 30), ", "), p: R, want: RuleValueTooLarge},
		{desc: "one number of 131,072 digits is fine", sql: "SELECT length(1e131071::text)", p: R},
		{desc: "char(n) pads to n characters", sql: "SELECT 'x'::char(10485760)", p: R, want: RuleValueTooLarge},
		{desc: "char(n) in a column definition list pads", sql: `SELECT length(a) FROM json_to_record('{"a":"x"}') AS t(a char(10485760))`, p: R, want: RuleValueTooLarge},
		{desc: "char(n) in ROWS FROM pads", sql: `SELECT * FROM ROWS FROM (json_to_record('{"a":"x"}') AS (a char(10485760)))`, p: R, want: RuleValueTooLarge},
		{desc: "char(n) as an XMLTABLE column pads", sql: "SELECT * FROM XMLTABLE('/r' PASSING '<r><a>x</a></r>' COLUMNS a char(10485760) PATH 'a')", p: R, want: RuleValueTooLarge},
		{desc: "JSON_ARRAY RETURNING char(n) pads", sql: "SELECT JSON_ARRAY(1 RETURNING char(10485760))", p: R, want: RuleValueTooLarge},
		{desc: "XMLSERIALIZE AS char(n) pads", sql: "SELECT XMLSERIALIZE(CONTENT '<a/>'::xml AS char(10485760))", p: R, want: RuleValueTooLarge},
		{desc: "a JSON path that multiplies every item by 1e131071", sql: "SELECT jsonb_path_query_array('[" + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + "]', '$[*] * 1e131071')", p: R, want: RuleValueTooLarge},
		{desc: "a JSON path with arithmetic over a database value", sql: "SELECT jsonb_path_query(to_jsonb(t), '$.price * 2') FROM trades t", p: R, want: RuleValueTooLarge},
		{desc: "a JSON path filter is fine", sql: "SELECT jsonb_path_query(to_jsonb(t), '$.price ? (@ > 10)') FROM trades t", p: R},
		{desc: "bit(n) pads to n bits", sql: "SELECT B'1'::bit(83886080)", p: R, want: RuleValueTooLarge},
		{desc: "to_char with a huge template", sql: "SELECT to_char(now(), repeat('J', 200000))", p: R, want: RuleValueTooLarge},
		{desc: "concat_ws with a huge separator", sql: "SELECT concat_ws(repeat('x', 600000), email, phone, full_name) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "string_to_array of a long string of separators", sql: "SELECT string_to_array(repeat(',', 200000), ',')", p: R, want: RuleValueTooLarge},
		{desc: "normalize NFKD expands a character to 18", sql: "SELECT normalize(repeat(U&'\\FDFA', 30000), NFKD)", p: R, want: RuleValueTooLarge},
		{desc: "ts_headline with a huge StartSel", sql: "SELECT ts_headline(email, to_tsquery('a'), 'StartSel=' || repeat('x', 100000)) FROM users", p: R, want: RuleValueTooLarge},
		{desc: "five 1 MiB values in one row", sql: "SELECT " + strings.TrimSuffix(strings.Repeat("repeat('x', 1000000), ", 5), ", "), p: R, want: RuleValueTooLarge},
		{desc: "a left-deep concatenation chain of a column", sql: "SELECT email" + strings.Repeat(" || email", 70) + " FROM users", p: R, want: RuleValueTooLarge},
		{desc: "in ORDER BY", sql: "SELECT 1 ORDER BY repeat('x', 100000000)", p: R, want: RuleValueTooLarge},
		{desc: "in a FILTER", sql: "SELECT count(*) FILTER (WHERE repeat(pair, 100000000) = '') FROM trades", p: R, want: RuleValueTooLarge},
		{desc: "in a CTE", sql: "WITH c AS (SELECT repeat('x', 100000000) AS x) SELECT length(x) FROM c", p: R, want: RuleValueTooLarge},
		{desc: "in a LATERAL subquery", sql: "SELECT x FROM users u, LATERAL (SELECT lpad(u.email, 100000000) AS x) l", p: R, want: RuleValueTooLarge},
		{desc: "in VALUES", sql: "VALUES (1), (length(repeat('x', 100000000)))", p: R, want: RuleValueTooLarge},
		{desc: "under EXPLAIN", sql: "EXPLAIN SELECT repeat('x', 100000000)", p: R, want: RuleValueTooLarge},
		{desc: "through a derived table's column", sql: "SELECT repeat(x, 2000) FROM (SELECT repeat('y', 1000) AS x) s", p: R, want: RuleValueTooLarge},
		{desc: "in a write's SET", sql: "UPDATE withdrawals SET status = repeat('x', 100000000) WHERE id = 1", p: W, want: RuleValueTooLarge},
		{desc: "in a write's VALUES", sql: "INSERT INTO withdrawals (status) VALUES (lpad('x', 100000000))", p: W, want: RuleValueTooLarge},
		{desc: "SET past the end of an array", sql: "UPDATE withdrawals SET status[100000000] = 'x' WHERE id = 1", p: W, want: RuleValueTooLarge},
		{desc: "SET at a subscript from a column", sql: "UPDATE withdrawals SET status[id] = 'x' WHERE id = 1", p: W, want: RuleValueTooLarge},
		{desc: "ordinary string functions are fine", sql: "SELECT concat(full_name, ' <', email, '>'), replace(email, '@', ' at '), format('%s-%s', pair, side), upper(left(email, 3)) FROM users, trades LIMIT 1", p: R},

		// accumulation_unbounded: aggregates that keep every input.
		{desc: "the corpus's 2 GB string_agg (A329)", sql: "SELECT string_agg(repeat('x', 100000), '') FROM generate_series(1, 20000)", p: R, want: RuleAccumulationUnbounded},
		{desc: "array_agg of a hundred million manufactured rows", sql: "SELECT cardinality(array_agg(g)) FROM generate_series(1, 100000000) g", p: R, want: RuleAccumulationUnbounded},
		{desc: "array_agg over a cross join", sql: "SELECT cardinality(array_agg(a.id)) FROM trades a, trades b", p: R, want: RuleAccumulationUnbounded},
		{desc: "string_agg over a join on a column that is not a key", sql: "SELECT string_agg(t.pair, ',') FROM trades t JOIN users u ON u.country = t.pair", p: R, want: RuleAccumulationUnbounded},
		{desc: "a key join weakened by OR", sql: "SELECT string_agg(t.pair, ',') FROM trades t JOIN users u ON u.id = t.user_id OR true", p: R, want: RuleAccumulationUnbounded},
		{desc: "a key compared with itself", sql: "SELECT string_agg(t.pair, ',') FROM trades t JOIN users u ON u.id = u.id", p: R, want: RuleAccumulationUnbounded},
		{desc: "a key compared with a volatile expression", sql: "SELECT string_agg(t.pair, ',') FROM trades t JOIN users u ON u.id = (random() * 10)::int", p: R, want: RuleAccumulationUnbounded},
		{desc: "a key compared through a cast", sql: "SELECT string_agg(t.pair, ',') FROM trades t JOIN users u ON u.id = t.user_id::float8", p: R, want: RuleAccumulationUnbounded},
		{desc: "a key unqualified", sql: "SELECT string_agg(t.pair, ',') FROM trades t JOIN users u ON id = user_id", p: R, want: RuleAccumulationUnbounded},
		{desc: "a key of a derived table is no key", sql: "SELECT string_agg(t.pair, ',') FROM trades t JOIN (SELECT * FROM users) u ON u.id = t.user_id", p: R, want: RuleAccumulationUnbounded},
		{desc: "a key join after a cross join", sql: "SELECT string_agg(t.pair, ',') FROM trades t CROSS JOIN users u JOIN accounts a ON a.id = u.id", p: R, want: RuleAccumulationUnbounded},
		{desc: "a comma join on a column that is not a key", sql: "SELECT string_agg(t.pair, ',') FROM trades t, users u WHERE u.country = t.pair", p: R, want: RuleAccumulationUnbounded},
		{desc: "a comma join whose key test is under OR", sql: "SELECT string_agg(t.pair, ',') FROM trades t, users u WHERE u.id = t.user_id OR u.id = t.id", p: R, want: RuleAccumulationUnbounded},
		{desc: "two tables vouching for each other's keys", sql: "SELECT string_agg(a.pair, ',') FROM trades a, trades b WHERE a.id = b.user_id AND b.id = a.user_id AND a.fee = b.fee", p: R},
		{desc: "three tables, two keyed to the third, one not", sql: "SELECT string_agg(t.pair, ',') FROM trades t, users u, accounts a WHERE u.id = t.user_id AND a.user_id = t.user_id", p: R, want: RuleAccumulationUnbounded},
		{desc: "a comma join with the key in WHERE is a key join", sql: "SELECT u.country, string_agg(t.pair, ',') FROM trades t, users u WHERE u.id = t.user_id GROUP BY u.country", p: R},
		{desc: "a key fixed to a constant matches one row", sql: "SELECT array_agg(t.id) FROM trades t JOIN users u ON u.id = 42", p: R},
		{desc: "string_agg over a join on the primary key is fine", sql: "SELECT u.country, string_agg(DISTINCT t.pair, ',') FROM trades t JOIN users u ON u.id = t.user_id GROUP BY u.country", p: R},
		{desc: "outer joins on keys add rows, they do not multiply", sql: "SELECT array_agg(t.id) FROM users u LEFT JOIN trades t ON t.id = u.id FULL JOIN accounts a ON a.id = u.id", p: R},
		{desc: "USING the key is a key join", sql: "SELECT json_agg(t.price) FROM trades t JOIN users USING (id)", p: R},
		{desc: "grouping does not bound a join", sql: "SELECT a.user_id, array_agg(b.id) FROM trades a JOIN trades b USING (user_id) GROUP BY a.user_id", p: R, want: RuleAccumulationUnbounded},
		{desc: "json_agg over a lateral unnest of a column", sql: "SELECT json_agg(x) FROM trades t, unnest(ARRAY[t.price, t.fee]) x", p: R, want: RuleAccumulationUnbounded},
		{desc: "jsonb_object_agg over a data-dependent series", sql: "SELECT jsonb_object_agg(g, g) FROM generate_series(1, (SELECT max(id) FROM trades) * 1000) g", p: R, want: RuleAccumulationUnbounded},
		{desc: "array_agg over a recursive CTE", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT array_agg(n) FROM r", p: R, want: RuleAccumulationUnbounded},
		{desc: "through a CTE of a join", sql: "WITH x AS (SELECT a.id FROM trades a, trades b) SELECT array_agg(id) FROM x", p: R, want: RuleAccumulationUnbounded},
		{desc: "as a window function over a join", sql: "SELECT array_agg(a.id) OVER () FROM trades a, trades b", p: R, want: RuleAccumulationUnbounded},
		{desc: "range_agg over a join", sql: "SELECT range_agg(int8range(a.id, b.id)) FROM trades a, trades b WHERE a.id < b.id", p: R, want: RuleAccumulationUnbounded},
		{desc: "ARRAY(subquery) over a series", sql: "SELECT cardinality(ARRAY(SELECT g FROM generate_series(1, 100000000) g))", p: R, want: RuleAccumulationUnbounded},
		{desc: "ARRAY(subquery) over a join", sql: "SELECT ARRAY(SELECT a.id FROM trades a, trades b)", p: R, want: RuleAccumulationUnbounded},
		{desc: "JSON_ARRAYAGG over a join", sql: "SELECT JSON_ARRAYAGG(a.id) FROM trades a, trades b", p: R, want: RuleAccumulationUnbounded},
		{desc: "JSON_OBJECTAGG over a join", sql: "SELECT JSON_OBJECTAGG(a.id : b.id) FROM trades a, trades b", p: R, want: RuleAccumulationUnbounded},
		{desc: "JSON_ARRAY(subquery) over a join", sql: "SELECT JSON_ARRAY(SELECT a.id FROM trades a, trades b)", p: R, want: RuleAccumulationUnbounded},
		{desc: "a LIMIT above the constant-row limit", sql: "SELECT array_agg(id) FROM (SELECT a.id FROM trades a, trades b LIMIT 100000) s", p: R, want: RuleAccumulationUnbounded},
		{desc: "LIMIT ALL bounds nothing", sql: "SELECT array_agg(id) FROM (SELECT a.id FROM trades a, trades b LIMIT ALL) s", p: R, want: RuleAccumulationUnbounded},
		{desc: "FETCH FIRST WITH TIES can exceed its count", sql: "SELECT array_agg(id) FROM (SELECT a.id FROM trades a, trades b ORDER BY a.fee FETCH FIRST 10 ROWS WITH TIES) s", p: R, want: RuleAccumulationUnbounded},
		{desc: "a timestamp series of 210,000 hours", sql: "SELECT array_agg(h) FROM generate_series(timestamp '2000-01-01', timestamp '2024-01-01', interval '1 hour') h", p: R, want: RuleAccumulationUnbounded},
		{desc: "aggregating aggregates", sql: "SELECT array_agg((SELECT string_agg(email, ',') FROM users)) FROM trades", p: R, want: RuleAccumulationUnbounded},
		{desc: "rows too large to keep", sql: "SELECT array_agg(repeat(pair, 20)) FROM trades", p: R, want: RuleAccumulationUnbounded},
		{desc: "a separator too large to keep per row", sql: "SELECT string_agg(pair, repeat(',', 2000)) FROM trades", p: R, want: RuleAccumulationUnbounded},
		{desc: "five aggregates that each keep four copies of a row", sql: "SELECT " + strings.TrimSuffix(strings.Repeat("array_agg(repeat(pair, 4)), ", 5), ", ") + " FROM trades", p: R, want: RuleAccumulationUnbounded},
		{desc: "a table read four times weighs four times", sql: "SELECT array_agg(x) FROM (SELECT repeat(pair, 5) AS x FROM trades UNION ALL SELECT pair FROM trades UNION ALL SELECT pair FROM trades UNION ALL SELECT pair FROM trades) s", p: R, want: RuleAccumulationUnbounded},
		{desc: "a table read five times", sql: "SELECT array_agg(x) FROM (SELECT pair AS x FROM trades UNION ALL SELECT pair FROM trades UNION ALL SELECT pair FROM trades UNION ALL SELECT pair FROM trades UNION ALL SELECT pair FROM trades) s", p: R, want: RuleAccumulationUnbounded},
		{desc: "grouping sets keep a state per set", sql: "SELECT pair, side, array_agg(price) FROM trades GROUP BY CUBE (pair, side)", p: R, want: RuleAccumulationUnbounded},
		{desc: "seventeen accumulating aggregates", sql: "SELECT " + strings.TrimSuffix(strings.Repeat("array_agg(id), ", 17), ", ") + " FROM trades", p: R, want: RuleAccumulationUnbounded},
		{desc: "array_agg over one table is fine", sql: "SELECT user_id, array_agg(price ORDER BY executed_at) FROM trades GROUP BY user_id", p: R},
		{desc: "array_agg over a LIMITed join is fine", sql: "SELECT array_agg(id) FROM (SELECT t.id FROM trades t JOIN users u ON u.id = t.user_id LIMIT 1000) s", p: R},
		{desc: "array_agg over a constant series is fine", sql: "SELECT array_agg(g) FROM generate_series(1, 5000) g", p: R},
		{desc: "ARRAY(subquery) over one table is fine", sql: "SELECT ARRAY(SELECT id FROM trades WHERE pair = 'BTC-USDT')", p: R},

		// subquery_unbounded: subqueries PostgreSQL may hash without a limit.
		{desc: "a misestimated hashed IN over a cross join", sql: "SELECT 1 WHERE 0 IN (SELECT a.id * 100000 + b.id FROM trades a, trades b WHERE a.fee * 0 = 0 AND b.fee * 0 = 0)", p: R, want: RuleSubqueryUnbounded},
		{desc: "IN over a series with a hidden bound", sql: "SELECT 1 WHERE 0 IN (SELECT generate_series(1, (SELECT 100000000)))", p: R, want: RuleSubqueryUnbounded},
		{desc: "NOT IN over a join", sql: "SELECT id FROM users WHERE id NOT IN (SELECT t.user_id FROM trades t JOIN deposits d ON d.user_id = t.user_id)", p: R, want: RuleSubqueryUnbounded},
		{desc: "IN over a key join is fine", sql: "SELECT id FROM users WHERE id IN (SELECT d.user_id FROM deposits d JOIN users u ON u.id = d.user_id WHERE u.country = 'JP')", p: R},
		{desc: "= ANY over a join", sql: "SELECT id FROM users WHERE id = ANY (SELECT a.id FROM trades a, trades b)", p: R, want: RuleSubqueryUnbounded},
		{desc: "<> ALL over a join", sql: "SELECT id FROM users WHERE id <> ALL (SELECT a.id FROM trades a, trades b)", p: R, want: RuleSubqueryUnbounded},
		{desc: "EXISTS over a join (hashed as an ANY)", sql: "SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM trades a JOIN trades b ON b.user_id = a.user_id WHERE a.user_id = u.id) OR u.id = 0", p: R, want: RuleSubqueryUnbounded},
		{desc: "IN over rows unnested from a column", sql: "SELECT 1 WHERE 0 IN (SELECT unnest(ARRAY[id, user_id]) FROM trades)", p: R, want: RuleSubqueryUnbounded},
		{desc: "IN over rows too large to keep", sql: "SELECT id FROM users WHERE email IN (SELECT repeat(email, 20) FROM users)", p: R, want: RuleSubqueryUnbounded},
		{desc: "IN over an aggregated value", sql: "SELECT 1 WHERE 'x' IN (SELECT string_agg(email, ',') FROM users)", p: R, want: RuleSubqueryUnbounded},
		{desc: "INTERSECT with a join", sql: "SELECT user_id FROM trades INTERSECT SELECT a.user_id FROM trades a, trades b", p: R, want: RuleSubqueryUnbounded},
		{desc: "EXCEPT ALL with a join", sql: "SELECT a.id FROM trades a, trades b EXCEPT ALL SELECT id FROM trades", p: R, want: RuleSubqueryUnbounded},
		{desc: "in a CTE under EXPLAIN", sql: "EXPLAIN WITH c AS (SELECT id FROM users WHERE id IN (SELECT a.id FROM trades a, trades b)) SELECT * FROM c", p: R, want: RuleSubqueryUnbounded},
		{desc: "IN over one table is fine", sql: "SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM withdrawals WHERE status = 'rejected')", p: R},
		{desc: "INTERSECT of two tables is fine", sql: "SELECT user_id FROM trades INTERSECT SELECT id FROM users", p: R},

		// recursive_growth
		{desc: "recursive UNION keeps a hash table of every row", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n + 1 FROM r) SELECT count(*) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "doubling a string at each step", sql: "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "doubling with concat", sql: "WITH RECURSIVE r(s) AS (SELECT 'x'::text UNION ALL SELECT concat(s, s) FROM r) SELECT length(s) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "doubling with repeat(s, 2)", sql: "WITH RECURSIVE r(s) AS (SELECT 'x'::text UNION ALL SELECT repeat(s, 2) FROM r) SELECT length(s) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "Fibonacci-style growth across two columns", sql: "WITH RECURSIVE r(a, b) AS (SELECT 'x', 'y' UNION ALL SELECT a || b, a FROM r) SELECT length(a) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "an array growing at each step", sql: "WITH RECURSIVE r(a) AS (SELECT ARRAY[1] UNION ALL SELECT a || a FROM r) SELECT cardinality(a) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "format doubling", sql: "WITH RECURSIVE r(s) AS (SELECT 'x'::text UNION ALL SELECT format('%s%s', s, s) FROM r) SELECT length(s) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "a short first value of a text column (1::text) can still double", sql: "WITH RECURSIVE r(s) AS (SELECT 1::text UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "md5 is 32 characters, but its column is text", sql: "WITH RECURSIVE r(s) AS (SELECT md5('x') UNION ALL SELECT repeat(s, 2) FROM r) SELECT length(s) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "growth through a joined table", sql: "WITH RECURSIVE r(n, s) AS (SELECT 1, ''::text UNION ALL SELECT n + 1, s || u.email FROM r JOIN users u ON u.id = r.n) SELECT length(s) FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "SEARCH keeps a growing path", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SEARCH DEPTH FIRST BY n SET o SELECT * FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "CYCLE keeps a growing path", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) CYCLE n SET c USING p SELECT * FROM r", p: R, want: RuleRecursiveGrowth},
		{desc: "a counter is fine", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) SELECT sum(n) FROM r", p: R},
		{desc: "passing a string through is fine", sql: "WITH RECURSIVE r(n, s) AS (SELECT 1, 'x' UNION ALL SELECT n + 1, s FROM r WHERE n < 10) SELECT s FROM r", p: R},
		{desc: "dates stepping by a day are fine", sql: "WITH RECURSIVE d(day) AS (SELECT date '2024-06-01' UNION ALL SELECT day + 1 FROM d WHERE day < date '2024-06-30') SELECT day FROM d", p: R},

		// memory_budget: work areas.
		{desc: "CUBE of six columns is 64 grouping sets", sql: "SELECT count(*) FROM trades GROUP BY CUBE (user_id, pair, side, price, quantity, fee)", p: R, want: RuleMemoryBudget},
		{desc: "eleven sorted UNION branches", sql: "SELECT count(*) FROM (" + strings.TrimSuffix(strings.Repeat("(SELECT pair FROM trades ORDER BY pair) UNION ", 11), " UNION ") + ") s", p: R, want: RuleMemoryBudget},
		{desc: "twenty-one windows", sql: "SELECT " + strings.TrimSuffix(strings.Repeat("rank() OVER (ORDER BY price), ", 21), ", ") + " FROM trades", p: R, want: RuleMemoryBudget},
		{desc: "twenty-one tables joined", sql: "SELECT count(*) FROM trades t0" + strings.Repeat(" JOIN trades USING (id)", 20), p: R, want: RuleMemoryBudget},
		{desc: "forty-one ordered aggregates", sql: "SELECT " + strings.TrimSuffix(strings.Repeat("count(DISTINCT pair), ", 41), ", ") + " FROM trades", p: R, want: RuleMemoryBudget},
		{desc: "a ROLLUP of three is fine", sql: "SELECT pair, side, count(*) FROM trades GROUP BY ROLLUP (pair, side, user_id)", p: R},

		// cast_not_allowed: types whose input consults the catalogs (finding 9).
		{desc: "aclitem cast tells whether a role exists (issue 11, finding 9)", sql: "SELECT 'name=r/postgres'::aclitem", p: R, want: RuleCastNotAllowed},
		{desc: "aclitem typed literal", sql: "SELECT aclitem 'x=r/postgres'", p: R, want: RuleCastNotAllowed},
		{desc: "CAST AS aclitem", sql: "SELECT CAST('x=r/postgres' AS aclitem)", p: R, want: RuleCastNotAllowed},
		{desc: "aclitem array", sql: "SELECT '{x=r/postgres}'::aclitem[]", p: R, want: RuleCastNotAllowed},
		{desc: "aclitem array by its internal name", sql: "SELECT '{x=r/postgres}'::_aclitem", p: R, want: RuleCastNotAllowed},
		{desc: "pg_catalog.aclitem", sql: "SELECT 'x=r/postgres'::pg_catalog.aclitem", p: R, want: RuleCastNotAllowed},
		{desc: "aclitem in a column definition list", sql: `SELECT * FROM json_to_record('{"a":"x=r/postgres"}') AS t(a aclitem)`, p: R, want: RuleCastNotAllowed},
		{desc: "aclitem in ROWS FROM", sql: `SELECT * FROM ROWS FROM (json_to_record('{"a":"x=r/postgres"}') AS (a aclitem))`, p: R, want: RuleCastNotAllowed},
		{desc: "aclitem in a write", sql: "UPDATE withdrawals SET status = 'x=r/postgres'::aclitem::text WHERE id = 1", p: W, want: RuleCastNotAllowed},
		{desc: "regrole", sql: "SELECT 'postgres'::regrole", p: R, want: RuleCastNotAllowed},
		{desc: "regdictionary", sql: "SELECT 'simple'::regdictionary", p: R, want: RuleCastNotAllowed},
		{desc: "regcollation", sql: "SELECT 'C'::regcollation", p: R, want: RuleCastNotAllowed},
		{desc: "xid can only be hashed", sql: "SELECT '1'::xid", p: R, want: RuleCastNotAllowed},
		{desc: "cid can only be hashed", sql: "SELECT '1'::cid", p: R, want: RuleCastNotAllowed},
		{desc: "pg_typeof compared with a string looks the type up", sql: "SELECT pg_typeof(1) = 'users'", p: R, want: RuleCastNotAllowed},
		{desc: "pg_typeof in an IN list", sql: "SELECT 1 WHERE pg_typeof(1) IN ('users', 'accounts')", p: R, want: RuleCastNotAllowed},
		{desc: "pg_typeof leaked through a subquery column", sql: "SELECT t FROM (SELECT pg_typeof(1) AS t) s WHERE t = 'users'", p: R, want: RuleCastNotAllowed},
		{desc: "pg_typeof unified with a string by UNION", sql: "SELECT pg_typeof(1) UNION SELECT 'users'", p: R, want: RuleCastNotAllowed},
		{desc: "pg_typeof unified with a string by VALUES", sql: "VALUES (pg_typeof(1)), ('users')", p: R, want: RuleCastNotAllowed},
		{desc: "pg_typeof in CASE", sql: "SELECT CASE pg_typeof(1) WHEN 'users' THEN 1 END", p: R, want: RuleCastNotAllowed},
		{desc: "a text search configuration looked up by name", sql: "SELECT to_tsvector('nosuch', 'x')", p: R, want: RuleCastNotAllowed},
		{desc: "a schema looked up through a configuration name", sql: "SELECT to_tsquery('secret_schema.cfg', 'x')", p: R, want: RuleCastNotAllowed},
		{desc: "ts_headline's configuration", sql: "SELECT ts_headline('nosuch', 'a b', to_tsquery('a'))", p: R, want: RuleCastNotAllowed},
		{desc: "pg_typeof as a result column is fine", sql: "SELECT pg_typeof(price), pg_typeof(pair)::text = 'text' FROM trades LIMIT 1", p: R},
		{desc: "built-in configurations are fine", sql: "SELECT to_tsvector('english', pair), to_tsquery('pg_catalog.simple', 'btc'), to_tsvector(pair) FROM trades LIMIT 1", p: R},

		// internal_error
		{desc: "unknown mode", sql: "SELECT 1", p: Permissions{Mode: Mode(7)}, want: RuleInternalError},

		// Allowed reads and writes.
		{desc: "sensitive read is allowed and masked", sql: "SELECT email FROM users", p: R},
		{desc: "TABLE users", sql: "TABLE users", p: R},
		{desc: "ordinary write", sql: "UPDATE withdrawals SET status = 'approved' WHERE id = 5", p: W},
		{desc: "write using the target's own columns", sql: "UPDATE withdrawals w SET status = upper(w.status) WHERE w.id = 1 AND w.status <> 'done' RETURNING w.id, w.status", p: W},
		{desc: "insert with defaults", sql: "INSERT INTO accounts (currency, updated_at) VALUES ('BTC', DEFAULT), ('ETH', now())", p: W},
	}
}

func TestRules(t *testing.T) {
	guards := map[string]*Guard{"": New(demoCatalog()), "permissive": New(permissiveCatalog())}
	for _, tc := range ruleCases() {
		name := tc.want
		if name == "" {
			name = "allowed"
		}
		t.Run(name+"/"+tc.desc, func(t *testing.T) {
			g := guards[""]
			if tc.cat != nil {
				g = guards["permissive"]
			}
			d := g.Check(tc.sql, tc.p)
			if tc.want == "" {
				if !d.Allowed {
					t.Errorf("when checking %q in %v mode, want allowed, got %s at %d: %s", trim(tc.sql), tc.p.Mode, d.Rule, d.Position, d.Message)
				}
				return
			}
			if d.Allowed || d.Rule != tc.want {
				t.Errorf("when checking %q in %v mode, want %s, got allowed=%v rule=%q: %s", trim(tc.sql), tc.p.Mode, tc.want, d.Allowed, d.Rule, d.Message)
			}
			if d.Message == "" {
				t.Errorf("denial of %q has no message", trim(tc.sql))
			}
		})
	}
}

// TestEveryRuleIsTested keeps the rule list, doc.go and the tests in step.
func TestEveryRuleIsTested(t *testing.T) {
	tested := map[string]bool{}
	for _, tc := range ruleCases() {
		tested[tc.want] = true
	}
	doc, err := readFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range AllRules {
		if !tested[r] {
			t.Errorf("rule %s has no test case in ruleCases", r)
		}
		if !strings.Contains(doc, "| "+r+" ") {
			t.Errorf("rule %s is missing from the table in doc.go", r)
		}
	}
}

func trim(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

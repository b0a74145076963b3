// Package sqlguard decides whether a developer's SQL may run against the
// production database through Airlock.
//
// It is a pure library: it parses the text with pg_query (PostgreSQL's own
// parser, via cgo), walks the whole parse tree through protobuf reflection,
// and allows a statement only if every node, relation, function, type and
// operator in it is on an allowlist. Keywords in the text are never
// inspected. Anything unknown is refused, so syntax added by a future
// PostgreSQL fails closed.
//
//	g := sqlguard.New(catalog)
//	d := g.Check(sql, sqlguard.Permissions{Mode: sqlguard.Read})
//	if !d.Allowed {
//		// d.Rule, d.Message and d.Position explain why
//	}
//	// run d.Statement, e.g. as DECLARE c NO SCROLL CURSOR FOR <d.Statement>
//
// # What is allowed
//
// Read mode: one SELECT (including VALUES and TABLE x), or EXPLAIN of one
// with options limited to costs, verbose, format and settings. Relations are
// the catalog's tables, written bare (the database resolves them to the
// masked views), and CTEs in scope. Sensitive columns may be read: the
// database masks them unless the caller holds an unmasked grant, and the
// Decision reports them in MaskedColumns.
//
// Write mode: one INSERT or UPDATE on a catalog table the caller holds a
// write grant on, touching only WritableColumns, reading no other relation
// and no sensitive column of its target (unless unmasked); UPDATE needs a
// WHERE that tests a column of the row.
//
// DELETE, TRUNCATE, MERGE, DDL and privilege changes are refused in every
// mode, whatever the grants.
//
// # Before the parser
//
// pg_query_go v5 can crash the whole process (SIGSEGV in C, which recover()
// cannot catch) on deeply nested input, so size, nesting and operator limits
// are enforced by a scan that does not recurse (limits.go). String
// constants the server could lex differently from pg_query (parser
// differential, sql-defense.md finding 5) are refused too. The caller must
// still keep standard_conforming_strings=on and client_encoding=UTF8 on its
// connections and send Statement with the extended protocol.
//
// # Cost
//
// One Check costs one run of pg_query's parser, which yields the tree (as
// pg_query.Parse), plus pg_query's fingerprint of that tree computed in Go
// (fingerprint.go, generated from pg_query's C by internal/fpgen: about 3% of
// a parse, where pg_query's own C walk cost a fifth), plus the tree walk.
// pg_query.Scan runs only when the text holds a comment, a backslash,
// non-ASCII text or looks over a limit, and then the statement cut out of the
// text is fingerprinted again on its own to prove it is the statement that
// was checked. See BenchmarkCheckVsParse.
//
// # Rules
//
// A denied Decision names exactly one rule. The ids are stable:
//
//	| rule                         | refuses                                                                 |
//	|------------------------------|-------------------------------------------------------------------------|
//	| input_too_large              | text longer than WithMaxBytes (16 KiB)                                  |
//	| input_too_deep               | more than WithMaxDepth nested ( [ or WithMaxOperators operators         |
//	| invalid_input                | a NUL byte or invalid UTF-8                                             |
//	| empty_statement              | only whitespace, comments or semicolons                                 |
//	| multiple_statements          | more than one statement                                                 |
//	| parse_error                  | text PostgreSQL's parser rejects (also protobuf recursion errors)      |
//	| ambiguous_literal            | '...' with a backslash, E'...' with non-ASCII bytes                     |
//	| statement_not_allowed        | SET, SHOW, COPY, DO, CALL, PREPARE, EXECUTE, cursors, LISTEN/NOTIFY,    |
//	|                              | LOAD, LOCK, VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, DISCARD,     |
//	|                              | transaction control, EXPLAIN of anything but a read                     |
//	| delete_forbidden             | DELETE, in every mode                                                   |
//	| truncate_forbidden           | TRUNCATE, in every mode                                                 |
//	| merge_forbidden              | MERGE, in every mode                                                    |
//	| ddl_forbidden                | CREATE, ALTER, DROP, COMMENT, REFRESH ..., ALTER SYSTEM, in every mode  |
//	| privilege_change_forbidden   | GRANT, REVOKE, roles, default privileges, SET ROLE, SET SESSION         |
//	|                              | AUTHORIZATION, in every mode                                            |
//	| write_requires_write_mode    | INSERT or UPDATE in read mode                                           |
//	| write_mode_requires_write    | anything but INSERT or UPDATE in write mode                             |
//	| explain_analyze              | EXPLAIN ANALYZE in any spelling, whatever it wraps                      |
//	| explain_option               | EXPLAIN options other than costs, verbose, format, settings             |
//	| node_not_allowed             | a parse-tree node outside the allowlist (fail closed)                   |
//	| data_modifying_cte           | INSERT/UPDATE/DELETE/MERGE nested anywhere in another statement         |
//	| select_into                  | SELECT ... INTO                                                         |
//	| locking_clause               | FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE                          |
//	| parameter_not_allowed        | $n placeholders                                                         |
//	| function_not_allowed         | functions outside functions.go, other schemas, CURRENT_USER & co.,      |
//	|                              | OPERATOR(schema.op), TABLESAMPLE methods other than SYSTEM/BERNOULLI    |
//	| cast_not_allowed             | types whose input reads the catalogs (reg*, aclitem), hash-only types   |
//	|                              | (xid, cid) and types outside pg_catalog, anywhere; pg_typeof compared   |
//	|                              | with a string; text search configurations other than the built-in ones  |
//	| relation_not_allowed         | a relation that is neither a catalog table nor a CTE in scope           |
//	| system_catalog               | pg_* relations, pg_catalog.*, information_schema.*                      |
//	| schema_not_allowed           | schema- or database-qualified relations and columns                     |
//	| airlock_schema               | relations in Airlock's own schema                                       |
//	| table_not_writable           | a write to a table with no WritableColumns                              |
//	| no_write_grant               | a write to a table without an active write grant                        |
//	| write_operation_not_granted  | INSERT under an update-only grant, or the reverse                       |
//	| update_without_where         | UPDATE without WHERE                                                    |
//	| update_where_constant        | UPDATE whose WHERE tests no column of the row (WHERE true, 1=1, EXISTS) |
//	| write_reads_other_table      | a write reading another table or a CTE, UPDATE ... FROM, WITH           |
//	| write_reads_sensitive_column | a write reading a sensitive column of its target (also *, whole rows)   |
//	| write_column_not_allowed     | INSERT columns or SET targets outside WritableColumns                   |
//	| insert_columns_required      | INSERT without a column list                                            |
//	| on_conflict_update           | INSERT ... ON CONFLICT DO UPDATE                                        |
//	| value_too_large              | a value that could exceed 1 MiB plus 64× the largest stored row (repeat,|
//	|                              | lpad, format widths, nested replace, jsonb_pretty, 1e131071, char(n)),  |
//	|                              | a size argument that is not a constant, too much per row                |
//	| accumulation_unbounded       | array_agg, string_agg, json*_agg, range_agg, JSON_ARRAYAGG, ARRAY(...)  |
//	|                              | over more than one table's rows or 10,000 constant rows, or too-large  |
//	|                              | rows; more than 16 of them and hashed subqueries                        |
//	| subquery_unbounded           | IN, NOT IN, ANY, ALL, EXISTS subqueries and INTERSECT/EXCEPT operands   |
//	|                              | over joins, set-returning functions of data or recursive queries        |
//	| recursive_growth             | WITH RECURSIVE with UNION (not ALL), SEARCH, CYCLE, or a recursive part |
//	|                              | that makes its own values longer                                        |
//	| memory_budget                | more than 32 sorts, hashes and materialisations (work areas)            |
//	| internal_error               | a failure inside the guard (a recovered panic); fail closed             |
//
// When several rules apply, the first one met is reported: input checks,
// then the statement type, then the tree in walk order (FROM before the
// select list).
//
// # Memory and temporary disk
//
// A statement that passes every rule above is also sized (memory.go,
// sizes.go): PostgreSQL bounds sorts, hash aggregates and tuple stores by
// work_mem and spills them to temporary files, but not the values a statement
// builds, the aggregates that keep every input, the hash tables it sizes by
// its (misleadable) estimates, or the number of work areas. Every allowlisted
// function has a size class in functions.go; a function without one is
// refused. With the settings the query function's login runs with (work_mem
// 4MB, hash_mem_multiplier 1, enable_hashjoin off, no parallel workers, no
// JIT: shared/migrate.QuerySettings) and temp_file_limit (a Cloud SQL flag),
// one statement can make a backend hold at most MemoryBound: with U the
// longest stored row written as JSON and R the rows of the largest table,
//
//   - MaxWorkAreas (32) × work_mem in sorts, hashes and tuple stores, which
//     spill to at most temp_file_limit (1 GiB) of temporary files;
//   - in the rows its accumulating aggregates and hashed subqueries keep (at
//     most MaxHeld, 16, of them): at most 4 times the rows of one table, or
//     10,000 rows the statement fixes, all of them together keeping per row
//     at most MaxHeldRowBytes (128 bytes) plus MaxHeldRowFactor (2) × U: K =
//     R × (128 + 2U), held as states (2K), results (K) and at most
//     MaxAggregateCopies (2) values computed from them;
//   - per row, MaxRowBytes (4 MiB) plus MaxRowFactor (512) × U in values.
//
// On the demo data (R = 60,000, U = 273 bytes) that is 357 MiB; the worst
// statements the tests found used 65 MiB. U and R are the terms a developer
// does not choose: a read cannot grow them, and a write grant adds at most the
// policy's max_rows rows per statement, each audited with its before-image.
// What the planner keeps beyond these rules would need a misestimated hash
// join, which enable_hashjoin off removes, or a hashed subquery, which
// subquery_unbounded bounds. The bound is linear in R: an aggregate over a
// table of ten million rows can keep gigabytes, because the guard does not
// know table sizes (Catalog has none).
//
// # Known limits
//
// The guard is one layer. It cannot see runtime data or session state; it
// relies on the database to mask sensitive columns, on a READ ONLY
// transaction and statement_timeout to stop writes it missed and long
// queries, and on the connection being reset between requests. An UPDATE's
// WHERE that tests a column can still match every row (WHERE id = id); the
// check only stops the obviously constant ones. Unqualified names resolve
// through the connection's search_path, which Airlock sets; functions and
// operators in the catalog schemas are assumed to be PostgreSQL's own.
package sqlguard

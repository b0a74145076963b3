package sqlguard

// Rule ids. A denied [Decision] carries exactly one of these in Decision.Rule.
// They are part of the API: clients and audit queries match on them, so an id
// is never renamed or reused for a different meaning. doc.go lists them all.
const (
	// RuleInputTooLarge: the SQL text is longer than the byte limit (WithMaxBytes).
	RuleInputTooLarge = "input_too_large"
	// RuleInputTooDeep: the pre-scan found more nesting or more operators than
	// the parser can be trusted with (WithMaxDepth, WithMaxOperators).
	RuleInputTooDeep = "input_too_deep"
	// RuleInvalidInput: the text holds a NUL byte or is not valid UTF-8.
	RuleInvalidInput = "invalid_input"
	// RuleEmptyStatement: only whitespace, comments or semicolons.
	RuleEmptyStatement = "empty_statement"
	// RuleMultipleStatements: more than one statement in one request.
	RuleMultipleStatements = "multiple_statements"
	// RuleParseError: the PostgreSQL parser rejected the text.
	RuleParseError = "parse_error"
	// RuleAmbiguousLiteral: a string constant that the server could lex
	// differently from the parser (standard string with a backslash, E'' string
	// with non-ASCII bytes).
	RuleAmbiguousLiteral = "ambiguous_literal"
	// RuleStatementNotAllowed: a statement type outside the allowlist (SET,
	// COPY, DO, CALL, PREPARE, transaction control, VACUUM, LOCK, ...).
	RuleStatementNotAllowed = "statement_not_allowed"
	// RuleDeleteForbidden: DELETE, in every mode.
	RuleDeleteForbidden = "delete_forbidden"
	// RuleTruncateForbidden: TRUNCATE, in every mode.
	RuleTruncateForbidden = "truncate_forbidden"
	// RuleMergeForbidden: MERGE, in every mode.
	RuleMergeForbidden = "merge_forbidden"
	// RuleDDLForbidden: CREATE, ALTER, DROP and other schema changes, in every mode.
	RuleDDLForbidden = "ddl_forbidden"
	// RulePrivilegeChangeForbidden: GRANT, REVOKE, role management, SET ROLE,
	// SET SESSION AUTHORIZATION, in every mode.
	RulePrivilegeChangeForbidden = "privilege_change_forbidden"
	// RuleWriteRequiresWriteMode: INSERT or UPDATE sent in read mode.
	RuleWriteRequiresWriteMode = "write_requires_write_mode"
	// RuleWriteModeRequiresWrite: anything but INSERT or UPDATE sent in write mode.
	RuleWriteModeRequiresWrite = "write_mode_requires_write"
	// RuleExplainAnalyze: EXPLAIN ANALYZE in any spelling; it executes the statement.
	RuleExplainAnalyze = "explain_analyze"
	// RuleExplainOption: an EXPLAIN option outside costs, verbose, format, settings.
	RuleExplainOption = "explain_option"
	// RuleNodeNotAllowed: a parse-tree node type outside the allowlist.
	RuleNodeNotAllowed = "node_not_allowed"
	// RuleDataModifyingCTE: INSERT, UPDATE, DELETE or MERGE nested inside another statement.
	RuleDataModifyingCTE = "data_modifying_cte"
	// RuleSelectInto: SELECT ... INTO, which creates a table.
	RuleSelectInto = "select_into"
	// RuleLockingClause: FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE.
	RuleLockingClause = "locking_clause"
	// RuleParameterNotAllowed: a $n parameter placeholder.
	RuleParameterNotAllowed = "parameter_not_allowed"
	// RuleFunctionNotAllowed: a function (or SQL value function, operator schema
	// or TABLESAMPLE method) outside the allowlist in functions.go.
	RuleFunctionNotAllowed = "function_not_allowed"
	// RuleCastNotAllowed: a cast or column type naming a type whose input
	// consults the catalogs (reg*, aclitem), a hash-only type (xid, cid) or a
	// type outside pg_catalog; pg_typeof compared with a string; a text
	// search configuration other than PostgreSQL's own.
	RuleCastNotAllowed = "cast_not_allowed"
	// RuleRelationNotAllowed: a relation that is neither a catalog table nor a
	// CTE in scope.
	RuleRelationNotAllowed = "relation_not_allowed"
	// RuleSystemCatalog: a pg_catalog or information_schema relation.
	RuleSystemCatalog = "system_catalog"
	// RuleSchemaNotAllowed: a schema- or database-qualified relation or column name.
	RuleSchemaNotAllowed = "schema_not_allowed"
	// RuleAirlockSchema: a reference to Airlock's own schema.
	RuleAirlockSchema = "airlock_schema"
	// RuleTableNotWritable: a write to a catalog table with no writable columns.
	RuleTableNotWritable = "table_not_writable"
	// RuleNoWriteGrant: a write to a table the caller holds no write grant on.
	RuleNoWriteGrant = "no_write_grant"
	// RuleWriteOperationNotGranted: the grant does not cover this operation
	// (INSERT or UPDATE).
	RuleWriteOperationNotGranted = "write_operation_not_granted"
	// RuleUpdateWithoutWhere: UPDATE with no WHERE clause.
	RuleUpdateWithoutWhere = "update_without_where"
	// RuleUpdateWhereConstant: UPDATE whose WHERE references no column of the
	// updated row (WHERE true, WHERE 1=1, WHERE EXISTS (...)).
	RuleUpdateWhereConstant = "update_where_constant"
	// RuleWriteReadsOtherTable: a write that reads another table, a CTE, or
	// has FROM/USING lists or a WITH clause.
	RuleWriteReadsOtherTable = "write_reads_other_table"
	// RuleWriteReadsSensitiveColumn: a write that reads a sensitive column of
	// its target (directly, by *, or by whole-row reference) without an
	// unmasked grant.
	RuleWriteReadsSensitiveColumn = "write_reads_sensitive_column"
	// RuleWriteColumnNotAllowed: an INSERT column or UPDATE SET target that is
	// not in the table's WritableColumns.
	RuleWriteColumnNotAllowed = "write_column_not_allowed"
	// RuleInsertColumnsRequired: INSERT without an explicit column list.
	RuleInsertColumnsRequired = "insert_columns_required"
	// RuleOnConflictUpdate: INSERT ... ON CONFLICT DO UPDATE.
	RuleOnConflictUpdate = "on_conflict_update"
	// RuleValueTooLarge: a value the statement computes could be larger than
	// MaxValueBytes plus MaxValueFactor times the largest stored row (repeat,
	// lpad, format widths, nested replace, jsonb_pretty, numbers in exponent
	// notation, char(n) padding, ...), a size argument is not a constant, or
	// the values of one row add up to more than MaxRowBytes / MaxRowFactor.
	RuleValueTooLarge = "value_too_large"
	// RuleAccumulationUnbounded: an aggregate that keeps every input
	// (array_agg, string_agg, json[b]_agg, json[b]_object_agg, range_agg,
	// JSON_ARRAYAGG, JSON_OBJECTAGG) or ARRAY(subquery) reads more than the
	// rows of one table or MaxConstantRows constant rows, or keeps rows
	// larger than MaxHeldRowBytes / MaxHeldRowFactor.
	RuleAccumulationUnbounded = "accumulation_unbounded"
	// RuleSubqueryUnbounded: the same for a subquery PostgreSQL may keep in a
	// hash table without a memory limit (IN, NOT IN, ANY, ALL, EXISTS) and
	// for the operands of INTERSECT and EXCEPT.
	RuleSubqueryUnbounded = "subquery_unbounded"
	// RuleRecursiveGrowth: WITH RECURSIVE with UNION instead of UNION ALL,
	// with SEARCH or CYCLE, or whose recursive part makes its own values
	// longer.
	RuleRecursiveGrowth = "recursive_growth"
	// RuleMemoryBudget: more than MaxWorkAreas sorts, hashes and
	// materialisations, each of which may use work_mem.
	RuleMemoryBudget = "memory_budget"
	// RuleInternalError: the guard itself failed (a recovered panic); fail closed.
	RuleInternalError = "internal_error"
)

// AllRules lists every rule id, in the order of the table in doc.go.
var AllRules = []string{
	RuleInputTooLarge, RuleInputTooDeep, RuleInvalidInput, RuleEmptyStatement,
	RuleMultipleStatements, RuleParseError, RuleAmbiguousLiteral,
	RuleStatementNotAllowed, RuleDeleteForbidden, RuleTruncateForbidden,
	RuleMergeForbidden, RuleDDLForbidden, RulePrivilegeChangeForbidden,
	RuleWriteRequiresWriteMode, RuleWriteModeRequiresWrite,
	RuleExplainAnalyze, RuleExplainOption,
	RuleNodeNotAllowed, RuleDataModifyingCTE, RuleSelectInto, RuleLockingClause,
	RuleParameterNotAllowed, RuleFunctionNotAllowed, RuleCastNotAllowed,
	RuleRelationNotAllowed, RuleSystemCatalog, RuleSchemaNotAllowed, RuleAirlockSchema,
	RuleTableNotWritable, RuleNoWriteGrant, RuleWriteOperationNotGranted,
	RuleUpdateWithoutWhere, RuleUpdateWhereConstant, RuleWriteReadsOtherTable,
	RuleWriteReadsSensitiveColumn, RuleWriteColumnNotAllowed,
	RuleInsertColumnsRequired, RuleOnConflictUpdate,
	RuleValueTooLarge, RuleAccumulationUnbounded, RuleSubqueryUnbounded, RuleRecursiveGrowth,
	RuleMemoryBudget, RuleInternalError,
}

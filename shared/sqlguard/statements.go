package sqlguard

import (
	"strings"
	"unicode"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// A stmtClass says what a top-level statement is and which rule refuses it.
// rule is empty for the statement types that have their own checks
// (SELECT, EXPLAIN, INSERT, UPDATE).
type stmtClass struct {
	kind  string // Decision.Kind
	label string // what the developer typed, for messages: "SET", "COPY", ...
	rule  string
}

// Statement types refused in every mode whatever the grants, by rule.
// Names are protobuf message names of pg_query's parse tree.
var (
	privilegeStmts = map[string]string{
		"GrantStmt":                  "GRANT/REVOKE",
		"GrantRoleStmt":              "GRANT/REVOKE role",
		"AlterDefaultPrivilegesStmt": "ALTER DEFAULT PRIVILEGES",
		"CreateRoleStmt":             "CREATE ROLE",
		"AlterRoleStmt":              "ALTER ROLE",
		"AlterRoleSetStmt":           "ALTER ROLE ... SET",
		"DropRoleStmt":               "DROP ROLE",
		"ReassignOwnedStmt":          "REASSIGN OWNED",
		"DropOwnedStmt":              "DROP OWNED",
		"AlterOwnerStmt":             "ALTER ... OWNER TO",
		"CreateUserMappingStmt":      "CREATE USER MAPPING",
		"AlterUserMappingStmt":       "ALTER USER MAPPING",
		"DropUserMappingStmt":        "DROP USER MAPPING",
	}
	// Labels for the DDL statements a developer is most likely to try. Any
	// other Create*/Alter*/Drop* statement is DDL too (see classifyStmt).
	ddlLabels = map[string]string{
		"CreateStmt":              "CREATE TABLE",
		"CreateTableAsStmt":       "CREATE TABLE AS / CREATE MATERIALIZED VIEW",
		"ViewStmt":                "CREATE VIEW",
		"IndexStmt":               "CREATE INDEX",
		"CreateFunctionStmt":      "CREATE FUNCTION/PROCEDURE",
		"AlterTableStmt":          "ALTER TABLE",
		"DropStmt":                "DROP",
		"AlterSystemStmt":         "ALTER SYSTEM",
		"CreateSchemaStmt":        "CREATE SCHEMA",
		"RenameStmt":              "ALTER ... RENAME",
		"CommentStmt":             "COMMENT",
		"SecLabelStmt":            "SECURITY LABEL",
		"CreateExtensionStmt":     "CREATE EXTENSION",
		"RefreshMatViewStmt":      "REFRESH MATERIALIZED VIEW",
		"CreateSeqStmt":           "CREATE SEQUENCE",
		"CreateTrigStmt":          "CREATE TRIGGER",
		"CreateEventTrigStmt":     "CREATE EVENT TRIGGER",
		"RuleStmt":                "CREATE RULE",
		"DefineStmt":              "CREATE AGGREGATE/OPERATOR/TYPE",
		"CompositeTypeStmt":       "CREATE TYPE",
		"CreateEnumStmt":          "CREATE TYPE ... AS ENUM",
		"CreateRangeStmt":         "CREATE TYPE ... AS RANGE",
		"CreateDomainStmt":        "CREATE DOMAIN",
		"CreatePolicyStmt":        "CREATE POLICY",
		"CreatedbStmt":            "CREATE DATABASE",
		"DropdbStmt":              "DROP DATABASE",
		"ImportForeignSchemaStmt": "IMPORT FOREIGN SCHEMA",
		"ReplicaIdentityStmt":     "ALTER TABLE ... REPLICA IDENTITY",
		"CreateCastStmt":          "CREATE CAST",
		"CreateConversionStmt":    "CREATE CONVERSION",
		"CreateTransformStmt":     "CREATE TRANSFORM",
		"CreatePLangStmt":         "CREATE LANGUAGE",
		"CreateStatsStmt":         "CREATE STATISTICS",
		"CreateAmStmt":            "CREATE ACCESS METHOD",
	}
	// Other statements a developer may type, refused as statement_not_allowed.
	utilityLabels = map[string]stmtClass{
		"VariableShowStmt":   {"show", "SHOW", RuleStatementNotAllowed},
		"CopyStmt":           {"copy", "COPY", RuleStatementNotAllowed},
		"DoStmt":             {"do", "DO", RuleStatementNotAllowed},
		"CallStmt":           {"call", "CALL", RuleStatementNotAllowed},
		"PrepareStmt":        {"prepare", "PREPARE", RuleStatementNotAllowed},
		"ExecuteStmt":        {"execute", "EXECUTE", RuleStatementNotAllowed},
		"DeallocateStmt":     {"deallocate", "DEALLOCATE", RuleStatementNotAllowed},
		"DeclareCursorStmt":  {"declare", "DECLARE", RuleStatementNotAllowed},
		"ClosePortalStmt":    {"close", "CLOSE", RuleStatementNotAllowed},
		"ListenStmt":         {"listen", "LISTEN", RuleStatementNotAllowed},
		"UnlistenStmt":       {"unlisten", "UNLISTEN", RuleStatementNotAllowed},
		"NotifyStmt":         {"notify", "NOTIFY", RuleStatementNotAllowed},
		"LoadStmt":           {"load", "LOAD", RuleStatementNotAllowed},
		"LockStmt":           {"lock", "LOCK", RuleStatementNotAllowed},
		"ClusterStmt":        {"cluster", "CLUSTER", RuleStatementNotAllowed},
		"ReindexStmt":        {"reindex", "REINDEX", RuleStatementNotAllowed},
		"CheckPointStmt":     {"checkpoint", "CHECKPOINT", RuleStatementNotAllowed},
		"DiscardStmt":        {"discard", "DISCARD", RuleStatementNotAllowed},
		"ConstraintsSetStmt": {"set", "SET CONSTRAINTS", RuleStatementNotAllowed},
		"TruncateStmt":       {"truncate", "TRUNCATE", RuleTruncateForbidden},
		"DeleteStmt":         {"delete", "DELETE", RuleDeleteForbidden},
		"MergeStmt":          {"merge", "MERGE", RuleMergeForbidden},
		"SelectStmt":         {"select", "SELECT", ""},
		"ExplainStmt":        {"explain", "EXPLAIN", ""},
		"InsertStmt":         {"insert", "INSERT", ""},
		"UpdateStmt":         {"update", "UPDATE", ""},
	}
)

// everyModeRules are the rules that refuse a statement whatever the mode and
// grants; EXPLAIN of such a statement reports the same rule.
var everyModeRules = map[string]bool{
	RuleDeleteForbidden: true, RuleTruncateForbidden: true, RuleMergeForbidden: true,
	RuleDDLForbidden: true, RulePrivilegeChangeForbidden: true,
}

// classifyStmt names a top-level statement. Unknown statement types are
// refused (fail closed), so a statement added by a future PostgreSQL is never
// allowed by accident.
func classifyStmt(n *pg.Node) stmtClass {
	if n == nil || n.Node == nil {
		return stmtClass{"unknown", "an empty statement", RuleStatementNotAllowed}
	}
	name := string(planOf(unwrap(n)).name)
	switch s := n.Node.(type) {
	case *pg.Node_SelectStmt:
		sel := s.SelectStmt
		switch {
		case len(sel.ValuesLists) > 0:
			return stmtClass{"values", "VALUES", ""}
		case isTableStmt(sel):
			return stmtClass{"table", "TABLE", ""}
		}
		return stmtClass{"select", "SELECT", ""}
	case *pg.Node_VariableSetStmt:
		v := s.VariableSetStmt
		kind, label := "set", "SET"
		if v.Kind == pg.VariableSetKind_VAR_RESET || v.Kind == pg.VariableSetKind_VAR_RESET_ALL {
			kind, label = "reset", "RESET"
		}
		switch strings.ToLower(v.Name) {
		case "role":
			// SET ROLE / RESET ROLE / SET SESSION AUTHORIZATION switch identity.
			return stmtClass{"privilege", label + " ROLE", RulePrivilegeChangeForbidden}
		case "session_authorization":
			return stmtClass{"privilege", label + " SESSION AUTHORIZATION", RulePrivilegeChangeForbidden}
		}
		if v.Name != "" {
			label += " " + v.Name
		}
		return stmtClass{kind, label, RuleStatementNotAllowed}
	case *pg.Node_TransactionStmt:
		return stmtClass{"transaction", transactionLabel(s.TransactionStmt.Kind), RuleStatementNotAllowed}
	case *pg.Node_VacuumStmt:
		if s.VacuumStmt.IsVacuumcmd {
			return stmtClass{"vacuum", "VACUUM", RuleStatementNotAllowed}
		}
		return stmtClass{"analyze", "ANALYZE", RuleStatementNotAllowed}
	case *pg.Node_FetchStmt:
		if s.FetchStmt.Ismove {
			return stmtClass{"move", "MOVE", RuleStatementNotAllowed}
		}
		return stmtClass{"fetch", "FETCH", RuleStatementNotAllowed}
	}
	if label, ok := privilegeStmts[name]; ok {
		return stmtClass{"privilege", label, RulePrivilegeChangeForbidden}
	}
	if label, ok := ddlLabels[name]; ok {
		return stmtClass{"ddl", label, RuleDDLForbidden}
	}
	if c, ok := utilityLabels[name]; ok {
		return c
	}
	for _, p := range []string{"Create", "Alter", "Drop"} {
		if strings.HasPrefix(name, p) {
			return stmtClass{"ddl", words(name), RuleDDLForbidden}
		}
	}
	return stmtClass{"other", words(name), RuleStatementNotAllowed}
}

// isTableStmt recognises `TABLE x`, which the grammar turns into SELECT * FROM
// x with no source location on the generated target list.
func isTableStmt(s *pg.SelectStmt) bool {
	if len(s.TargetList) != 1 || len(s.FromClause) != 1 {
		return false
	}
	rt := s.TargetList[0].GetResTarget()
	if rt == nil || rt.Location != -1 {
		return false
	}
	cr := rt.Val.GetColumnRef()
	return cr != nil && cr.Location == -1 && len(cr.Fields) == 1 && cr.Fields[0].GetAStar() != nil
}

func transactionLabel(k pg.TransactionStmtKind) string {
	switch k {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN"
	case pg.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION"
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return "ROLLBACK"
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK TO SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION"
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED"
	}
	return "transaction control"
}

// words turns a node name such as "AlterTSDictionaryStmt" into
// "ALTER TS DICTIONARY" for messages.
func words(name string) string {
	name = strings.TrimSuffix(name, "Stmt")
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

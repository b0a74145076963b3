package sqlguard

import (
	"strings"

	"google.golang.org/protobuf/proto"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// What a statement attempts that Airlock never allows, in any mode and under any grant
// ([Decision.Forbidden]). Security alerting keys on these, so they are stable.
const (
	ForbiddenDelete    = "delete"
	ForbiddenTruncate  = "truncate"
	ForbiddenMerge     = "merge"
	ForbiddenDDL       = "ddl"
	ForbiddenPrivilege = "privilege"
)

// forbiddenIn looks through every statement of a request, however deeply nested, for
// something Airlock never allows. The walker stops at the first rule a statement
// breaks, which need not be the alarming one: `EXPLAIN ANALYZE DELETE …` is refused as
// explain_analyze, `WITH x AS (DELETE …) SELECT` as data_modifying_cte and
// `SELECT 1; DROP TABLE users` as multiple_statements. Alerting must not depend on which
// rule happened to fire first, so this scan is separate from the rules.
func forbiddenIn(stmts []*pg.RawStmt) string {
	for _, s := range stmts {
		if s.Stmt == nil {
			continue
		}
		if f := forbiddenNode(unwrap(s.Stmt)); f != "" {
			return f
		}
	}
	return ""
}

func forbiddenNode(m proto.Message) string {
	if m == nil {
		return ""
	}
	if f := forbiddenKind(m); f != "" {
		return f
	}
	found := ""
	eachChild(m, nil, func(c proto.Message) bool {
		found = forbiddenNode(c)
		return found == ""
	})
	return found
}

// forbiddenKind classifies one node, without looking at its children.
func forbiddenKind(m proto.Message) string {
	switch n := m.(type) {
	case *pg.DeleteStmt:
		return ForbiddenDelete
	case *pg.TruncateStmt:
		return ForbiddenTruncate
	case *pg.MergeStmt:
		return ForbiddenMerge
	case *pg.VariableSetStmt:
		switch strings.ToLower(n.Name) {
		case "role", "session_authorization":
			return ForbiddenPrivilege
		}
		return ""
	case *pg.FuncCall:
		if setsIdentity(n) {
			return ForbiddenPrivilege
		}
		return ""
	}
	name := string(planOf(m).name)
	if _, ok := privilegeStmts[name]; ok {
		return ForbiddenPrivilege
	}
	if _, ok := ddlLabels[name]; ok {
		return ForbiddenDDL
	}
	if strings.HasSuffix(name, "Stmt") {
		for _, p := range []string{"Create", "Alter", "Drop"} {
			if strings.HasPrefix(name, p) {
				return ForbiddenDDL
			}
		}
	}
	return ""
}

// setsIdentity reports a set_config call that may switch the session's role:
// set_config('role', …) or set_config('session_authorization', …), and any call whose
// setting name is not a plain constant, since that could be either.
func setsIdentity(n *pg.FuncCall) bool {
	names := strs(n.Funcname)
	if len(names) == 0 || !strings.EqualFold(names[len(names)-1], "set_config") {
		return false
	}
	if len(n.Args) == 0 {
		return false
	}
	c := n.Args[0].GetAConst()
	if c == nil || c.GetSval() == nil {
		return true
	}
	switch strings.ToLower(strings.TrimSpace(c.GetSval().Sval)) {
	case "role", "session_authorization":
		return true
	}
	return false
}

package sqlguard

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// runeIndex is the 1-based character position of needle in s.
func runeIndex(s, needle string) int {
	i := strings.Index(s, needle)
	if i < 0 {
		return -1
	}
	return utf8.RuneCountInString(s[:i]) + 1
}

func TestPosition(t *testing.T) {
	g := New(demoCatalog())
	tcs := []struct {
		desc, sql, needle, rule string
		p                       Permissions
	}{
		{"function", "SELECT pg_sleep(1)", "pg_sleep", RuleFunctionNotAllowed, readNoGrants},
		{"function after multibyte text", "SELECT 'ééé', '日本', pg_sleep(1)", "pg_sleep", RuleFunctionNotAllowed, readNoGrants},
		{"function in a nested subquery", "SELECT (SELECT max(x) FROM (SELECT pg_backend_pid() AS x) s) -- ü", "pg_backend_pid", RuleFunctionNotAllowed, readNoGrants},
		{"system catalog after multibyte alias", `SELECT 1 AS "ñandú" FROM pg_authid`, "pg_authid", RuleSystemCatalog, readNoGrants},
		{"schema-qualified relation", "SELECT '€' FROM public.users", "public.users", RuleSchemaNotAllowed, readNoGrants},
		{"cast after a comment", "-- コメント\nSELECT 'users'::regclass", "regclass", RuleCastNotAllowed, readNoGrants},
		{"parse error", "SELECT 'é' ,, 1", ", 1", RuleParseError, readNoGrants},
		{"second statement", "SELECT 'é';  DELETE FROM trades", "DELETE", RuleMultipleStatements, readNoGrants},
		{"ambiguous literal", `SELECT 'ü', 'a\'`, `'a\'`, RuleAmbiguousLiteral, readNoGrants},
		{"EXPLAIN option", "EXPLAIN (FORMAT JSON, ANALYZE) SELECT 1", "ANALYZE", RuleExplainAnalyze, readNoGrants},
		{"nested DELETE", "WITH d AS (DELETE FROM trades RETURNING 1) SELECT 'ö'", "trades", RuleDataModifyingCTE, readNoGrants},
		{"sensitive column in a write", "UPDATE withdrawals SET status = 'ö' WHERE destination_address = 'x'", "destination_address", RuleWriteReadsSensitiveColumn, writeMasked},
		{"write column", "UPDATE withdrawals SET status = 'ö', amount = 1 WHERE id = 1", "amount", RuleWriteColumnNotAllowed, writeMasked},
		{"statement kind", "  \n  COPY users TO STDOUT", "COPY", RuleStatementNotAllowed, readNoGrants},
		{"too deep", "SELECT 'ä', " + strings.Repeat("(", 65) + "1" + strings.Repeat(")", 65), strings.Repeat("(", 1) + "1)", RuleInputTooDeep, readNoGrants},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			d := g.Check(tc.sql, tc.p)
			want := runeIndex(tc.sql, tc.needle)
			if d.Rule != tc.rule || d.Position != want {
				t.Errorf("when checking %q, want %s at %d, got %s at %d (%s)", tc.sql, tc.rule, want, d.Rule, d.Position, d.Message)
			}
		})
	}
}

func TestDecisionDetails(t *testing.T) {
	g := New(demoCatalog())
	tcs := []struct {
		desc, sql string
		p         Permissions
		kind      string
		tables    []string
		masked    []string
		funcs     []string
	}{
		{"direct", "SELECT email FROM users", readNoGrants, "select", []string{"users"}, []string{"users.email"}, nil},
		{"unmasked grant", "SELECT email FROM users", readUnmasked, "select", []string{"users"}, nil, nil},
		{"star", "SELECT * FROM users", readNoGrants, "select", []string{"users"}, []string{"users.email", "users.full_name", "users.phone"}, nil},
		{"TABLE", "TABLE accounts", readNoGrants, "table", []string{"accounts"}, []string{"accounts.balance"}, nil},
		{"whole row", "SELECT row_to_json(u) FROM users u", readNoGrants, "select", []string{"users"}, []string{"users.email", "users.full_name", "users.phone"}, []string{"row_to_json"}},
		{"table name as whole row", "SELECT users FROM users", readNoGrants, "select", []string{"users"}, []string{"users.email", "users.full_name", "users.phone"}, nil},
		{"alias.*", "SELECT d.* FROM deposits d", readNoGrants, "select", []string{"deposits"}, []string{"deposits.wallet_address"}, nil},
		{"alias column list", "SELECT mail FROM users AS u(uid, mail)", readNoGrants, "select", []string{"users"}, []string{"users.email"}, nil},
		{"alias column list, harmless column", "SELECT uid FROM users AS u(uid, mail)", readNoGrants, "select", []string{"users"}, nil, nil},
		{"join alias", "SELECT j.email FROM (users JOIN accounts ON accounts.user_id = users.id) AS j", readNoGrants, "select", []string{"accounts", "users"}, []string{"users.email"}, nil},
		{"CTE shadowing a table", "WITH accounts AS (SELECT email AS currency FROM users) SELECT currency FROM accounts", readNoGrants, "select", []string{"users"}, []string{"users.email"}, nil},
		{"LATERAL", "SELECT t.v FROM users u, LATERAL (SELECT u.phone) AS t(v)", readNoGrants, "select", []string{"users"}, []string{"users.phone"}, nil},
		{"oracle in WHERE", "SELECT id FROM users WHERE phone LIKE '+81%'", readNoGrants, "select", []string{"users"}, []string{"users.phone"}, nil},
		{"USING a sensitive column", "SELECT u.id FROM users u JOIN users v USING (email)", readNoGrants, "select", []string{"users"}, []string{"users.email"}, nil},
		{"no sensitive column", "SELECT count(*), max(id) FROM users", readNoGrants, "select", []string{"users"}, nil, []string{"count", "max"}},
		{"pg_catalog prefix dropped", "SELECT pg_catalog.lower(country) FROM users", readNoGrants, "select", []string{"users"}, nil, []string{"lower"}},
		{"VALUES", "VALUES (1), (2)", readNoGrants, "values", nil, nil, nil},
		{"EXPLAIN", "EXPLAIN SELECT phone FROM users", readNoGrants, "explain", []string{"users"}, []string{"users.phone"}, nil},
		{"write", "UPDATE withdrawals SET status = lower(status) WHERE id = 1", writeMasked, "update", []string{"withdrawals"}, nil, []string{"lower"}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			d := g.Check(tc.sql, tc.p)
			if !d.Allowed {
				t.Fatalf("when checking %q, want allowed, got %s: %s", tc.sql, d.Rule, d.Message)
			}
			if d.Kind != tc.kind || !slices.Equal(d.Tables, tc.tables) || !slices.Equal(d.MaskedColumns, tc.masked) || !slices.Equal(d.Functions, tc.funcs) {
				t.Errorf("when checking %q, want kind=%s tables=%v masked=%v funcs=%v, got kind=%s tables=%v masked=%v funcs=%v",
					tc.sql, tc.kind, tc.tables, tc.masked, tc.funcs, d.Kind, d.Tables, d.MaskedColumns, d.Functions)
			}
		})
	}
	d := g.Check("SELECT id, email FROM users", readNoGrants)
	if want := []string{"users.email", "users.id"}; !slices.Equal(d.Columns, want) {
		t.Errorf("Columns: want %v, got %v", want, d.Columns)
	}
	if d := g.Check("UPDATE withdrawals SET status = 'x' WHERE id = 1", writeMasked); d.Target != "withdrawals" {
		t.Errorf("Target: want withdrawals, got %q", d.Target)
	}
}

func TestStatementText(t *testing.T) {
	g := New(demoCatalog())
	tcs := []struct{ sql, want string }{
		{"  SELECT 1 ; ", "SELECT 1"},
		{"SELECT 1;;;", "SELECT 1"},
		{"-- lead\nSELECT 1 -- trail", "SELECT 1"},
		{"/* a */ SELECT U&'c' /* b */ ; -- x", "SELECT U&'c'"},
		{"SELECT '--' -- x", "SELECT '--'"},
		{"SELECT 1;\n-- trailing", "SELECT 1"},
		{"SELECT $$ -- $$", "SELECT $$ -- $$"},
		{"SELECT /* inner */ 1", "SELECT /* inner */ 1"},
		{"\tSELECT\r\n1\n", "SELECT\r\n1"},
		{"SELECT 1 AS a\u00a0", "SELECT 1 AS a\u00a0"}, // U+00A0 is an identifier character to PostgreSQL
	}
	for _, tc := range tcs {
		d := g.Check(tc.sql, readNoGrants)
		if !d.Allowed || d.Statement != tc.want {
			t.Errorf("when checking %q, want Statement %q, got allowed=%v %q (%s)", tc.sql, tc.want, d.Allowed, d.Statement, d.Message)
		}
	}
}

func TestFingerprint(t *testing.T) {
	g := New(demoCatalog())
	a := g.Check("SELECT id FROM trades WHERE id = 1", readNoGrants)
	b := g.Check("select  id from trades where id = 42 -- other constant", readNoGrants)
	c := g.Check("SELECT pair FROM trades WHERE id = 1", readNoGrants)
	if a.Fingerprint == "" || a.Fingerprint != b.Fingerprint || a.Fingerprint == c.Fingerprint {
		t.Errorf("fingerprints: want a == b != c, got %q %q %q", a.Fingerprint, b.Fingerprint, c.Fingerprint)
	}
	if d := g.Check("DELETE FROM trades", readNoGrants); d.Fingerprint == "" {
		t.Errorf("denied statements are fingerprinted too, for the audit log")
	}
}

func TestDeterministic(t *testing.T) {
	g := New(demoCatalog())
	for _, f := range []string{"legit-public.jsonl", "attacks-public.jsonl"} {
		for _, it := range loadCorpus(t, f) {
			if a, b := g.Check(it.SQL, readNoGrants), g.Check(it.SQL, readNoGrants); !reflect.DeepEqual(a, b) {
				t.Errorf("%s: two checks differ:\n%+v\n%+v", it.ID, a, b)
			}
		}
	}
}

func TestModeString(t *testing.T) {
	if Read.String() != "read" || Write.String() != "write" {
		t.Errorf("want read/write, got %s/%s", Read, Write)
	}
}

// TestConcurrentChecks: a Guard is shared by all requests of a function
// instance. Run with -race.
func TestConcurrentChecks(t *testing.T) {
	g := New(demoCatalog())
	items := loadCorpus(t, "legit-public.jsonl")
	done := make(chan bool)
	for i := 0; i < 4; i++ {
		go func() {
			for _, it := range items {
				if d := g.Check(it.SQL, readNoGrants); !d.Allowed {
					t.Errorf("%s: %s", it.ID, d.Message)
				}
			}
			done <- true
		}()
	}
	for i := 0; i < 4; i++ {
		<-done
	}
}

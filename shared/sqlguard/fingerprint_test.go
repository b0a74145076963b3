package sqlguard

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
)

// fingerprintCases exercise what pg_query's fingerprint treats specially:
// the sorted lists and their repeats, a child that adds nothing (kept only
// for a list holding just NIL, as DISTINCT's), RangeVar's digit runs and
// temporary tables, ResTarget's name outside a select list, casts of
// constants and parameters, IN and = ANY, the cut-off 100 nodes deep, the
// value nodes, an embedded struct (CREATE FOREIGN TABLE), and a spread of
// statement types the guard refuses but still fingerprints.
func fingerprintCases() []string {
	chain := func(n int) string {
		return "SELECT " + strings.TrimSuffix(strings.Repeat("a + ", n), " + ") + " FROM t"
	}
	nest := func(n int) string {
		return "SELECT " + strings.Repeat("f(", n) + "x" + strings.Repeat(")", n)
	}
	return []string{
		"SELECT DISTINCT a FROM t",
		"SELECT DISTINCT ON (a, b) a, b FROM t",
		"SELECT a, b, c FROM t, u, v",
		"SELECT c, b, a FROM v, u, t",
		"SELECT a, a, a FROM t, t",
		"SELECT 1, 2, 3",
		"SELECT 1 AS x, 2 AS y",
		"SELECT a AS renamed FROM t",
		"VALUES (1, 2), (3, 4), (1, 2)",
		"INSERT INTO t (a, b, c) VALUES (1, 2, 3), (4, 5, 6)",
		"INSERT INTO t (c, b, a) SELECT x, y, z FROM u RETURNING a AS r, b",
		"UPDATE t SET a = 1, b = DEFAULT, c = c + 1 WHERE id = $1 RETURNING *",
		"UPDATE t SET (a, b) = (SELECT x, y FROM u) WHERE id IN (1, 2, 3)",
		"SELECT * FROM t WHERE a IN (1, 2, 3) AND b = ANY ($1) AND c = ANY (ARRAY[1, 2])",
		"SELECT * FROM t WHERE a NOT IN (SELECT b FROM u) OR a BETWEEN 1 AND 2",
		"SELECT 1::int, $1::text, a::text, CAST(b AS numeric(10, 2)), '1'::date FROM t",
		"SELECT * FROM events_2024_01, part1, t12a3, \"Quoted99Name\"",
		"CREATE TEMP TABLE tmp_123 (a int)",
		"SELECT * FROM pg_temp.tmp_1234",
		"SELECT coalesce(a, b, 1), greatest(3, 2, 1), count(*), count(DISTINCT a) FILTER (WHERE b > 0) FROM t GROUP BY ROLLUP (a, b)",
		"SELECT a, rank() OVER (PARTITION BY b ORDER BY c DESC NULLS LAST ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
		"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r",
		"SELECT * FROM t LEFT JOIN u USING (id) NATURAL JOIN v CROSS JOIN LATERAL (SELECT 1) s(x)",
		"SELECT true, false, NULL, 1.5, 1e10, B'1010', X'ff', 'text', E'a\\nb', U&'d\\0061t\\+000061'",
		"SELECT a FROM t ORDER BY a LIMIT 10 OFFSET 5",
		"SELECT a FROM t FETCH FIRST 3 ROWS WITH TIES",
		"SELECT a FROM t FOR UPDATE SKIP LOCKED",
		"SELECT CASE WHEN a THEN 1 WHEN b THEN 2 ELSE 3 END, a IS NULL, a IS NOT DISTINCT FROM b, NOT a, a LIKE 'x%' ESCAPE '!' FROM t",
		"SELECT ROW(1, 2), ARRAY[[1, 2], [3, 4]], a[1:2], (b).f, (c).* FROM t",
		"SELECT * FROM generate_series(1, 3) WITH ORDINALITY AS g(n, i), ROWS FROM (f(1), g(2))",
		"SELECT * FROM xmltable('/r' PASSING x COLUMNS a int PATH 'a', b text)",
		"SELECT json_object('a': 1), json_array(1, 2), x IS JSON OBJECT FROM t",
		"SELECT a COLLATE \"C\", b AT TIME ZONE 'UTC', current_date, current_user, session_user FROM t",
		"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT 1",
		"SELECT 1; SELECT 2; SELECT 1",
		"DELETE FROM t WHERE a = 1 RETURNING a",
		"MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET a = u.a WHEN NOT MATCHED THEN INSERT VALUES (u.id)",
		"TRUNCATE t, u RESTART IDENTITY CASCADE",
		"CREATE TABLE x (id bigint PRIMARY KEY, a text NOT NULL DEFAULT 'x' CHECK (a <> ''), b int REFERENCES y (id) ON DELETE CASCADE) PARTITION BY RANGE (id)",
		"CREATE INDEX CONCURRENTLY IF NOT EXISTS i1 ON t USING btree (a DESC, lower(b)) INCLUDE (c) WHERE d > 0",
		"ALTER TABLE t ADD COLUMN c int, DROP COLUMN d, ALTER COLUMN e TYPE text USING e::text, OWNER TO bob",
		"CREATE FOREIGN TABLE ft (a int OPTIONS (column_name 'x')) SERVER s OPTIONS (table_name 'y')",
		"ALTER FUNCTION f(int) DEPENDS ON EXTENSION ext",
		"CREATE FUNCTION f(a int, OUT b int) RETURNS SETOF record LANGUAGE sql STABLE AS $$ SELECT 1 $$",
		"CREATE VIEW v WITH (security_barrier) AS SELECT 1 WITH CHECK OPTION",
		"CREATE ROLE r LOGIN PASSWORD 'p' VALID UNTIL '2030-01-01'",
		"GRANT SELECT, UPDATE (a) ON t TO r WITH GRANT OPTION",
		"REVOKE ALL ON SCHEMA s FROM PUBLIC CASCADE",
		"SET ROLE admin", "SET LOCAL search_path TO a, b", "RESET ALL", "SHOW work_mem",
		"SELECT set_config('role', 'x', false)",
		"PREPARE p1(int) AS SELECT $1", "EXECUTE p1(1)", "DEALLOCATE p1",
		"DECLARE c1 CURSOR WITH HOLD FOR SELECT 1", "FETCH FORWARD 5 FROM c1", "CLOSE c1",
		"BEGIN ISOLATION LEVEL SERIALIZABLE", "SAVEPOINT s1", "ROLLBACK TO SAVEPOINT s1", "PREPARE TRANSACTION 'g1'", "COMMIT",
		"LISTEN ch1", "NOTIFY ch1, 'x'", "UNLISTEN *",
		"COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true)",
		"COPY (SELECT 1) TO PROGRAM 'cat'",
		"DO $$ BEGIN NULL; END $$", "CALL p(1, 2)", "LOAD 'x'",
		"LOCK TABLE t IN ACCESS EXCLUSIVE MODE NOWAIT",
		"VACUUM (FULL, ANALYZE) t (a)", "ANALYZE t", "CLUSTER t USING i", "REINDEX TABLE CONCURRENTLY t", "CHECKPOINT", "DISCARD ALL",
		"CREATE RULE r AS ON SELECT TO t DO INSTEAD SELECT 1",
		"CREATE POLICY p ON t FOR SELECT TO r USING (a = current_user)",
		"CREATE TRIGGER tr BEFORE INSERT OR UPDATE OF a ON t FOR EACH ROW WHEN (NEW.a > 0) EXECUTE FUNCTION f()",
		"CREATE SEQUENCE s INCREMENT BY 2 MINVALUE 1 NO MAXVALUE CACHE 10 CYCLE",
		"ALTER SYSTEM SET work_mem = '1GB'",
		"CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA s VERSION '1.3'",
		"COMMENT ON TABLE t IS 'x'", "SECURITY LABEL ON TABLE t IS 'x'",
		"DROP TABLE IF EXISTS t, u CASCADE", "ALTER TABLE t RENAME TO u",
		"CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (1) TO (10)",
		"CREATE STATISTICS st (dependencies) ON a, b FROM t",
		"SELECT a FROM t TABLESAMPLE BERNOULLI (10) REPEATABLE (1)",
		"SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = t.a) AND a > ALL (SELECT b FROM u)",
		"SELECT GROUPING(a), a FROM t GROUP BY GROUPING SETS ((a), ())",
		"SELECT a INTO newt FROM t",
		"TABLE t",
		// Empty literals, which parse leaves to pg_query's C.
		"COMMENT ON TABLE t IS ''", "COMMENT ON TABLE t IS NULL", "SECURITY LABEL ON TABLE t IS ''",
		"NOTIFY ch, ''", "COPY t FROM ''", "LOAD ''", "LOAD $$$$", "LOAD $x$$x$", "LOAD E''", "LOAD U&''",
		"LOAD 'it''s'", "CREATE TABLESPACE ts LOCATION ''", "SELECT '' FROM t",
		chain(60), chain(99), chain(100), chain(101), chain(150),
		nest(60), nest(98), nest(99), nest(100), nest(120),
	}
}

// TestFingerprintMatchesPgQuery holds the Go fingerprint to pg_query's own
// (pg_query.Fingerprint parses the text again and fingerprints in C) over the
// whole input, several statements included, for the corpora, the rule and
// fuzz cases and fingerprintCases. It also counts the node types the inputs
// reach, so a shrinking corpus shows.
func TestFingerprintMatchesPgQuery(t *testing.T) {
	inputs := fingerprintCases()
	for _, name := range []string{"legit-public.jsonl", "attacks-public.jsonl"} {
		for _, it := range loadCorpus(t, name) {
			inputs = append(inputs, it.SQL)
		}
	}
	for _, tc := range ruleCases() {
		inputs = append(inputs, tc.sql)
	}
	g := New(demoCatalog())
	types := map[reflect.Type]bool{}
	compared, inGo := 0, 0
	for _, sql := range inputs {
		if !strings.HasPrefix(sql, "SELECT f(f(") && !strings.HasPrefix(sql, "SELECT a + a") {
			switch g.Check(sql, readNoGrants).Rule {
			case RuleInputTooLarge, RuleInputTooDeep, RuleInvalidInput, RuleAmbiguousLiteral:
				continue // never given to the parser: deep input can crash it
			}
		}
		want, err := pg.Fingerprint(sql)
		if err != nil {
			continue
		}
		tree, got, err := parse(sql)
		if err != nil {
			t.Errorf("parse(%q): %v, but pg_query.Fingerprint succeeds", sql, err)
			continue
		}
		if got != want {
			t.Errorf("fingerprint of %q: got %s, want pg_query's %s", sql, got, want)
		}
		compared++
		if emptyLiteral(sql) {
			continue // fingerprinted by pg_query's C
		}
		if fp := fmt.Sprintf("%016x", fingerprint(tree.Stmts)); fp != want {
			t.Errorf("Go fingerprint of %q: got %s, want pg_query's %s", sql, fp, want)
		}
		inGo++
		for _, s := range tree.Stmts {
			eachNode(s.Stmt, func(n *pg.Node) { types[reflect.TypeOf(n.Node)] = true })
		}
	}
	if compared < 300 || inGo < 300 {
		t.Errorf("only %d inputs compared, %d of them fingerprinted in Go", compared, inGo)
	}
	t.Logf("%d inputs compared (%d fingerprinted in Go), reaching %d node types", compared, inGo, len(types))
}

// eachNode calls f on n and every Node below it.
func eachNode(n *pg.Node, f func(*pg.Node)) {
	var walk func(m proto.Message) bool
	walk = func(m proto.Message) bool {
		if n, ok := m.(*pg.Node); ok && n.Node != nil {
			f(n)
		}
		eachChild(m, nil, walk)
		return true
	}
	walk(n)
}

// TestFingerprintNodesGenerated: fingerprint_nodes.go is what internal/fpgen
// makes of the pg_query_go in go.mod, so a new pg_query_go cannot leave the Go
// fingerprint following the old one's C.
func TestFingerprintNodesGenerated(t *testing.T) {
	out := filepath.Join(t.TempDir(), "fingerprint_nodes.go")
	if b, err := exec.Command("go", "run", "./internal/fpgen", out).CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/fpgen: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("fingerprint_nodes.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("fingerprint_nodes.go is not what internal/fpgen generates now; run go generate ./shared/sqlguard")
	}
}

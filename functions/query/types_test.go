package query_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/sqlguard"
)

// typeCases are values of every kind of PostgreSQL type a masked view can return. json is
// the value the JSON answer must hold (a JSON text, compared after decoding, numbers by
// their digits); "" means the JSON string of the server's own text output. text is the
// table and CSV cell; "" means the server's text output, which psql prints.
var typeCases = []struct {
	desc, expr, json, text string
}{
	{"smallint", `(-12)::int2`, `-12`, `-12`},
	{"integer", `(-2147483648)::int4`, `-2147483648`, `-2147483648`},
	{"bigint", `9223372036854775807::int8`, `9223372036854775807`, `9223372036854775807`},
	{"oid", `12::oid`, `12`, `12`},
	{"numeric keeps its scale", `12.50::numeric(10,2)`, `12.50`, `12.50`},
	{"numeric beyond float64", `123456789012345678901234567890.123456789::numeric`, `123456789012345678901234567890.123456789`, ``},
	{"numeric NaN", `'NaN'::numeric`, `"NaN"`, `NaN`},
	{"numeric Infinity", `'Infinity'::numeric`, `"Infinity"`, `Infinity`},
	{"numeric -Infinity", `'-Infinity'::numeric`, `"-Infinity"`, `-Infinity`},
	{"double", `1.5::float8`, `1.5`, `1.5`},
	{"double with exponent", `1e300::float8`, `1e+300`, `1e+300`},
	{"double NaN", `'NaN'::float8`, `"NaN"`, `NaN`},
	{"double -Infinity", `'-Infinity'::float8`, `"-Infinity"`, `-Infinity`},
	{"real", `0.1::float4`, `0.1`, `0.1`},
	{"money", `12.5::money`, ``, ``},
	{"boolean true", `true`, `true`, `t`},
	{"boolean false", `false`, `false`, `f`},
	{"text", `'a "b" \c <d> & é'::text`, `"a \"b\" \\c <d> & é"`, `a "b" \c <d> & é`},
	{"varchar", `'x'::varchar(3)`, `"x"`, `x`},
	{"char(n) keeps its padding", `'ab'::char(4)`, `"ab  "`, `ab  `},
	{"name", `'n'::name`, `"n"`, `n`},
	{`"char"`, `'a'::"char"`, `"a"`, `a`},
	{"date", `'2024-02-29'::date`, `"2024-02-29"`, `2024-02-29`},
	{"date infinity", `'infinity'::date`, `"infinity"`, `infinity`},
	{"date -infinity", `'-infinity'::date`, `"-infinity"`, `-infinity`},
	{"timestamp", `'2024-01-02 03:04:05.123456'::timestamp`, `"2024-01-02 03:04:05.123456"`, `2024-01-02 03:04:05.123456`},
	{"timestamp -infinity", `'-infinity'::timestamp`, `"-infinity"`, `-infinity`},
	{"timestamptz", `'2024-01-02 03:04:05.5+00'::timestamptz`, ``, ``},
	{"timestamptz infinity", `'infinity'::timestamptz`, `"infinity"`, `infinity`},
	{"time", `'12:34:56.789'::time`, `"12:34:56.789"`, `12:34:56.789`},
	{"time with time zone", `'12:34:56+02'::timetz`, `"12:34:56+02"`, `12:34:56+02`},
	{"interval", `'1 year 2 mons 3 days 04:05:06'::interval`, `"1 year 2 mons 3 days 04:05:06"`, `1 year 2 mons 3 days 04:05:06`},
	{"negative interval", `'-1 day -00:00:01'::interval`, `"-1 days -00:00:01"`, `-1 days -00:00:01`},
	{"bytea as \\x hex", `'\x0102ff'::bytea`, `"\\x0102ff"`, `\x0102ff`},
	{"bit", `B'101'::bit(3)`, `"101"`, `101`},
	{"bit varying", `B'1'::varbit`, `"1"`, `1`},
	{"uuid", `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid`, `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`},
	{"inet", `'10.1.2.3/8'::inet`, `"10.1.2.3/8"`, `10.1.2.3/8`},
	{"cidr", `'10.0.0.0/8'::cidr`, `"10.0.0.0/8"`, `10.0.0.0/8`},
	{"macaddr", `'08:00:2b:01:02:03'::macaddr`, `"08:00:2b:01:02:03"`, `08:00:2b:01:02:03`},
	{"macaddr8", `'08:00:2b:01:02:03:04:05'::macaddr8`, `"08:00:2b:01:02:03:04:05"`, `08:00:2b:01:02:03:04:05`},
	{"integer array", `ARRAY[1, NULL, 3]`, `"{1,NULL,3}"`, `{1,NULL,3}`},
	{"two-dimensional array", `ARRAY[[1, 2], [3, 4]]`, `"{{1,2},{3,4}}"`, `{{1,2},{3,4}}`},
	{"text array", `ARRAY['a b', 'c"d', NULL]::text[]`, `"{\"a b\",\"c\\\"d\",NULL}"`, `{"a b","c\"d",NULL}`},
	{"timestamptz array", `ARRAY['infinity'::timestamptz, '-infinity']`, `"{infinity,-infinity}"`, `{infinity,-infinity}`},
	{"bytea array", `ARRAY['\x01'::bytea]`, `"{\"\\\\x01\"}"`, `{"\\x01"}`},
	{"numeric array", `ARRAY[1.50, 'NaN']::numeric[]`, `"{1.50,NaN}"`, `{1.50,NaN}`},
	{"boolean array", `ARRAY[true, false]`, `"{t,f}"`, `{t,f}`},
	{"int4range", `int4range(1, 5)`, `"[1,5)"`, `[1,5)`},
	{"numrange", `numrange(1.5, 2.5, '[]')`, `"[1.5,2.5]"`, `[1.5,2.5]`},
	{"daterange", `daterange('2024-01-01', 'infinity')`, `"[2024-01-01,infinity)"`, `[2024-01-01,infinity)`},
	{"empty range", `'empty'::int4range`, `"empty"`, `empty`},
	{"multirange", `'{[1,2), [5,6)}'::int4multirange`, `"{[1,2),[5,6)}"`, `{[1,2),[5,6)}`},
	{"json keeps its text", `'{"a": [1, "x"],  "b":null}'::json`, `{"a": [1, "x"], "b": null}`, `{"a": [1, "x"],  "b":null}`},
	{"jsonb", `'{"b": 1.50, "a": "<x>"}'::jsonb`, `{"a": "<x>", "b": 1.50}`, `{"a": "<x>", "b": 1.50}`},
	{"jsonb string", `'"s"'::jsonb`, `"s"`, `"s"`},
	{"jsonb array", `'[1, true]'::jsonb`, `[1, true]`, `[1, true]`},
	{"xml", `'<a x="1">b</a>'::xml`, `"<a x=\"1\">b</a>"`, `<a x="1">b</a>`},
	{"tsvector", `'b a a'::tsvector`, `"'a' 'b'"`, `'a' 'b'`},
	{"tsquery", `'a & !b'::tsquery`, `"'a' & !'b'"`, `'a' & !'b'`},
	{"point", `'(1,2.5)'::point`, `"(1,2.5)"`, `(1,2.5)`},
	{"line", `'{1,2,3}'::line`, `"{1,2,3}"`, `{1,2,3}`},
	{"lseg", `'[(0,0),(1,1)]'::lseg`, `"[(0,0),(1,1)]"`, `[(0,0),(1,1)]`},
	{"box", `'(0,0),(1,1)'::box`, `"(1,1),(0,0)"`, `(1,1),(0,0)`},
	{"path", `'[(0,0),(1,1)]'::path`, `"[(0,0),(1,1)]"`, `[(0,0),(1,1)]`},
	{"polygon", `'((0,0),(1,1),(1,0))'::polygon`, `"((0,0),(1,1),(1,0))"`, `((0,0),(1,1),(1,0))`},
	{"circle", `'<(0,0),1>'::circle`, `"<(0,0),1>"`, `<(0,0),1>`},
	{"pg_lsn", `'0/16B3748'::pg_lsn`, `"0/16B3748"`, `0/16B3748`},
	{"enum", `'happy'::mood`, `"happy"`, `happy`},
	{"enum array", `ARRAY['sad', 'happy']::mood[]`, `"{sad,happy}"`, `{sad,happy}`},
	{"domain over integer", `7::posint`, `7`, `7`},
	{"domain over text", `'x'::shorttext`, `"x"`, `x`},
	{"composite", `ROW(1, 'a b')::pairt`, `"(1,\"a b\")"`, `(1,"a b")`},
	{"record", `ROW(1, NULL, '')`, `"(1,,\"\")"`, `(1,,"")`},
	{"NULL", `NULL::text`, `null`, ``},
	{"NULL of a number", `NULL::numeric`, `null`, ``},
	{"empty string", `''::text`, `""`, ``},
}

// TestEveryTypeRendersAsPsqlWould reads one value of each type through the executing
// layer and the renderer of every format, from the real database: JSON keeps numbers,
// booleans, JSON and NULL as such and gives everything else as the text psql prints;
// table and CSV cells are that text. The guard is bypassed so that its rules (written
// by others, about which expressions may run) do not decide which types are tested.
func TestEveryTypeRendersAsPsqlWould(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	// Types of the application's own: created where developers' queries resolve names.
	for _, ddl := range []string{
		`CREATE TYPE masked.mood AS ENUM ('sad', 'happy')`,
		`CREATE DOMAIN masked.posint AS integer CHECK (VALUE > 0)`,
		`CREATE DOMAIN masked.shorttext AS text CHECK (length(VALUE) < 10)`,
		`CREATE TYPE masked.pairt AS (a integer, b text)`,
	} {
		if _, err := h.admin.Exec(ctx, ddl); err != nil {
			t.Fatalf("%s: %v", ddl, err)
		}
	}
	handler := query.New(h.deps)

	// The server's own text output of each value, read as psql reads it.
	var cols []string
	for i, tc := range typeCases {
		cols = append(cols, fmt.Sprintf("%s AS c%d", tc.expr, i))
	}
	sql := "SELECT " + strings.Join(cols, ", ")
	admin, err := h.admin.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SET search_path = masked`); err != nil {
		t.Fatal(err)
	}
	rows, err := admin.Query(ctx, sql, pgx.QueryExecModeExec)
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("%s: %v", sql, rows.Err())
	}
	server := make([]*string, len(typeCases))
	for i, v := range rows.RawValues() {
		if v != nil {
			s := string(v)
			server[i] = &s
		}
	}
	rows.Close()
	admin.Exec(ctx, `RESET search_path`)
	admin.Release()

	run := func(format string) []byte {
		t.Helper()
		dec := sqlguard.Decision{Allowed: true, Kind: "select", Statement: sql}
		w := handler.Unguarded(ctx, dev1, query.Request{Format: format}, &dec)
		if w.Code != http.StatusOK {
			t.Fatalf("reading every type as %s: want = 200, got = %d %s", format, w.Code, w.Body)
		}
		return w.Body.Bytes()
	}

	var res struct {
		Columns []struct{ Name, Type string } `json:"columns"`
		Rows    [][]json.RawMessage           `json:"rows"`
	}
	if err := json.Unmarshal(run("json"), &res); err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != len(typeCases) {
		t.Fatalf("reading every type as JSON: want one row of %d values, got = %v %v", len(typeCases), res.Rows, err)
	}
	table := strings.Split(string(run("table")), "\n")
	records, err := csv.NewReader(bytes.NewReader(run("csv"))).ReadAll()
	if err != nil || len(records) != 2 {
		t.Fatalf("reading every type as CSV: want a header and one record, got = %v %v", records, err)
	}
	cells := strings.Split(table[2], " | ")
	if len(cells) != len(typeCases) {
		t.Fatalf("reading every type as a table: want %d cells, got = %d in %q", len(typeCases), len(cells), table[2])
	}

	for i, tc := range typeCases {
		t.Run(tc.desc, func(t *testing.T) {
			wantText := tc.text
			if wantText == "" && server[i] != nil {
				wantText = *server[i]
			}
			if server[i] != nil && *server[i] != wantText {
				t.Fatalf("the server prints %s as %q, not %q: fix the case", tc.expr, *server[i], wantText)
			}
			wantJSON := tc.json
			if wantJSON == "" {
				b, _ := json.Marshal(wantText)
				wantJSON = string(b)
			}
			if got, want := decodeNumbers(t, res.Rows[0][i]), decodeNumbers(t, []byte(wantJSON)); !reflect.DeepEqual(got, want) {
				t.Errorf("when reading %s as JSON, want = %s, got = %s", tc.expr, wantJSON, res.Rows[0][i])
			}
			width := max(utf8.RuneCountInString(res.Columns[i].Name), utf8.RuneCountInString(wantText))
			if want := wantText + strings.Repeat(" ", width-utf8.RuneCountInString(wantText)); cells[i] != want {
				t.Errorf("when reading %s as a table, want the cell %q, got = %q", tc.expr, want, cells[i])
			}
			if records[1][i] != wantText {
				t.Errorf("when reading %s as CSV, want the field %q, got = %q", tc.expr, wantText, records[1][i])
			}
			if want, ok := typeNames[tc.desc]; ok && res.Columns[i].Type != want {
				t.Errorf("when reading %s, want the column's type named %q, got = %q", tc.expr, want, res.Columns[i].Type)
			}
		})
	}
}

// typeNames are the column types some cases must be named by: pg_type.typname, also for
// the types pgx has no codec for.
var typeNames = map[string]string{
	"numeric keeps its scale": "numeric", "money": "money", "enum": "mood", "enum array": "_mood",
	"pg_lsn": "pg_lsn", "time with time zone": "timetz", "integer array": "_int4",
	"domain over integer": "int4", "composite": "pairt", "record": "record", `"char"`: "char",
	"char(n) keeps its padding": "bpchar", "timestamptz": "timestamptz", "jsonb": "jsonb",
}

// decodeNumbers decodes a JSON text keeping numbers as their digits, so 12.50 and 12.5
// differ, and so do the number 1 and the string "1".
func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// TestIssueExamplesRenderThroughTheFunction: the values issue 11 found rendered wrongly,
// through the whole function (guard included): 'infinity'::timestamptz was 1,
// '-infinity'::date -1, "char" 97 and xml base64.
func TestIssueExamplesRenderThroughTheFunction(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	r := h.query(dev1, `SELECT 'infinity'::timestamptz AS ts, '-infinity'::date AS d, 'a'::"char" AS c, '<a>b</a>'::xml AS x, NULL::int AS n, ''::text AS e`)
	if r.status != http.StatusOK {
		t.Fatalf("want = 200, got = %s", r)
	}
	res := r.read(t)
	want := []any{"infinity", "-infinity", "a", "<a>b</a>", nil, ""}
	if len(res.Rows) != 1 || !reflect.DeepEqual(res.Rows[0], want) {
		t.Errorf("when reading infinity, -infinity, \"char\", xml, NULL and '' as JSON, want = %v, got = %v", want, res.Rows)
	}
	r = h.post(dev1, query.Request{SQL: `SELECT 'infinity'::timestamptz AS ts, '-infinity'::date AS d, 'a'::"char" AS c, '<a>b</a>'::xml AS x, NULL::int AS n, ''::text AS e`, Format: "csv"})
	if got := strings.Split(string(r.body), "\n")[1]; got != `infinity,-infinity,a,<a>b</a>,,""` {
		t.Errorf("when reading the same as CSV, want the record %q (NULL empty, '' quoted), got = %q", `infinity,-infinity,a,<a>b</a>,,""`, got)
	}
}

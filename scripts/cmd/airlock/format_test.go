package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: output differs from the golden file\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

// noRawUnsafe fails when out holds a character that could drive a terminal: anything
// unsafe but a newline, and the tabs CSV keeps inside quoted fields.
func noRawUnsafe(t *testing.T, desc string, out []byte) {
	t.Helper()
	for i, r := range string(out) {
		if r != '\n' && !(r == '\t' && desc == "csv") && (unsafe(r) || r == utf8.RuneError) {
			t.Errorf("%s: raw U+%04X at byte %d reaches the terminal", desc, r, i)
		}
	}
}

// loadAnswer reads testdata/answer.json: a read's answer as ExecuteQuery sends it
// (recorded from the server, with a masked column added), holding NULLs, an empty
// string, the text "NULL", numbers with their digits, NaN and Infinity, booleans, a
// jsonb value, non-ASCII and wide values, control characters, bidi and zero-width
// characters, and backslashes that look like escapes.
func loadAnswer(t *testing.T) *readAnswer {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "answer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a readAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	a.raw = raw
	return &a
}

func TestFormatsGolden(t *testing.T) {
	a := loadAnswer(t)
	for _, format := range []string{"table", "expanded", "csv", "json", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			(&output{format: format, w: &b, notes: &b}).print(a)
			noRawUnsafe(t, format, b.Bytes())
			golden(t, "answer."+format, b.Bytes())
		})
	}
}

// TestFormatsGiveValuesBack checks the promise of the escapes: the CSV parses back, and
// undoing the escapes gives every value exactly; JSON lines decode to the answer's
// values; NULL stays distinct from the empty string and from the text "NULL".
func TestFormatsGiveValuesBack(t *testing.T) {
	a := loadAnswer(t)
	var want [][]*string // nil is NULL
	for _, row := range a.Rows {
		var vals []*string
		for i, c := range a.Columns {
			v := decodeValue(c, row[i])
			if v.null {
				vals = append(vals, nil)
			} else {
				s := v.text
				vals = append(vals, &s)
			}
		}
		want = append(want, vals)
	}

	var b bytes.Buffer
	writeCSV(&b, a)
	recs, err := csv.NewReader(bytes.NewReader(b.Bytes())).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, b.Bytes())
	}
	raw := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for r, vals := range want {
		for i, v := range vals {
			got := unescape(recs[r+1][i])
			switch {
			case v == nil && recs[r+1][i] != "":
				t.Errorf("CSV row %d column %s: want NULL as an empty field, got = %q", r+1, a.Columns[i].Name, recs[r+1][i])
			case v != nil && got != *v:
				t.Errorf("CSV row %d column %s: want %q back, got = %q", r+1, a.Columns[i].Name, *v, got)
			}
		}
	}
	if !strings.Contains(strings.Join(raw, "\n"), `,"",`) {
		t.Errorf("CSV: want the empty string written as \"\", got = %s", b.Bytes())
	}

	b.Reset()
	writeJSONLines(&b, a)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(a.Rows) {
		t.Fatalf("JSON lines: want one line per row, got = %d lines", len(lines))
	}
	for r, l := range lines {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("JSON line %d does not decode: %v", r+1, err)
		}
		for i, c := range a.Columns {
			var g, w any
			json.Unmarshal(obj[c.Name], &g)
			json.Unmarshal(a.Rows[r][i], &w)
			if gj, _ := json.Marshal(g); string(gj) != string(mustJSON(w)) {
				t.Errorf("JSON line %d column %s: want %s, got = %s", r+1, c.Name, mustJSON(w), gj)
			}
		}
		if strings.Contains(l, "12.5,") {
			t.Errorf("JSON line %d: want numbers with the server's digits (12.50), got = %s", r+1, l)
		}
	}

	b.Reset()
	writeTable(&b, a, 0)
	table := b.String()
	for _, s := range []string{"| NULL ", `\u{4e}ULL`, "email (masked)", `\u{1b}[31m`, `\u{202e}`, `back\slash \u{5c}n`, "(2 rows)"} {
		if !strings.Contains(table, s) {
			t.Errorf("table: want %q in it, got =\n%s", s, table)
		}
	}
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.HasPrefix(s[i:], `\u{`) {
			if end := strings.IndexByte(s[i:], '}'); end > 0 {
				var r rune
				for _, c := range s[i+3 : i+end] {
					r = r*16 + rune(strings.IndexRune("0123456789abcdef", c))
				}
				b.WriteRune(r)
				i += end
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestTruncationFooter(t *testing.T) {
	a := &readAnswer{Columns: []column{{Name: "n", Type: "int4"}}, Rows: [][]json.RawMessage{{json.RawMessage("1")}}}
	tcs := []struct {
		desc, by string
		asked    int
		want     string
	}{
		{"not truncated", "", 0, "(1 row)"},
		{"the rows the caller asked for", "max_rows", 1, "(1 row; truncated: more rows than --max-rows 1)"},
		{"the policy's default", "max_rows", 0, "(1 row; truncated: more rows than the policy's default_max_rows; ask for more with --max-rows, up to its max_rows)"},
		{"the bytes", "max_bytes", 0, "(1 row; truncated: the rows reached the policy's max_bytes; select fewer or narrower columns)"},
	}
	for _, tc := range tcs {
		a.Truncated, a.TruncatedBy = tc.by != "", tc.by
		if got := footer(a, tc.asked); got != tc.want {
			t.Errorf("when %s, want footer = %q, got = %q", tc.desc, tc.want, got)
		}
	}
}

func TestEscapes(t *testing.T) {
	tcs := []struct{ in, table, visible string }{
		{"plain", "plain", "plain"},
		{"a\nb", `a\nb`, "a\nb"},
		{"\x1b]0;title\x07", `\u{1b}]0;title\u{7}`, `\u{1b}]0;title\u{7}`},
		{"\u202e\u2066\u200b\ufeff", `\u{202e}\u{2066}\u{200b}\u{feff}`, `\u{202e}\u{2066}\u{200b}\u{feff}`},
		{"\u0085\u2028\u2029", `\u{85}\u{2028}\u{2029}`, `\u{85}\u{2028}\u{2029}`},
		{`\n \t \u{1b} \x`, `\u{5c}n \u{5c}t \u{5c}u{1b} \x`, `\n \t \u{1b} \x`},
		{"東京", "東京", "東京"},
	}
	for _, tc := range tcs {
		if got := cell(tc.in); got != tc.table {
			t.Errorf("cell(%q): want %q, got = %q", tc.in, tc.table, got)
		}
		if got := visible(tc.in); got != tc.visible {
			t.Errorf("visible(%q): want %q, got = %q", tc.in, tc.visible, got)
		}
		if got := unescape(cell(tc.in)); !strings.Contains(tc.in, `\`) && strings.ReplaceAll(got, `\n`, "\n") != tc.in {
			t.Errorf("cell(%q) read back: want the value, got = %q", tc.in, got)
		}
	}
	// JSON text: a raw unsafe character inside a string (valid JSON lets bidi overrides
	// and C1 controls stand raw) becomes its escape, and what decodes is the same value.
	raw := []byte("{\"a\":\"x\u202e\xc2\x9b\u2028\"}\n")
	out := safeJSON(raw)
	noRawUnsafe(t, "safeJSON", out)
	var v1, v2 map[string]string
	json.Unmarshal(raw, &v1)
	if err := json.Unmarshal(out, &v2); err != nil || v1["a"] != v2["a"] {
		t.Errorf("safeJSON: want the same value back, got = %q (%v), want %q", v2["a"], err, v1["a"])
	}
}

func TestSplitStatements(t *testing.T) {
	tcs := []struct {
		in   string
		want []string
		rest string
	}{
		{"SELECT 1;", []string{"SELECT 1"}, ""},
		{"SELECT 1; SELECT 2;\n", []string{"SELECT 1", "SELECT 2"}, "\n"},
		{"SELECT 1", nil, "SELECT 1"},
		{"SELECT ';';", []string{"SELECT ';'"}, ""},
		{"SELECT 'it''s;';", []string{"SELECT 'it''s;'"}, ""},
		{`SELECT E'a\';b';`, []string{`SELECT E'a\';b'`}, ""},
		{`SELECT 'a\';b';`, []string{`SELECT 'a\'`}, "b';"},
		{`SELECT ";x" FROM t;`, []string{`SELECT ";x" FROM t`}, ""},
		{"SELECT $$a;b$$, $t$;$t$;", []string{"SELECT $$a;b$$, $t$;$t$"}, ""},
		{"SELECT 1 -- a; comment\n;", []string{"SELECT 1 -- a; comment"}, ""},
		{"SELECT /* a; /* nested; */ b; */ 1;", []string{"SELECT /* a; /* nested; */ b; */ 1"}, ""},
		{";;  ;", nil, ""},
		{"SELECT $1;", []string{"SELECT $1"}, ""},
		{"SELECT 'open;\n", nil, "SELECT 'open;\n"},
	}
	for _, tc := range tcs {
		got, rest := splitStatements(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || rest != tc.rest {
			t.Errorf("splitStatements(%q): want %q and rest %q, got = %q and %q", tc.in, tc.want, tc.rest, got, rest)
		}
	}
}

func TestParseEndpoints(t *testing.T) {
	tcs := []struct {
		in, fn, url, aud string
		local, wantErr   bool
	}{
		{in: "http://127.0.0.1:8080", fn: fnQuery, url: "http://127.0.0.1:8080/ExecuteQuery/schema", aud: "http://127.0.0.1:8080/ExecuteQuery", local: true},
		{in: "https://europe-west1-p.cloudfunctions.net/", fn: fnApproval, url: "https://europe-west1-p.cloudfunctions.net/ApprovalCallback/schema", aud: "https://europe-west1-p.cloudfunctions.net/ApprovalCallback"},
		{in: `{"ExecuteQuery": "https://executequery-x.a.run.app", "RequestAccess": "https://ra.a.run.app/", "ApprovalCallback": "https://ac.a.run.app", "SweepExpired": "https://s.a.run.app"}`,
			fn: fnAccess, url: "https://ra.a.run.app/schema", aud: "https://ra.a.run.app"},
		{in: "http://example.com", wantErr: true}, // a token must not cross the network in clear
		{in: "ftp://example.com", wantErr: true},
		{in: "https://x.example.com/?a=b", wantErr: true},
		{in: `{"ExecuteQuery": "https://e.a.run.app"}`, wantErr: true},
		{in: `{"ExecuteQuery": "http://evil.example", "RequestAccess": "https://r", "ApprovalCallback": "https://a"}`, wantErr: true},
	}
	for _, tc := range tcs {
		e, err := parseEndpoints(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseEndpoints(%q): want error %v, got = %v", tc.in, tc.wantErr, err)
			continue
		}
		if err != nil {
			continue
		}
		if got := e.url(tc.fn, "/schema"); got != tc.url {
			t.Errorf("parseEndpoints(%q).url(%s): want %s, got = %s", tc.in, tc.fn, tc.url, got)
		}
		if got := e.audience(tc.fn); got != tc.aud {
			t.Errorf("parseEndpoints(%q).audience(%s): want %s, got = %s", tc.in, tc.fn, tc.aud, got)
		}
		if e.local() != tc.local {
			t.Errorf("parseEndpoints(%q).local(): want %v", tc.in, tc.local)
		}
	}
}

func TestPointAt(t *testing.T) {
	got := pointAt("SELECT 1,\n  2 FROM pg_authid", 19)
	want := "LINE 2:   2 FROM pg_authid\n                ^\n"
	if got != want {
		t.Errorf("pointAt: want\n%s\ngot =\n%s", want, got)
	}
}

package query

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// decodeCell reads a table cell (table true) or a CSV field, already unquoted, back into
// the value, following only what the comment on kind documents: \u{hex} is its
// character, and in a table \n, \r and \t are newline, carriage return and tab; every
// other backslash is itself.
func decodeCell(s string, table bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch c := s[i+1]; {
		case table && (c == 'n' || c == 'r' || c == 't'):
			b.WriteByte(map[byte]byte{'n': '\n', 'r': '\r', 't': '\t'}[c])
			i++
		case c == 'u' && i+2 < len(s) && s[i+2] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				b.WriteByte('\\') // not an escape Airlock writes: the test will see the mismatch
				continue
			}
			r, err := strconv.ParseUint(s[i+3:i+end], 16, 32)
			if err != nil {
				b.WriteByte('\\')
				continue
			}
			b.WriteRune(rune(r))
			i += end
		default:
			b.WriteByte('\\')
		}
	}
	return b.String()
}

// write runs f on an encoder writing to a buffer, and checks that the bytes and characters
// it counted are the ones it wrote.
func write(t *testing.T, f func(e *encoder)) string {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	e := &encoder{w: w}
	f(e)
	w.Flush()
	var count encoder
	f(&count)
	if count.n != buf.Len() || e.n != buf.Len() || count.runes != utf8.RuneCount(buf.Bytes()) {
		t.Errorf("the encoder counted %d bytes and %d characters, and wrote %d bytes and %d characters (%q)", count.n, count.runes, buf.Len(), utf8.RuneCount(buf.Bytes()), buf.String())
	}
	return buf.String()
}

// rawUnsafe returns the first unsafe character in s not in allowed, or -1.
func rawUnsafe(s, allowed string) rune {
	for _, r := range s {
		if unsafe(r) && !strings.ContainsRune(allowed, r) {
			return r
		}
	}
	return -1
}

var cellSeeds = []string{
	"", "plain", "\x1b]0;owned\x07\x1b[2J", "\u009b31m", "\u202egnp.exe\u202c", "zero\u200bwidth\u200d\ufeff",
	"\U000e0041tag", "\x7f", "\x00", "line\nbreak\r\nand\ttab", `C:\new\temp\raw`, `\`, `\\`, `\u{41}`, `\\u{41}`,
	`\u{`, `\x0102ff`, `{"\\x01"}`, "\\\x1b", "\\\n", `a "quoted", value`, "<b>&amp;</b>", "\u2028\u2029",
	"soft\u00adhyphen", "é ü 日本 🙂", `\n literally`, "\\u{1b}\x1b",
}

// FuzzCells: whatever the value, a table cell and a CSV field hold no unsafe character
// raw (CSV keeps newlines and tabs), read back into the value exactly, and are counted
// exactly; the JSON string decodes to the value and holds nothing unsafe either.
func FuzzCells(f *testing.F) {
	for _, s := range cellSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0xfffd) {
			t.Skip("PostgreSQL sends only valid UTF-8")
		}
		table := write(t, func(e *encoder) { e.textValue(tableStyle, []byte(v)) })
		if r := rawUnsafe(table, ""); r >= 0 {
			t.Errorf("table cell of %q = %q holds %U raw", v, table, r)
		}
		if got := decodeCell(table, true); got != v {
			t.Errorf("table cell of %q = %q reads back as %q", v, table, got)
		}

		field := write(t, func(e *encoder) { e.textValue(csvStyle, []byte(v)) })
		if r := rawUnsafe(field, "\n\t"); r >= 0 {
			t.Errorf("CSV field of %q = %q holds %U raw", v, field, r)
		}
		unquoted := field
		if csvQuoted([]byte(v)) {
			if len(field) < 2 || field[0] != '"' || field[len(field)-1] != '"' {
				t.Fatalf("CSV field of %q = %q: want it quoted", v, field)
			}
			unquoted = strings.ReplaceAll(field[1:len(field)-1], `""`, `"`)
		}
		if got := decodeCell(unquoted, false); got != v {
			t.Errorf("CSV field of %q = %q reads back as %q", v, field, got)
		}
		if !strings.ContainsFunc(v, unsafe) && !strings.Contains(v, `\u{`) && unquoted != v {
			t.Errorf("CSV field of %q = %q: want a value without unsafe characters written as it is", v, field)
		}

		js := write(t, func(e *encoder) { e.jsonValue(kindText, []byte(v)) })
		var got string
		if err := json.Unmarshal([]byte(js), &got); err != nil || got != v {
			t.Errorf("JSON of %q = %s decodes to %q (%v)", v, js, got, err)
		}
		if r := rawUnsafe(js, ""); r >= 0 || strings.ContainsAny(js, "<>&") {
			t.Errorf("JSON of %q = %s holds an unsafe character or <, >, & raw", v, js)
		}

		// A JSON value (json, jsonb) holding the text is passed on with the same escaping.
		doc, _ := json.Marshal(map[string]string{"k": v}) // encoding/json leaves C1 and bidi raw
		out := write(t, func(e *encoder) { e.jsonValue(kindJSON, doc) })
		var m map[string]string
		if err := json.Unmarshal([]byte(out), &m); err != nil || m["k"] != v {
			t.Errorf("jsonb holding %q = %s decodes to %q (%v)", v, out, m["k"], err)
		}
		if r := rawUnsafe(out, ""); r >= 0 {
			t.Errorf("jsonb holding %q = %s holds %U raw", v, out, r)
		}
	})
}

func TestIsJSONNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "12.50": true, "-1.5e-07": true, "1e+300": true, "1E5": true,
		"123456789012345678901234567890.123456789": true,
		"": false, "-": false, "01": false, "1.": false, ".5": false, "1e": false, "1e+": false, "+1": false,
		"NaN": false, "Infinity": false, "-Infinity": false, "1 ": false, "0x10": false,
	} {
		if got := isJSONNumber([]byte(s)); got != want {
			t.Errorf("isJSONNumber(%q): want = %v, got = %v", s, want, got)
		}
	}
}

// TestNullAndEmpty: NULL and the empty string stay apart in JSON and CSV.
func TestNullAndEmpty(t *testing.T) {
	cases := []struct {
		v                []byte
		json, table, csv string
	}{
		{nil, "null", "", ""},
		{[]byte{}, `""`, "", `""`},
	}
	for _, tc := range cases {
		if got := write(t, func(e *encoder) { e.jsonValue(kindText, tc.v) }); got != tc.json {
			t.Errorf("JSON of %#v: want = %s, got = %s", tc.v, tc.json, got)
		}
		if got := write(t, func(e *encoder) { e.textValue(tableStyle, tc.v) }); got != tc.table {
			t.Errorf("table cell of %#v: want = %q, got = %q", tc.v, tc.table, got)
		}
		if got := write(t, func(e *encoder) { e.textValue(csvStyle, tc.v) }); got != tc.csv {
			t.Errorf("CSV field of %#v: want = %q, got = %q", tc.v, tc.csv, got)
		}
	}
	if row := copyRow([][]byte{nil, {}, []byte("x")}); row[0] != nil || row[1] == nil || string(row[2]) != "x" {
		t.Errorf("copyRow: want NULL nil, '' non-nil and x kept, got = %#v", row)
	}
}

// TestTablePaddingIsBounded: one long value in a column of short ones would pad every
// row to its width; past twice max_bytes the table is written unpadded, and says so.
func TestTablePaddingIsBounded(t *testing.T) {
	const maxBytes = 64 << 10
	long := bytes.Repeat([]byte("x"), 10_000)
	res := &result{columns: []Column{{Name: "v"}, {Name: "w"}}, kinds: []kind{kindText, kindText}, maxBytes: maxBytes}
	for i := range 1000 {
		v := []byte("a")
		if i == 0 {
			v = long
		}
		res.rows = append(res.rows, [][]byte{v, []byte("b")})
	}
	out := write(t, func(e *encoder) { writeTable(e, res) })
	if len(out) > 2*maxBytes || !strings.HasSuffix(out, "(1000 rows, not aligned: padding would make the table too large)\n") {
		t.Errorf("when padding 1000 rows to a 10,000-character column, want an unpadded table under %d bytes saying so, got %d bytes ending %q", 2*maxBytes, len(out), out[len(out)-80:])
	}
	if !strings.Contains(out, "\na | b\n") {
		t.Errorf("when the table is not aligned, want cells separated but not padded, got %q", out[:200])
	}
	res.rows = res.rows[1:3]
	if out := write(t, func(e *encoder) { writeTable(e, res) }); out != "v | w\n--+--\na | b\na | b\n(2 rows)\n" {
		t.Errorf("when the table is small, want it aligned as psql does, got %q", out)
	}
}

package query

import (
	"bufio"
	"encoding/json"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
)

// A read's values arrive in PostgreSQL's text format, the bytes psql prints, and are kept
// as they came until the answer is written: no value is decoded into Go types, so what a
// row costs is known from its bytes before anything is built from it. Each column has a
// kind, from the type the server names for it (a domain is named by its base type):
//
//	number  int2, int4, int8, oid, float4, float8, numeric: a JSON number; NaN and
//	        ±Infinity, which JSON cannot spell, a JSON string
//	bool    boolean: JSON true or false; t or f in table and CSV, as psql prints them
//	json    json, jsonb: the JSON value itself (so a jsonb 'null' is JSON null too)
//	text    every other type: a JSON string holding the text output, exactly as psql
//	        shows it (timestamps, 'infinity', intervals, bytea as \x hex, arrays,
//	        ranges, composites, xml, geometry, enums, ...)
//
// NULL is JSON null, and an empty cell in table and CSV (where an empty string is "").
//
// No control character reaches the caller's terminal raw, in any format. An unsafe
// character is a control character (C0, DEL, C1), a Unicode format character (category
// Cf: bidirectional overrides and isolates, zero-width characters, the soft hyphen, the
// byte-order mark, tag characters, ...) or a line or paragraph separator.
//
//   - JSON writes each unsafe character, and <, > and &, as a \u escape: the decoded
//     string is the value, exactly.
//   - Table writes newline, carriage return and tab as \n, \r and \t, every other unsafe
//     character as \u{hex} (ESC is \u{1b}), and a backslash that would otherwise read as
//     the start of one of these (followed by n, r, t or "u{") as \u{5c}. Reading a cell
//     back is replacing each of these escapes by its character; any other backslash is
//     itself, so a bytea's \x and an array's \\ are shown as psql shows them.
//   - CSV keeps newlines and tabs (a field holding a newline, a comma, a double quote,
//     or nothing is quoted, as RFC 4180 says), writes every other unsafe character,
//     carriage return included, as \u{hex}, and a backslash followed by "u{" as \u{5c}.
//     A value without these is written exactly as it is.
type kind uint8

const (
	kindText kind = iota
	kindNumber
	kindBool
	kindJSON
)

// kindOf is the kind of values of the type with the given OID.
func kindOf(oid uint32) kind {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID,
		pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID:
		return kindNumber
	case pgtype.BoolOID:
		return kindBool
	case pgtype.JSONOID, pgtype.JSONBOID:
		return kindJSON
	}
	return kindText
}

// An encoder writes values to w, or, with w nil, only counts the bytes it would write:
// the same code measures a value and writes it, so a row's size is exact before any of
// it is built.
type encoder struct {
	w     *bufio.Writer
	n     int // bytes written (or counted)
	runes int // of them, characters: a cell's width in a table
}

func (e *encoder) ascii(s string) {
	e.n += len(s)
	e.runes += len(s)
	if e.w != nil {
		e.w.WriteString(s)
	}
}

func (e *encoder) byte(c byte) {
	e.n++
	e.runes++
	if e.w != nil {
		e.w.WriteByte(c)
	}
}

// char writes one character's UTF-8 bytes as they are.
func (e *encoder) char(b []byte) {
	e.n += len(b)
	e.runes++
	if e.w != nil {
		e.w.Write(b)
	}
}

const hexDigits = "0123456789abcdef"

// hex writes v in lower-case hexadecimal, at least width digits. It writes byte by byte:
// a slice of a local array passed to the writer would be allocated on every call.
func (e *encoder) hex(v uint32, width int) {
	digits := 1
	for v>>(4*digits) > 0 {
		digits++
	}
	for ; width > digits; width-- {
		e.byte('0')
	}
	for i := digits - 1; i >= 0; i-- {
		e.byte(hexDigits[v>>(4*i)&0xf])
	}
}

// unsafe reports whether r must not reach a terminal raw: see the comment on kind.
func unsafe(r rune) bool {
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7f
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// next decodes the character at the start of v; an invalid byte reads as U+FFFD, one
// byte long (PostgreSQL sends only valid UTF-8: the pool refuses other encodings).
func next(v []byte) (rune, int) {
	if v[0] < utf8.RuneSelf {
		return rune(v[0]), 1
	}
	return utf8.DecodeRune(v)
}

// jsonValue writes one value of kind k as JSON; nil is NULL.
func (e *encoder) jsonValue(k kind, v []byte) {
	switch {
	case v == nil:
		e.ascii("null")
	case k == kindNumber && isJSONNumber(v):
		e.n += len(v) // digits, sign, '.', 'e', '+': ASCII
		e.runes += len(v)
		if e.w != nil {
			e.w.Write(v)
		}
	case k == kindBool && len(v) == 1 && (v[0] == 't' || v[0] == 'f'):
		if v[0] == 't' {
			e.ascii("true")
		} else {
			e.ascii("false")
		}
	case k == kindJSON && json.Valid(v):
		e.jsonText(v)
	default:
		e.jsonString(v)
	}
}

// jsonString writes v as a JSON string.
func (e *encoder) jsonString(v []byte) {
	e.byte('"')
	for i := 0; i < len(v); {
		// A run of ASCII that needs no escape goes out in one write: most values are
		// all of that.
		if j := i + plainASCII(v[i:]); j > i {
			e.n += j - i
			e.runes += j - i
			if e.w != nil {
				e.w.Write(v[i:j])
			}
			i = j
			continue
		}
		r, n := next(v[i:])
		switch {
		case r == '"':
			e.ascii(`\"`)
		case r == '\\':
			e.ascii(`\\`)
		case r == '\n':
			e.ascii(`\n`)
		case r == '\r':
			e.ascii(`\r`)
		case r == '\t':
			e.ascii(`\t`)
		case r == '<' || r == '>' || r == '&' || unsafe(r) || (r == utf8.RuneError && n == 1):
			e.jsonEscape(r)
		default:
			e.char(v[i : i+n])
		}
		i += n
	}
	e.byte('"')
}

// plainASCII returns the length of the run at the start of v of printable ASCII that a
// JSON string holds as it is: everything from ' ' to '~' but '"', '\\', '<', '>' and '&'
// (escaped, see kind).
func plainASCII(v []byte) int {
	for i, c := range v {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return i
		}
	}
	return len(v)
}

// jsonEscape writes r as \uXXXX, or a surrogate pair above U+FFFF.
func (e *encoder) jsonEscape(r rune) {
	if r > 0xffff {
		r -= 0x10000
		e.ascii(`\u`)
		e.hex(uint32(0xd800+(r>>10)), 4)
		r = 0xdc00 + r&0x3ff
	}
	e.ascii(`\u`)
	e.hex(uint32(r), 4)
}

// jsonText writes v, a valid JSON text, with its unsafe characters and <, > and & as \u
// escapes. In valid JSON those occur only inside strings (outside, only ASCII
// punctuation, literals and blanks may), where the escape means the same character.
func (e *encoder) jsonText(v []byte) {
	for i := 0; i < len(v); {
		r, n := next(v[i:])
		switch {
		case r == '\n' || r == '\r' || r == '\t': // blanks between tokens
			e.byte(byte(r))
		case r == '<' || r == '>' || r == '&' || unsafe(r) || (r == utf8.RuneError && n == 1):
			e.jsonEscape(r)
		default:
			e.char(v[i : i+n])
		}
		i += n
	}
}

// isJSONNumber reports whether v is a number as JSON spells it (RFC 8259, section 6).
func isJSONNumber(v []byte) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(v) && v[i] == '-' {
		i++
	}
	switch n := digits(); {
	case n == 0, n > 1 && v[i-n] == '0':
		return false
	}
	if i < len(v) && v[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(v)
}

// A style says how cells are escaped in a text answer.
type style uint8

const (
	tableStyle style = iota
	csvStyle
)

// escapes reports whether r is written as an escape in style s.
func (s style) escapes(r rune) bool {
	if s == csvStyle && (r == '\n' || r == '\t') {
		return false
	}
	return unsafe(r)
}

// cell writes the text of v (not NULL) escaped in style s; see the comment on kind.
func (e *encoder) cell(s style, v []byte) {
	for i := 0; i < len(v); {
		r, n := next(v[i:])
		switch {
		case r == '\\' && s.ambiguous(v[i+1:]):
			e.ascii(`\u{5c}`)
		case s == tableStyle && r == '\n':
			e.ascii(`\n`)
		case s == tableStyle && r == '\r':
			e.ascii(`\r`)
		case s == tableStyle && r == '\t':
			e.ascii(`\t`)
		case s.escapes(r) || (r == utf8.RuneError && n == 1):
			e.ascii(`\u{`)
			e.hex(uint32(r), 1)
			e.byte('}')
		default:
			e.char(v[i : i+n])
		}
		i += n
	}
}

// visible writes s, text Airlock made rather than a value, as it is but for unsafe
// characters other than newline, written as \u{hex}. Nothing unsafe is expected in such
// text (a statement spells values in E'…' literals); this makes sure none passes.
func (e *encoder) visible(s string) {
	b := []byte(s)
	for i := 0; i < len(b); {
		r, n := next(b[i:])
		if r != '\n' && (unsafe(r) || (r == utf8.RuneError && n == 1)) {
			e.ascii(`\u{`)
			e.hex(uint32(r), 1)
			e.byte('}')
		} else {
			e.char(b[i : i+n])
		}
		i += n
	}
}

// ambiguous reports whether a backslash followed by rest would read as the start of an
// escape of style s.
func (s style) ambiguous(rest []byte) bool {
	switch {
	case len(rest) >= 2 && rest[0] == 'u' && rest[1] == '{':
		return true
	case s == tableStyle && len(rest) >= 1:
		return rest[0] == 'n' || rest[0] == 'r' || rest[0] == 't'
	}
	return false
}

// textValue writes one value in style s as psql prints it: NULL as nothing, and booleans
// as t and f, which is already their text.
func (e *encoder) textValue(s style, v []byte) {
	if v == nil {
		return
	}
	if s == csvStyle && csvQuoted(v) {
		e.byte('"')
		for i := 0; i < len(v); {
			j := i
			for j < len(v) && v[j] != '"' {
				j++
			}
			e.cell(s, v[i:j])
			if j < len(v) {
				e.ascii(`""`)
				j++
			}
			i = j
		}
		e.byte('"')
		return
	}
	e.cell(s, v)
}

// csvQuoted reports whether a CSV field holding v needs quotes: escaping adds no comma,
// quote or newline (a carriage return is escaped), so the raw value decides. An empty
// string is quoted to tell it from NULL, as COPY and psql --csv do.
func csvQuoted(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	for _, c := range v {
		if c == ',' || c == '"' || c == '\n' {
			return true
		}
	}
	return false
}

// rowSize is what one row's values take in an answer of format, plus a separator per
// value: what max_bytes counts.
func rowSize(format string, kinds []kind, row [][]byte) int64 {
	var e encoder
	for i, v := range row {
		switch format {
		case "table":
			e.textValue(tableStyle, v)
		case "csv":
			e.textValue(csvStyle, v)
		default:
			e.jsonValue(kinds[i], v)
		}
		e.n++
	}
	return int64(e.n)
}

package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Nothing the server sends reaches the terminal raw. The server already escapes its
// answers (README, "Values"); the client applies the same rules again to every value
// and message it prints, so that a server, a proxy or a bug that let one through still
// cannot drive the terminal. An unsafe character is a control character (C0, DEL, C1),
// a Unicode format character (bidi overrides and isolates, zero-width characters, the
// BOM, ...) or a line or paragraph separator.

// unsafe reports whether r must not reach a terminal raw.
func unsafe(r rune) bool {
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7f
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// A style says how a value is escaped in a text format, as the server's answers do:
//
//   - table: newline, carriage return and tab as \n, \r and \t; every other unsafe
//     character as \u{hex}; a backslash followed by n, r, t or "u{" as \u{5c}.
//   - csv: newline and tab as they are (quoting carries them); every other unsafe
//     character, carriage return included, as \u{hex}; a backslash followed by "u{" as
//     \u{5c}.
//
// Replacing each escape by its character gives the value back exactly.
type style uint8

const (
	tableStyle style = iota
	csvStyle
)

// escape writes s escaped in style st to b.
func (st style) escape(b *strings.Builder, s string) {
	for i, r := range s {
		switch {
		case r == '\\' && st.ambiguous(s[i+1:]):
			b.WriteString(`\u{5c}`)
		case st == tableStyle && r == '\n':
			b.WriteString(`\n`)
		case st == tableStyle && r == '\r':
			b.WriteString(`\r`)
		case st == tableStyle && r == '\t':
			b.WriteString(`\t`)
		case st == csvStyle && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case unsafe(r):
			b.WriteString(`\u{` + strconv.FormatInt(int64(r), 16) + `}`)
		default:
			b.WriteRune(r)
		}
	}
}

// ambiguous reports whether a backslash followed by rest would read as an escape.
func (st style) ambiguous(rest string) bool {
	switch {
	case strings.HasPrefix(rest, "u{"):
		return true
	case st == tableStyle && rest != "":
		return rest[0] == 'n' || rest[0] == 'r' || rest[0] == 't'
	}
	return false
}

// cell is s escaped for a table cell.
func cell(s string) string {
	var b strings.Builder
	tableStyle.escape(&b, s)
	return b.String()
}

// visible is text the client prints that is not a value (a server's message, a name, a
// reason typed by someone else): as it is, but for unsafe characters other than
// newline, which are written as \u{hex}.
func visible(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && unsafe(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r != '\n' && unsafe(r) {
			b.WriteString(`\u{` + strconv.FormatInt(int64(r), 16) + `}`)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// line is visible text that must stay on one line (a table cell of a listing, a
// progress line): newlines are escaped too.
func line(s string) string { return cell(s) }

// safeJSON returns JSON text with every unsafe character written as a \u escape, as
// the server writes its answers. In valid JSON, characters other than blanks between
// tokens occur only inside strings, where the escape means the same character; the
// newline that ends a line is kept. Invalid UTF-8 is escaped as U+FFFD.
func safeJSON(raw []byte) []byte {
	clean := true
	for _, r := range string(raw) {
		if r != '\n' && (unsafe(r) || r == utf8.RuneError) {
			clean = false
			break
		}
	}
	if clean {
		return raw
	}
	var b strings.Builder
	for _, r := range string(raw) {
		if r != '\n' && (unsafe(r) || r == utf8.RuneError) {
			jsonEscape(&b, r)
		} else {
			b.WriteRune(r)
		}
	}
	return []byte(b.String())
}

// jsonEscape writes r as \uXXXX, or a surrogate pair above U+FFFF.
func jsonEscape(b *strings.Builder, r rune) {
	hex4 := func(v rune) {
		s := strconv.FormatInt(int64(v), 16)
		b.WriteString(`\u` + strings.Repeat("0", 4-len(s)) + s)
	}
	if r > 0xffff {
		r -= 0x10000
		hex4(0xd800 + r>>10)
		r = 0xdc00 + r&0x3ff
	}
	hex4(r)
}

// jsonString is s as a JSON string with unsafe characters (and <, >, &) escaped.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '<' || r == '>' || r == '&' || unsafe(r) || r == utf8.RuneError:
			jsonEscape(&b, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
